"""Load and crash-safety tool: Collect-like clients against the real server, then an audit.

    python -m tests.load --clients 8 --submissions 400 [--kill-every SECONDS | --kills N]
                         [--database-url URL] [--workers N] [--seed N]

Each client is a thread playing one phone: a keep-alive `requests` session, HEAD then
multipart POSTs built byte for byte as Collect builds them, split as Collect splits them. It
sends household surveys (one house photo) and a photo form (several images, a recording and
an audit log, some of them split over several POSTs), with random bytes of various sizes.
When a connection fails, times out or gets a 5xx, it sends the same instance again from the
start (same instanceID, same bytes), as Collect does. Every client keeps a ledger: which
instanceIDs and which files the server acknowledged (201), with each file's md5.

With `--kill-every` or `--kills`, a killer SIGKILLs the whole server (master and workers)
at random moments during the load and starts it again on the same data.

Afterwards the server is stopped (SIGKILLed once more in crash mode) and `verify` reads the
database directly and the blob store under the data dir: every acknowledged instanceID stored
exactly once with one current version and the XML that was sent, every acknowledged file
present with the same md5, no half-written blob (temporary `.tmp-*` files of killed writers
are counted, never referenced), relational consistency, and SQLite's integrity check.

`run(LoadConfig(...))` is what the tests call; `bench(...)` returns the figures for
`make bench`. A PostgreSQL URL is never used as it is: a fresh database is created beside it
and dropped afterwards. `LoadConfig.during` runs something beside the clients (a backup);
`LoadConfig.deployment` replaces the one server (two instances behind nginx); `as_of` gives
the ledger as it stood at a moment (what had been acknowledged before a backup started).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import hashlib
import hmac
import http.client
import json
import random
import re
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import requests
import urllib3

from tests.support import instances
from tests.support.collect import (
    Collect,
    HttpTransport,
    Part,
    collect_content_type,
    multipart_body,
    split_attachments,
)
from tests.support.served import Server, fresh_postgres_database, served

XML_PART = "xml_submission_file"
SURVEY = "household_survey"
PHOTOS = "load_photos"
# A second form with several files per submission, so that uploads get split.
PHOTOS_MD = """
| survey   |              |            |                    |
|          | type         | name       | label              |
|          | audit        | audit      |                    |
|          | text         | tdp        | Tổ dân phố         |
|          | text         | head_name  | Chủ hộ             |
|          | image        | house      | Ảnh nhà            |
|          | image        | doc_front  | Giấy tờ, mặt trước |
|          | image        | doc_back   | Giấy tờ, mặt sau   |
|          | audio        | voice      | Ghi âm             |
|          | begin_repeat | members    | Thành viên         |
|          | text         | m_name     | Họ tên             |
|          | image        | m_photo    | Ảnh                |
|          | end_repeat   |            |                    |
| settings |              |            |                    |
|          | form_id      | version    | form_title         |
|          | load_photos  | 2026010101 | Ảnh hộ gia đình    |
"""
# The same bytes in many submissions at once: content-addressed blobs written concurrently.
SHARED_FILE = b"\x89PNG\r\n\x1a\n" + random.Random(91).randbytes(20_000)

FAMILY = ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng", "Bùi",
          "Đỗ", "Hồ", "Ngô", "Dương", "Lý", "Ma", "Hà", "Nông", "Triệu"]
MIDDLE = ["Văn", "Thị", "Hữu", "Đức", "Minh", "Ngọc", "Thanh", "Quang", "Xuân", "Kim"]
GIVEN = ["An", "Bình", "Cường", "Dũng", "Giang", "Hà", "Hải", "Hạnh", "Hùng", "Hương", "Khánh",
         "Lan", "Linh", "Long", "Mai", "Nam", "Nga", "Phúc", "Quân", "Sơn", "Tâm", "Thảo",
         "Thu", "Trang", "Tuấn", "Vân", "Việt", "Yến"]

# What a dropped connection, a reset, a timeout or a truncated answer raises.
TRANSIENT = (requests.RequestException, urllib3.exceptions.HTTPError, http.client.HTTPException,
             OSError, EOFError)


@dataclass
class LoadConfig:
    clients: int = 8
    submissions: int = 400  # in all, shared among the clients
    kill_every: float | None = None  # seconds between kills (randomised ±50 %)
    kills: int = 0  # or: this many kills at random moments spread over the load
    database_url: str | None = None  # PostgreSQL: a fresh database is made beside it
    data_dir: Path | None = None  # default: a temporary directory
    workers: int = 2
    seed: int | None = None
    photo_share: float = 0.3  # share of submissions of the multi-file photo form
    split_bytes: int = 400_000  # Collect's split threshold (below the advertised limit)
    give_up_after: float = 120.0  # a client abandons an instance after this long failing
    timeout: tuple[float, float] = (5.0, 30.0)  # connect, read
    # run beside the clients, e.g. a backup; an exception it raises is a client error
    during: Callable[[Server, Progress], None] | None = None
    # how the server under load is set up: (data_dir, database_url, workers) -> a context
    # manager giving an object that behaves as a `Server`; default one `served` server
    deployment: Callable[..., contextlib.AbstractContextManager] | None = None
    # With `kills`: clients start no new instance once the next kill is `clients` submissions
    # overdue (the killer is still restarting the last one), so that every kill falls in the
    # load however fast it runs meanwhile: for servers that keep answering through a kill.
    hold_for_kills: bool = False


@dataclass
class Planned:
    instance_id: str
    form_id: str
    xml: bytes
    xml_name: str
    files: dict[str, bytes]


@dataclass
class Entry:
    """What one client knows about one instance it sent."""

    instance_id: str
    form_id: str
    xml_digest: str  # HMAC-SHA256 of the XML bytes sent, as the server keys it
    md5: dict[str, str]  # every file of the instance: name -> md5 of the bytes sent
    acked_files: set[str] = field(default_factory=set)  # files inside a POST answered 201
    acked: bool = False  # at least one POST answered 201: the instance must be stored
    complete: bool = False  # every POST of one attempt answered 201
    abandoned: bool = False
    attempts: int = 0
    failures: list[str] = field(default_factory=list)
    latency_ms: float | None = None  # the successful attempt, HEAD to last 201
    total_ms: float | None = None  # first try to success, retries included
    acks: list[tuple[float, tuple[str, ...]]] = field(default_factory=list)  # (monotonic, files)
    completed_at: float | None = None  # monotonic time of the last 201 of the complete attempt


def as_of(ledger: list[Entry], moment: float) -> list[Entry]:
    """The ledger as it stood at `moment` (time.monotonic()): only what had been acknowledged
    by then counts as acknowledged."""
    out = []
    for e in ledger:
        acks = [a for a in e.acks if a[0] < moment]
        out.append(dataclasses.replace(
            e, acks=acks, acked=bool(acks), acked_files={n for _, names in acks for n in names},
            complete=e.completed_at is not None and e.completed_at < moment))
    return out


class Progress:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.acked = 0
        self.ceiling: int | None = None  # no client starts a new instance at or beyond it

    def add(self) -> None:
        with self._cond:
            self.acked += 1

    def set_ceiling(self, value: int | None) -> None:
        with self._cond:
            self.ceiling = value
            self._cond.notify_all()

    def hold(self, abort: threading.Event) -> None:
        """Wait (before a new instance) while the ceiling is reached."""
        with self._cond:
            while self.ceiling is not None and self.acked >= self.ceiling and not abort.is_set():
                self._cond.wait(0.05)


def _size(rng: random.Random) -> int:
    roll = rng.random()
    if roll < 0.70:
        return rng.randint(2_000, 60_000)
    if roll < 0.95:
        return rng.randint(60_000, 250_000)
    return rng.randint(250_000, 380_000)


def _jpeg(rng: random.Random) -> bytes:
    return b"\xff\xd8\xff\xe0" + rng.randbytes(_size(rng))


def _name(rng: random.Random) -> str:
    return f"{rng.choice(FAMILY)} {rng.choice(MIDDLE)} {rng.choice(GIVEN)}"


def plan_survey(xform: bytes, rng: random.Random) -> Planned:
    instance_id = f"uuid:{uuid.UUID(int=rng.getrandbits(128), version=4)}"
    entity_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    head, year = _name(rng), str(rng.randint(1940, 2004))
    house = str(rng.randint(1, 300))
    label = f"{head} – số {house}"
    members = [{"m_name_eff": head, "m_birth_year_eff": year, "m_sex_eff": "male",
                "m_basic": rng.choice(["yes", "no"])}]
    members += [{"m_name": _name(rng), "m_birth_year": str(rng.randint(1940, 2024)),
                 "m_sex": rng.choice(["male", "female"]), "m_basic": rng.choice(["yes", "no"])}
                for _ in range(rng.randint(0, 4))]
    phone = f"09{rng.randint(0, 99_999_999):08d}"
    # a well-formed identity number: the server must blank it before storing anything
    pid = f"0{rng.randint(1, 96):02d}{rng.randint(0, 3)}{rng.randint(0, 10**8 - 1):08d}"
    values = {"g_intro/tdp": "tdp01", "g_intro/hh_mode": "new", "g_intro/contact_result": "met",
              "g_intro/consent": "yes", "g_addr/street": "st01", "g_addr/house_no": house,
              "g_head/head_name": head, "g_head/head_birth_year": year,
              "g_head/phone": phone, "g_head/phone_tail": phone[-3:],
              "g_head/id_ok": "yes", "g_head/head_id": pid,
              "g_end/house_photo": "house.jpg", "g_end/location": "21.8 105.2 30 5",
              "survey_date": "2026-11-20", "entity_id": entity_id, "hh_label": label}
    xml = instances.build(xform, values, repeats={"g_members/members": members},
                          instance_id=instance_id,
                          entity={"id": entity_id, "create": "1", "update": "0",
                                  "baseVersion": "", "label": label})
    return Planned(instance_id, SURVEY, xml, "Household survey_2026-11-20_09-15-00.xml",
                   {"house.jpg": _jpeg(rng)})


def plan_photos(xform: bytes, rng: random.Random) -> Planned:
    instance_id = f"uuid:{uuid.UUID(int=rng.getrandbits(128), version=4)}"
    files: dict[str, bytes] = {}
    values = {"tdp": "tdp01", "head_name": _name(rng)}
    for fld in ("house", "doc_front", "doc_back"):
        if rng.random() < 0.8:
            name = f"{fld}_{rng.randint(1000, 9999)}.jpg"
            values[fld] = name
            files[name] = SHARED_FILE if fld == "doc_back" and rng.random() < 0.5 else _jpeg(rng)
    if rng.random() < 0.3:
        values["voice"] = "voice.amr"
        files["voice.amr"] = b"#!AMR\n" + rng.randbytes(_size(rng))
    members = []
    for i in range(rng.randint(0, 3)):
        name = f"member{i + 1}.jpg"
        members.append({"m_name": _name(rng), "m_photo": name})
        files[name] = _jpeg(rng)
    values["meta/audit"] = "audit.csv"
    files["audit.csv"] = ("event,node,start,end\n" + "".join(
        f"question,/data/q{i},{1_700_000_000_000 + i},{1_700_000_000_500 + i}\n"
        for i in range(rng.randint(5, 200)))).encode()
    rng.shuffle(members)
    xml = instances.build(xform, values, repeats={"members": members}, instance_id=instance_id)
    return Planned(instance_id, PHOTOS, xml, "Ảnh hộ gia đình_2026-11-20_09-15-00.xml", files)


def _refused_connection(exc: BaseException) -> bool:
    """Nobody listening (a server being restarted), as opposed to a request cut off."""
    text = repr(exc)
    return "NewConnectionError" in text or "Connection refused" in text


class Client(threading.Thread):
    """One phone: sends its share of instances one after the other, retrying until stored."""

    def __init__(self, index: int, url: str, xforms: dict[str, bytes], count: int,
                 config: LoadConfig, secret: str, progress: Progress,
                 abort: threading.Event, seed: int):
        super().__init__(name=f"client-{index}", daemon=True)
        self.url = url
        self.xforms = xforms
        self.count = count
        self.config = config
        self.secret = secret.encode()
        self.progress = progress
        self.abort = abort
        self.rng = random.Random(seed)
        self.device_id = f"collect:load{index:04d}{seed % 10**8:08d}"
        self.ledger: list[Entry] = []
        self.transient = 0  # connection errors, timeouts and 5xx met
        self.cut = 0  # requests cut off after the connection was made (by a kill)
        self.statuses: Counter[int] = Counter()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with HttpTransport(timeout=self.config.timeout) as transport:
                collect = Collect(self.url, transport, device_id=self.device_id)
                for _ in range(self.count):
                    self.progress.hold(self.abort)
                    if self.abort.is_set():
                        return
                    form = PHOTOS if self.rng.random() < self.config.photo_share else SURVEY
                    planner = plan_photos if form == PHOTOS else plan_survey
                    self.send(collect, planner(self.xforms[form], self.rng))
        except BaseException as exc:  # noqa: BLE001  (it ends up in the report)
            self.error = exc

    def send(self, collect: Collect, planned: Planned) -> None:
        entry = Entry(planned.instance_id, planned.form_id,
                      hmac.new(self.secret, planned.xml, hashlib.sha256).hexdigest(),
                      {n: hashlib.md5(d).hexdigest() for n, d in planned.files.items()})  # noqa: S324
        self.ledger.append(entry)
        first = time.perf_counter()
        backoff = 0.05
        while not self.abort.is_set():
            entry.attempts += 1
            t0 = time.perf_counter()
            try:
                outcome = self.attempt(collect, planned, entry)
            except TRANSIENT as exc:
                outcome = f"retry: {type(exc).__name__}"
                if not _refused_connection(exc):
                    self.cut += 1  # the request was on its way or being answered
            finally:
                collect.exchanges.clear()  # the client keeps every body otherwise
            now = time.perf_counter()
            if outcome == "done":
                entry.complete = True
                entry.completed_at = time.monotonic()
                entry.latency_ms = (now - t0) * 1000
                entry.total_ms = (now - first) * 1000
                return
            entry.failures.append(outcome)
            if not outcome.startswith("retry"):
                return  # a refusal Collect would show the volunteer: the tests count these
            self.transient += 1
            if now - first > self.config.give_up_after:
                entry.abandoned = True
                return
            time.sleep(backoff * (0.5 + self.rng.random()))
            backoff = min(backoff * 2, 1.0)
        entry.abandoned = True

    def attempt(self, collect: Collect, planned: Planned, entry: Entry) -> str:
        """HEAD, then the POSTs of one upload, as Collect's uploader does them."""
        status, limit = collect.head_submission()
        self.statuses[status] += 1
        if status >= 500:
            return f"retry: HEAD {status}"
        if status != 204 and (status == 401 or 200 <= status < 300):
            return f"refused: HEAD {status}"
        names = list(planned.files)
        chunks = split_attachments(len(planned.xml), [len(planned.files[n]) for n in names],
                                   min(limit, self.config.split_bytes))
        for start, end, incomplete in chunks:
            parts = [Part(XML_PART, planned.xml, planned.xml_name, "text/xml")]
            parts += [Part(n, planned.files[n], n, collect_content_type(n))
                      for n in names[start:end]]
            if incomplete:
                parts.append(Part("*isIncomplete*", b"yes"))
            content_type, body = multipart_body(parts)
            response = collect.request("POST", collect.submission_url,
                                       {"Content-Type": content_type}, body)
            self.statuses[response.status] += 1
            if response.status not in (201, 202):
                kind = "retry" if response.status >= 500 else "refused"
                return f"{kind}: POST {response.status} {response.message or ''}".strip()
            entry.acks.append((time.monotonic(), tuple(names[start:end])))
            entry.acked_files.update(names[start:end])
            if not entry.acked:
                entry.acked = True
                self.progress.add()
        return "done"


class _Beside(threading.Thread):
    """`LoadConfig.during`, run beside the clients."""

    def __init__(self, work: Callable[[Server, Progress], None], server: Server,
                 progress: Progress):
        super().__init__(name="during", daemon=True)
        self.work, self.server, self.progress = work, server, progress
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.work(self.server, self.progress)
        except BaseException as exc:  # noqa: BLE001  (it ends up in the report)
            self.error = exc


class Killer(threading.Thread):
    """SIGKILLs the whole server at random moments and starts it again on the same data."""

    def __init__(self, server: Server, progress: Progress, total: int, *, kills: int,
                 every: float | None, rng: random.Random, done: threading.Event,
                 abort: threading.Event, hold_slack: int | None = None):
        super().__init__(name="killer", daemon=True)
        self.server = server
        self.hold_slack = hold_slack  # LoadConfig.hold_for_kills: the clients' count
        self.progress = progress
        self.total = total
        self.kills = kills
        self.every = every
        self.rng = rng
        self.done = done
        self.abort = abort
        self.downtimes: list[float] = []  # kill to healthy again, seconds
        self.kill_points: list[int] = []  # submissions acknowledged when each kill came
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            if self.every:
                while not self.done.wait(self.every * (0.5 + self.rng.random())):
                    self.kill_and_restart()
            elif self.hold_slack is not None:
                self.kill_holding_clients(self.hold_slack)
            else:
                for i in range(self.kills):
                    # kill i falls at a random point of the i-th slice of the load
                    goal = self.total * (i + self.rng.uniform(0.15, 0.85)) / (self.kills + 0.5)
                    while self.progress.acked < goal and not self.done.is_set():
                        time.sleep(0.002)
                    if self.done.is_set():
                        return
                    time.sleep(self.rng.uniform(0, 0.03))
                    self.kill_and_restart()
        except BaseException as exc:  # noqa: BLE001  (it ends up in the report)
            self.error = exc
            self.abort.set()
        finally:
            self.progress.set_ceiling(None)

    def kill_holding_clients(self, slack: int) -> None:
        """Kills at the same kind of points, each no further than `slack` submissions past
        its goal: the clients wait there while the previous restart is still running."""
        goals = [self.total * (i + self.rng.uniform(0.15, 0.85)) / (self.kills + 0.5)
                 for i in range(self.kills)]
        self.progress.set_ceiling(int(goals[0]) + slack)
        for i, goal in enumerate(goals):
            while self.progress.acked < goal and not self.done.is_set():
                time.sleep(0.002)
            if self.done.is_set():
                return
            held = self.progress.acked >= int(goal) + slack
            # the load goes on, up to the next goal, while this kill's restart runs
            self.progress.set_ceiling(int(goals[i + 1]) + slack if i + 1 < len(goals) else None)
            if held:  # the clients had stopped: let them post again, then kill in flight
                resumed_from = self.progress.acked
                while self.progress.acked == resumed_from and not self.done.is_set():
                    time.sleep(0.002)
            time.sleep(self.rng.uniform(0, 0.03))
            self.kill_and_restart()

    def kill_and_restart(self) -> None:
        t0 = time.monotonic()
        self.kill_points.append(self.progress.acked)
        self.server.kill()
        self.server.start()
        self.downtimes.append(time.monotonic() - t0)


# ------------------------------------------------------------------------------------------
# Verification: the database and the blob store against the clients' ledgers
# ------------------------------------------------------------------------------------------


@dataclass
class Verification:
    acknowledged: int = 0  # instances with at least one POST answered 201
    complete: int = 0  # instances whose every POST was answered 201
    stored: int = 0  # submissions in the database
    lost: int = 0  # acknowledged, not stored
    duplicated: int = 0  # stored more than once (extra submissions of one instanceID)
    bad_versions: int = 0  # not exactly one current version, or XML not the one sent
    stored_unacknowledged: int = 0  # stored although no 201 reached the client (allowed)
    unknown: int = 0  # stored but never sent by any client
    attachments_acknowledged: int = 0
    attachments_lost: int = 0
    attachments_corrupt: int = 0  # present with other bytes than acknowledged
    attachments_unexpected: int = 0  # rows for files the instance does not reference
    blob_files: int = 0
    temp_files: int = 0  # `.tmp-*` left by killed writers (allowed, never referenced)
    half_written: int = 0  # a blob file whose bytes do not hash to its name
    missing_blob_content: int = 0  # a blob row whose bytes are nowhere
    unreferenced_blob_files: int = 0  # complete files written before a rollback or a kill
    relational_errors: int = 0  # versions without submission, submissions without version…
    integrity: str = ""
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (self.lost == self.duplicated == self.bad_versions == self.unknown == 0
                and self.attachments_lost == self.attachments_corrupt == 0
                and self.attachments_unexpected == self.half_written == 0
                and self.missing_blob_content == self.relational_errors == 0
                and self.integrity == "ok")

    def problem(self, text: str) -> None:
        if len(self.problems) < 50:
            self.problems.append(text)


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()  # noqa: S324 (what OpenRosa uses)


def verify(database_url: str, data_dir: Path, ledger: list[Entry]) -> Verification:
    """Read the database and the blob store directly; compare with what was acknowledged."""
    from sqlalchemy import create_engine, func, select, text

    from server.db.models import (
        Attachment,
        Blob,
        BlobContent,
        Form,
        Submission,
        SubmissionVersion,
    )

    v = Verification()
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            if engine.dialect.name == "sqlite":
                rows = [r[0] for r in conn.exec_driver_sql("PRAGMA integrity_check")]
                fk = list(conn.exec_driver_sql("PRAGMA foreign_key_check"))
                v.integrity = "ok" if rows == ["ok"] and not fk else "; ".join(
                    [*map(str, rows), *(f"foreign key: {r}" for r in fk)])[:2000]
            else:
                v.integrity = "ok"
            subs = conn.execute(select(Submission.id, Submission.instance_id, Form.xml_form_id)
                                .join(Form, Form.id == Submission.form_id)).all()
            versions = conn.execute(select(
                SubmissionVersion.id, SubmissionVersion.submission_id,
                SubmissionVersion.instance_id, SubmissionVersion.current,
                SubmissionVersion.xml_digest)).all()
            atts = conn.execute(select(Attachment.submission_version_id, Attachment.name,
                                       Attachment.blob_sha256)).all()
            blobs = {r.sha256: r for r in conn.execute(select(Blob.sha256, Blob.md5, Blob.size))}
            in_db = set(conn.scalars(select(BlobContent.sha256)))
            # relational consistency, whatever the database enforces
            for label, query in (
                ("submissions without a version",
                 "SELECT count(*) FROM submissions s WHERE NOT EXISTS "
                 "(SELECT 1 FROM submission_versions v WHERE v.submission_id = s.id)"),
                ("versions without a submission",
                 "SELECT count(*) FROM submission_versions v WHERE NOT EXISTS "
                 "(SELECT 1 FROM submissions s WHERE s.id = v.submission_id)"),
                ("attachments without a version",
                 "SELECT count(*) FROM attachments a WHERE NOT EXISTS "
                 "(SELECT 1 FROM submission_versions v WHERE v.id = a.submission_version_id)"),
                ("attachments whose blob row is missing",
                 "SELECT count(*) FROM attachments a WHERE a.blob_sha256 IS NOT NULL AND "
                 "NOT EXISTS (SELECT 1 FROM blobs b WHERE b.sha256 = a.blob_sha256)"),
            ):
                n = conn.execute(text(query)).scalar_one()
                if n:
                    v.relational_errors += n
                    v.problem(f"{n} {label}")
            v.stored = conn.execute(select(func.count()).select_from(Submission)).scalar_one()
            # blobs are named by their digest only: nothing can point at a temporary file
            named = [sha for sha in blobs if not re.fullmatch(r"[0-9a-f]{64}", sha)]
            if named:
                v.relational_errors += len(named)
                v.problem(f"blob rows not named by a sha256: {named[:3]}")

            by_instance: dict[str, list] = {}
            for s in subs:
                by_instance.setdefault(s.instance_id, []).append(s)
            versions_of: dict[int, list] = {}
            for ver in versions:
                versions_of.setdefault(ver.submission_id, []).append(ver)
            atts_of: dict[int, dict[str, str | None]] = {}
            for a in atts:
                atts_of.setdefault(a.submission_version_id, {})[a.name] = a.blob_sha256

            # (md5, sha256, size) of each blob's bytes: digests, not bytes, stay in memory
            content_cache: dict[str, tuple[str, str, int] | None] = {}

            def content(sha: str) -> tuple[str, str, int] | None:
                if sha not in content_cache:
                    path = data_dir / "blobs" / sha[:2] / sha
                    data = None
                    if path.is_file():
                        data = path.read_bytes()
                    elif sha in in_db:
                        data = conn.execute(
                            select(BlobContent.data).where(BlobContent.sha256 == sha)
                        ).scalar_one()
                    content_cache[sha] = None if data is None else (
                        _md5(data), hashlib.sha256(data).hexdigest(), len(data))
                return content_cache[sha]

            sent = set()
            for e in ledger:
                sent.add(e.instance_id)
                stored = by_instance.get(e.instance_id, [])
                if len(stored) > 1:
                    v.duplicated += len(stored) - 1
                    v.problem(f"{e.instance_id} stored {len(stored)} times")
                if not e.acked:
                    v.stored_unacknowledged += bool(stored)
                    continue
                v.acknowledged += 1
                v.complete += e.complete
                v.attachments_acknowledged += len(e.acked_files)
                if not stored:
                    v.lost += 1
                    v.attachments_lost += len(e.acked_files)
                    v.problem(f"{e.instance_id} acknowledged but not stored")
                    continue
                sub = stored[0]
                if sub.xml_form_id != e.form_id:
                    v.bad_versions += 1
                    v.problem(f"{e.instance_id} stored under form {sub.xml_form_id}")
                vers = versions_of.get(sub.id, [])
                current = [ver for ver in vers if ver.current]
                if len(vers) != 1 or len(current) != 1:
                    v.bad_versions += 1
                    v.problem(f"{e.instance_id}: {len(vers)} versions, {len(current)} current")
                    if not current:
                        continue
                ver = current[0]
                if ver.instance_id != e.instance_id or ver.xml_digest != e.xml_digest:
                    v.bad_versions += 1
                    v.problem(f"{e.instance_id}: the stored XML is not the one sent")
                rows_by_name = atts_of.get(ver.id, {})
                for name in set(rows_by_name) - set(e.md5):
                    v.attachments_unexpected += 1
                    v.problem(f"{e.instance_id}: attachment row {name!r} was never sent")
                for name in sorted(e.acked_files):
                    sha = rows_by_name.get(name)
                    if sha is None:
                        v.attachments_lost += 1
                        v.problem(f"{e.instance_id}/{name} acknowledged but not stored")
                        continue
                    blob = blobs.get(sha)
                    digests = content(sha)
                    if digests is None:
                        v.attachments_lost += 1
                        v.problem(f"{e.instance_id}/{name}: no bytes for blob {sha}")
                    elif (blob is None or blob.md5 != e.md5[name] or digests[0] != e.md5[name]
                          or digests[1] != sha or blob.size != digests[2]):
                        v.attachments_corrupt += 1
                        v.problem(f"{e.instance_id}/{name}: bytes differ from those sent "
                                  f"(sent md5 {e.md5[name]}; row {blob and blob.md5} "
                                  f"{blob and blob.size} B; bytes {digests})")
            v.unknown = sum(len(rows) for iid, rows in by_instance.items() if iid not in sent)
            if v.unknown:
                v.problem(f"{v.unknown} stored submissions were never sent")

            # the blob store: complete files only, every blob row backed by bytes
            on_disk = set()
            root = data_dir / "blobs"
            for path in sorted(root.rglob("*")) if root.is_dir() else []:
                if not path.is_file():
                    continue
                if path.name.startswith(".tmp-"):
                    v.temp_files += 1
                    continue
                v.blob_files += 1
                data = path.read_bytes()
                if hashlib.sha256(data).hexdigest() != path.name or path.parent.name != \
                        path.name[:2]:
                    v.half_written += 1
                    v.problem(f"blob file {path.relative_to(data_dir)} is not whole")
                    continue
                on_disk.add(path.name)
                blob = blobs.get(path.name)
                if blob is not None and (blob.md5 != _md5(data) or blob.size != len(data)):
                    v.half_written += 1
                    v.problem(f"blob {path.name}: md5/size differ from its row")
            v.unreferenced_blob_files = len(on_disk - set(blobs))
            for sha in set(blobs) - on_disk - in_db:
                v.missing_blob_content += 1
                v.problem(f"blob row {sha} has no bytes")
    finally:
        engine.dispose()
    return v


# ------------------------------------------------------------------------------------------
# A run: server, clients, killer, verification
# ------------------------------------------------------------------------------------------


@dataclass
class Report:
    config: dict
    database: str
    elapsed_s: float
    acknowledged: int
    per_s: float
    p50_ms: float
    p95_ms: float
    total_p95_ms: float  # first try to success, retries included
    attempts: int
    resent: int  # instances sent more than once (the server must not double them)
    transient_errors: int  # connection errors, timeouts, 5xx met by clients (then retried)
    cut_in_flight: int  # requests cut off after their connection was made
    refused: int  # 4xx answers: a bug in the server or in this tool
    abandoned: int
    kills: int
    kill_points: list[int]
    downtime_s: list[float]
    statuses: dict[str, int]
    client_errors: list[str]
    verification: Verification
    setup_s: float = 0.0
    collect_url: str = ""  # the volunteer's Collect URL the clients used
    ledger: list[Entry] = field(default_factory=list, repr=False)

    @property
    def ok(self) -> bool:
        return (self.verification.ok and self.refused == 0 and self.abandoned == 0
                and not self.client_errors)

    def figures(self) -> dict:
        v = self.verification
        return {"per_s": self.per_s, "p50_ms": self.p50_ms, "p95_ms": self.p95_ms,
                "total_p95_ms": self.total_p95_ms, "acknowledged": self.acknowledged,
                "complete": v.complete, "lost": v.lost, "duplicates": v.duplicated,
                "attachments": v.attachments_acknowledged,
                "attachments_lost": v.attachments_lost,
                "attachments_corrupt": v.attachments_corrupt, "half_written": v.half_written,
                "temp_files": v.temp_files, "kills": self.kills, "resent": self.resent,
                "transient_errors": self.transient_errors, "cut_in_flight": self.cut_in_flight,
                "refused": self.refused,
                "abandoned": self.abandoned, "integrity": v.integrity,
                "elapsed_s": self.elapsed_s, "ok": self.ok}

    def summary(self) -> str:
        v = self.verification
        lines = [
            f"database            {self.database}",
            f"clients             {self.config['clients']} ({self.config['workers']} workers)",
            f"acknowledged        {self.acknowledged} submissions in {self.elapsed_s:.1f} s "
            f"= {self.per_s:.1f}/s ({v.complete} complete)",
            f"latency             p50 {self.p50_ms:.0f} ms, p95 {self.p95_ms:.0f} ms "
            f"(with retries: p95 {self.total_p95_ms:.0f} ms)",
            f"attachments         {v.attachments_acknowledged} acknowledged",
            f"kills               {self.kills}" + (
                f" (SIGKILL to master and workers) when {self.kill_points} were acknowledged;"
                " healthy again after " + ", ".join(f"{d:.1f}" for d in self.downtime_s) + " s"
                if self.kills else ""),
            f"retries             {self.transient_errors} transient errors over "
            f"{self.attempts} attempts ({self.cut_in_flight} requests cut in flight), "
            f"{self.resent} instances resent; {self.refused} refused; "
            f"{self.abandoned} abandoned",
            f"lost / duplicated   {v.lost} / {v.duplicated} submissions; "
            f"{v.attachments_lost} lost, {v.attachments_corrupt} corrupt attachments",
            f"versions            {v.bad_versions} bad; {v.stored} stored "
            f"({v.stored_unacknowledged} stored without a 201 reaching the client)",
            f"blob store          {v.blob_files} files, {v.half_written} half-written, "
            f"{v.temp_files} temp files, {v.unreferenced_blob_files} unreferenced, "
            f"{v.missing_blob_content} rows without bytes",
            f"integrity           {v.integrity}; relational errors {v.relational_errors}",
            f"statuses            {self.statuses}",
            "RESULT              " + ("OK" if self.ok else "FAILED"),
        ]
        lines += [f"  problem: {p}" for p in v.problems[:20]]
        lines += [f"  client error: {e}" for e in self.client_errors[:10]]
        return "\n".join(lines)


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    values = sorted(values)
    return values[min(len(values) - 1, max(0, int(round(q * len(values))) - 1))]


def _photos_xform() -> bytes:
    from pyxform.xls2xform import convert

    return convert(xlsform=PHOTOS_MD, pretty_print=True, validate=False,
                   file_type=".md").xform.encode()


def _secret(server: Server) -> str:
    return (server.env.get("SERVER_SECRET_KEY")
            or (server.data_dir / "secret_key").read_text().strip())


@contextlib.contextmanager
def _database(url: str | None) -> Iterator[str | None]:
    if url is None or url.startswith("sqlite"):
        yield url
    else:
        with fresh_postgres_database(url, prefix="load") as fresh:
            yield fresh


def run(config: LoadConfig, log: Callable[[str], None] | None = None) -> Report:
    """Start a server, run the load (with kills if asked), stop it, verify; the report."""
    log = log or (lambda _msg: None)
    seed = config.seed if config.seed is not None else random.randrange(2**32)
    rng = random.Random(seed)
    with contextlib.ExitStack() as stack:
        if config.data_dir is None:
            data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="load-")))
        else:
            data_dir = Path(config.data_dir)
        url = stack.enter_context(_database(config.database_url))
        t_setup = time.monotonic()
        deploy = config.deployment or functools.partial(served, start=False)
        server = stack.enter_context(deploy(data_dir / "data", url, workers=config.workers))
        xform_path = data_dir / "load_photos.xml"
        xform_path.write_bytes(_photos_xform())
        server.cli("forms", "publish", str(xform_path))
        server.start()
        collect_url = server.add_volunteer("load")
        with HttpTransport() as transport:
            c = Collect(collect_url, transport)
            xforms = {f["formID"]: c.download_form(f) for f in c.form_list()
                      if f["formID"] in (SURVEY, PHOTOS)}
        setup_s = time.monotonic() - t_setup
        log(f"server up in {setup_s:.1f} s on {server.database_url.split('@')[-1]} "
            f"(seed {seed})")

        progress, abort, done = Progress(), threading.Event(), threading.Event()
        secret = _secret(server)
        shares = [config.submissions // config.clients
                  + (i < config.submissions % config.clients) for i in range(config.clients)]
        clients = [Client(i, collect_url, xforms, n, config, secret, progress, abort,
                          rng.randrange(2**32)) for i, n in enumerate(shares)]
        crash = bool(config.kills or config.kill_every)
        killer = Killer(server, progress, config.submissions, kills=config.kills,
                        every=config.kill_every, rng=random.Random(rng.randrange(2**32)),
                        done=done, abort=abort,
                        hold_slack=config.clients if config.hold_for_kills else None,
                        ) if crash else None
        beside = _Beside(config.during, server, progress) if config.during else None
        t0 = time.perf_counter()
        for c in clients:
            c.start()
        if killer:
            killer.start()
        if beside:
            beside.start()
        for c in clients:
            c.join()
        elapsed = time.perf_counter() - t0
        done.set()
        if killer:
            killer.join()
        if beside:
            beside.join()
        log(f"load done in {elapsed:.1f} s; stopping the server")
        if crash and server.running:
            server.kill()  # the last word is a crash too: verify what a kill leaves behind
        else:
            server.stop()
        ledger = [e for c in clients for e in c.ledger]
        verification = verify(server.database_url, server.data_dir, ledger)

    statuses: Counter[int] = Counter()
    for c in clients:
        statuses.update(c.statuses)
    ok_latency = [e.latency_ms for e in ledger if e.latency_ms is not None]
    totals = [e.total_ms for e in ledger if e.total_ms is not None]
    acked = sum(e.acked for e in ledger)
    errors = [f"{c.name}: {c.error!r}" for c in clients if c.error is not None]
    if killer and killer.error is not None:
        errors.append(f"killer: {killer.error!r}")
    if beside and beside.error is not None:
        errors.append(f"during: {beside.error!r}")
    refused = [f for e in ledger for f in e.failures if not f.startswith("retry")]
    errors += sorted(set(refused))[:10]
    return Report(
        config={**asdict(config), "seed": seed, "data_dir": str(config.data_dir or "")},
        database="postgresql" if server.database_url.startswith("postgresql") else "sqlite",
        elapsed_s=elapsed, acknowledged=acked, per_s=acked / elapsed if elapsed else 0.0,
        p50_ms=statistics.median(ok_latency) if ok_latency else 0.0,
        p95_ms=_percentile(ok_latency, 0.95), total_p95_ms=_percentile(totals, 0.95),
        attempts=sum(e.attempts for e in ledger), resent=sum(e.attempts > 1 for e in ledger),
        transient_errors=sum(c.transient for c in clients), refused=len(refused),
        cut_in_flight=sum(c.cut for c in clients),
        abandoned=sum(e.abandoned for e in ledger),
        kills=len(killer.downtimes) if killer else 0,
        kill_points=killer.kill_points if killer else [],
        downtime_s=killer.downtimes if killer else [],
        statuses={str(k): n for k, n in sorted(statuses.items())},
        client_errors=errors, verification=verification, setup_s=setup_s,
        collect_url=collect_url, ledger=ledger,
    )


def bench(clients: int = 8, submissions: int = 800, database_url: str | None = None, *,
          kills: int = 0, workers: int = 2, seed: int | None = None) -> dict:
    """Figures for `make bench`: submissions/s, p50/p95 ms, lost, duplicates, kills, …"""
    report = run(LoadConfig(clients=clients, submissions=submissions, kills=kills,
                            database_url=database_url, workers=workers, seed=seed))
    return report.figures()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.load", description=__doc__.split(
        "\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--submissions", type=int, default=400, help="in all")
    kill = parser.add_mutually_exclusive_group()
    kill.add_argument("--kill-every", type=float, metavar="SECONDS",
                      help="SIGKILL the whole server about every SECONDS (±50 %%) and restart")
    kill.add_argument("--kills", type=int, default=0,
                      help="SIGKILL the server this many times at random moments of the load")
    parser.add_argument("--database-url", help="PostgreSQL server to use (a fresh database is "
                        "created beside the one named and dropped afterwards); default SQLite")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--data-dir", type=Path, help="keep the server's data here")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON too")
    args = parser.parse_args(argv)
    if args.clients < 1 or args.submissions < 1:
        parser.error("--clients and --submissions must be at least 1")
    config = LoadConfig(clients=args.clients, submissions=args.submissions,
                        kill_every=args.kill_every, kills=args.kills,
                        database_url=args.database_url, workers=args.workers, seed=args.seed,
                        data_dir=args.data_dir)
    report = run(config, log=lambda msg: print(msg, file=sys.stderr, flush=True))
    print(report.summary())
    if args.json:
        print(json.dumps(report.figures(), indent=2))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
