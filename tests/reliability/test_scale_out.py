"""Scale-out as a province runs it: two app servers (each gunicorn) behind nginx, sharing one
PostgreSQL database and the database blob store (SERVER_BLOB_STORE=database), with the same
SERVER_SECRET_KEY and SERVER_PID_KEY. Collect-like clients post through nginx while one
instance, then the other, is SIGKILLed, left down for a moment and started again.

Nothing acknowledged is lost or doubled; the survivor answers through nginx while the other
is down; entity lists (households.csv through the manifest) and every CSV export are the
same bytes from either instance.

Needs PostgreSQL (a fresh database beside TEST_DATABASE_URL) and nginx (installed with apt
when missing and allowed). Small in `make test`; the full size is
SCALE_OUT_SUBMISSIONS=10000 SCALE_OUT_KILLS=3 SCALE_OUT_CLIENTS=8 SCALE_OUT_WORKERS=2, or
`BENCH_SCALE_OUT=1 make bench`. LOAD_SEED=N replays a run.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from html import unescape
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine, func, select

from server.config import DEFAULTS
from server.db.models import Entity
from tests.load import LoadConfig, Report, run
from tests.support.collect import Collect, HttpTransport
from tests.support.served import ADMIN_PASSWORD, Server, free_port, fresh_postgres_database

PG_URL = os.environ.get("TEST_DATABASE_URL")
SEED = int(os.environ["LOAD_SEED"]) if os.environ.get("LOAD_SEED") else None
SUBMISSIONS = int(os.environ.get("SCALE_OUT_SUBMISSIONS", "120"))
KILLS = int(os.environ.get("SCALE_OUT_KILLS", "2"))
CLIENTS = int(os.environ.get("SCALE_OUT_CLIENTS", "6"))
WORKERS = int(os.environ.get("SCALE_OUT_WORKERS", "1"))  # per instance
DOWN_S = 1.0  # how long a killed instance stays down before it is started again
FAIL_TIMEOUT_S = 2  # nginx's fail_timeout: how long it skips an instance that failed
LIMIT = int(DEFAULTS["MAX_SUBMISSION_BYTES"])  # SERVER_MAX_SUBMISSION_BYTES
# The server refuses a body above its limit plus the multipart framing (config.py) with an
# OpenRosa 413; nginx must let such a body through to get that answer.
BODY_LIMIT = LIMIT + 256 * 1024

NGINX_CONF = """\
daemon off;
worker_processes 1;
{user}pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 512; }}
http {{
    access_log off;  # the URLs carry tokens; the app logs requests with tokens masked
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    upstream odk {{
        server 127.0.0.1:{port_a} max_fails=1 fail_timeout={fail_timeout}s;
        server 127.0.0.1:{port_b} max_fails=1 fail_timeout={fail_timeout}s;
        keepalive 16;
    }}
    server {{
        listen 127.0.0.1:{port};
        client_max_body_size {body_limit};
        location / {{
            proxy_pass http://odk;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $remote_addr;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Host $http_host;
            # A dead instance: try the other. POSTs too: a submission is idempotent by its
            # instanceID, and nginx holds the whole body, so it can send it again.
            proxy_next_upstream error timeout non_idempotent;
            proxy_next_upstream_tries 2;
            proxy_connect_timeout 2s;
            proxy_read_timeout 120s;
            proxy_send_timeout 120s;
        }}
    }}
}}
"""


def nginx_binary() -> str | None:
    """nginx, installed from Debian's package when it is missing and we may install."""
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/sbin")
    if found or os.geteuid() != 0 or shutil.which("apt-get") is None:
        return found
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "nginx"]
    if subprocess.run(install, env=env, capture_output=True, check=False).returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, check=False)
        subprocess.run(install, env=env, capture_output=True, check=False)
    return shutil.which("nginx", path="/usr/sbin:/sbin:/usr/bin")


class Pair:
    """Two instances behind nginx. To the load tool it is one `Server`: `kill` SIGKILLs one
    instance (each in turn) and keeps it down for DOWN_S while probing the survivor through
    nginx; `start` starts whatever is down."""

    def __init__(self, root: Path, database_url: str, nginx: str, workers: int = 2):
        self.host = "127.0.0.1"
        self.port = free_port()
        self.env = {"SERVER_SECRET_KEY": secrets.token_hex(32),
                    "SERVER_PID_KEY": secrets.token_hex(32),
                    "SERVER_BLOB_STORE": "database", "SERVER_TRUST_PROXY": "1",
                    "SERVER_MAX_SUBMISSION_BYTES": str(LIMIT)}
        self.instances = [Server(root / name, database_url, workers=workers, env=self.env)
                          for name in ("a", "b")]
        self.database_url = database_url
        self.data_dir = self.instances[0].data_dir
        self.nginx_bin = nginx
        self.nginx_dir = root / "nginx"
        self.nginx: subprocess.Popen | None = None
        self.kills = 0
        self.probes: list[list[int]] = []  # per kill: statuses of /healthz through nginx

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return any(i.running for i in self.instances)

    def cli(self, *args: str, **kwargs) -> str:
        return self.instances[0].cli(*args, **kwargs)

    def init(self) -> None:
        self.instances[0].init()

    def add_volunteer(self, username: str, team: str = "tdp01") -> str:
        self.cli("user", "add", username, "--role", "volunteer", "--team", team)
        return self.collect_url(username)

    def collect_url(self, username: str) -> str:
        return self.cli("user", "collect-url", username, "--base-url", self.base_url).strip()

    def start(self) -> None:
        if self.nginx is None:
            self._start_nginx()
        down = [i for i in self.instances if not i.running]
        marks = {i: i.log_path.stat().st_size if i.log_path.exists() else 0 for i in down}
        with ThreadPoolExecutor(len(down) or 1) as starting:  # side by side, as two machines
            list(starting.map(lambda instance: instance.start(), down))
        for instance in down:
            self._routed_again(instance, marks[instance])

    def _routed_again(self, instance: Server, mark: int, timeout: float = 60) -> None:
        """Wait until nginx sends requests to `instance` again. After a failure nginx skips
        an instance for fail_timeout, then lets a single request try it, and counts it live
        only once that one succeeded; until then a failure of the other instance would
        leave nothing to answer. The instance's request log shows what reached it."""
        deadline = time.monotonic() + timeout
        with requests.Session() as http:
            http.trust_env = False
            while time.monotonic() < deadline:
                with contextlib.suppress(requests.RequestException):
                    http.head(f"{self.base_url}/healthz", timeout=10)
                with open(instance.log_path, "rb") as log:
                    log.seek(mark)
                    if b'"method": "HEAD", "path": "/healthz"' in log.read():
                        return
                time.sleep(0.1)
        raise RuntimeError(f"nginx sent nothing to {instance.base_url} in {timeout:.0f} s")

    def kill(self) -> None:
        victim = self.instances[self.kills % 2]
        victim.kill()
        self.kills += 1
        statuses = []
        with requests.Session() as http:
            http.trust_env = False
            until = time.monotonic() + DOWN_S
            while time.monotonic() < until:
                try:
                    statuses.append(http.get(f"{self.base_url}/healthz", timeout=10).status_code)
                except requests.RequestException:
                    statuses.append(0)
                time.sleep(0.1)
        self.probes.append(statuses)

    def stop(self) -> None:
        for instance in self.instances:
            instance.stop()
        if self.nginx is not None:
            self.nginx.send_signal(signal.SIGQUIT)  # graceful
            try:
                self.nginx.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.nginx.kill()
                self.nginx.wait(timeout=10)
            self.nginx = None

    def _start_nginx(self) -> None:
        self.nginx_dir.mkdir(parents=True, exist_ok=True)
        user = f"user {pwd.getpwuid(0).pw_name};\n" if os.geteuid() == 0 else ""
        conf = self.nginx_dir / "nginx.conf"
        conf.write_text(NGINX_CONF.format(
            user=user, dir=self.nginx_dir, port=self.port, body_limit=BODY_LIMIT,
            fail_timeout=FAIL_TIMEOUT_S,
            port_a=self.instances[0].port, port_b=self.instances[1].port))
        with open(self.nginx_dir / "stderr.log", "ab") as stderr:
            self.nginx = subprocess.Popen(
                [self.nginx_bin, "-c", str(conf), "-p", str(self.nginx_dir),
                 "-e", str(self.nginx_dir / "error.log")],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.nginx.poll() is not None:
                raise RuntimeError("nginx exited: "
                                   + (self.nginx_dir / "stderr.log").read_text(errors="replace"))
            with contextlib.suppress(OSError), socket.create_connection(
                    (self.host, self.port), timeout=1):
                return
            time.sleep(0.05)
        raise RuntimeError("nginx did not listen")


@contextlib.contextmanager
def two_instances(root: Path, database_url: str, nginx: str, workers: int = 2) -> Iterator[Pair]:
    pair = Pair(root, database_url, nginx, workers)
    try:
        pair.init()
        yield pair
    finally:
        pair.stop()


def _households_csv(collect: Collect) -> tuple[bytes, str]:
    """households.csv as a phone gets it: through the survey's manifest; and the md5 listed."""
    entry = next(f for f in collect.form_list() if f["formID"] == "household_survey")
    media = next(m for m in collect.manifest(entry) if m["filename"] == "households.csv")
    response = collect.download_media(media)
    assert response.status == 200
    return response.body, media["hash"]


# Columns that say when a file was made: they differ between any two downloads.
MADE_AT = {"generated_at", "data_cutoff"}


def _csv_exports(session: requests.Session, base: str) -> dict[str, list[list[str]]]:
    """Every CSV the exports page links to, as rows, without the columns saying when."""
    page = session.get(f"{base}/exports", timeout=60)
    assert page.status_code == 200, page.status_code
    links = sorted({unescape(h) for h in re.findall(r'href="([^"]+\.csv)"', page.text)})
    out = {}
    for link in links:
        r = session.get(f"{base}{link}", timeout=300)
        assert r.status_code == 200, (link, r.status_code)
        rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
        keep = [i for i, name in enumerate(rows[0]) if name not in MADE_AT] if rows else []
        out[link] = [[row[i] for i in keep if i < len(row)] for row in rows]
    return out


def _login(base: str, password: str = ADMIN_PASSWORD) -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    page = session.get(f"{base}/login", timeout=30)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    r = session.post(f"{base}/login", data={"username": "admin", "password": password,
                                            "csrf_token": csrf}, allow_redirects=False,
                     timeout=30)
    assert r.status_code == 302, r.status_code
    return session


def test_two_instances_behind_nginx_lose_nothing_while_one_is_killed(tmp_path):
    if not PG_URL:
        pytest.skip("needs PostgreSQL: set TEST_DATABASE_URL")
    nginx = nginx_binary()
    if nginx is None:
        pytest.skip("needs nginx (apt-get install nginx)")
    report, _probes = scale_out(tmp_path, PG_URL, nginx, submissions=SUBMISSIONS, kills=KILLS,
                                clients=CLIENTS, workers=WORKERS, seed=SEED,
                                log=lambda message: print(message, flush=True))
    print(report.summary())


def bench(pg_url: str, root: Path) -> dict:
    """`make bench` with BENCH_SCALE_OUT=1: the full size (BENCH_SCALE_OUT_SUBMISSIONS,
    default 10,000, and 3 kills); its figures, with `ok` false and the reason on failure."""
    nginx = nginx_binary()
    if nginx is None:
        return {"ok": False, "error": "nginx is missing"}
    submissions = int(os.environ.get("BENCH_SCALE_OUT_SUBMISSIONS", "10000"))
    kills = int(os.environ.get("BENCH_SCALE_OUT_KILLS", "3"))
    try:
        report, probes = scale_out(root, pg_url, nginx, submissions=submissions, kills=kills,
                                   clients=8, workers=2,
                                   log=lambda message: print(message, flush=True))
    except AssertionError as exc:
        return {"ok": False, "error": str(exc)[:2000]}
    print(report.summary())
    return {**report.figures(), "survivor_probes": sum(len(p) for p in probes),
            "survivor_probe_failures": sum(s != 200 for p in probes for s in p)}


def rows(f: dict) -> list[tuple[str, str, str]]:
    """The bench table's lines."""
    if not f.get("acknowledged"):
        return [("scale-out", "FAILED", f.get("error", "")[:200])]
    return [
        ("scale-out: 2 instances behind nginx", f"{f['per_s']:.1f}/s",
         f"{f['acknowledged']} acknowledged, {f['kills']} SIGKILLs, "
         f"p50 {f['p50_ms']:.0f} ms, p95 {f['p95_ms']:.0f} ms"),
        ("scale-out: lost / doubled", f"{f['lost']} / {f['duplicates']}",
         f"{f['attachments']} attachments, {f['attachments_lost']} lost, "
         f"{f['attachments_corrupt']} corrupt"),
        ("scale-out: survivor through nginx",
         f"{f['survivor_probes'] - f['survivor_probe_failures']}/{f['survivor_probes']} ok",
         f"{f['transient_errors']} transient errors seen by clients; "
         + ("OK" if f["ok"] else "FAILED")),
    ]


def scale_out(root: Path, pg_url: str, nginx: str, *, submissions: int, kills: int,
              clients: int, workers: int = 2, seed: int | None = None,
              log=None) -> tuple[Report, list[list[int]]]:
    """The whole check (AssertionError on any failure); the load report and the probes of
    the survivor. `make bench` runs it at full size."""
    with fresh_postgres_database(pg_url, prefix="scaleout") as url, \
            two_instances(root, url, nginx, workers) as pair:
        report = run(LoadConfig(
            clients=clients, submissions=submissions, kills=kills, seed=seed, data_dir=root,
            workers=workers, hold_for_kills=True,
            deployment=lambda _data_dir, _url, workers: contextlib.nullcontext(pair)), log=log)
        summary = f"seed {report.config['seed']}\n{report.summary()}\nprobes {pair.probes}"
        check_nothing_lost(report, summary, submissions, kills)
        # the survivor answered through nginx every time the other was down (the load tool
        # kills once more at the end, to verify what a kill leaves behind)
        assert len(pair.probes) == kills + 1 and all(pair.probes), summary
        assert all(s == 200 for probe in pair.probes for s in probe), summary
        # and the clients never noticed: nginx gave what was cut to the survivor
        assert not [code for code in report.statuses if code.startswith("5")], summary
        assert pair.instances[0].kills >= 1 and pair.instances[1].kills >= 1, summary

        pair.start()  # the one killed last comes back
        check_same_from_both(pair, report)
        return report, pair.probes


def check_nothing_lost(report: Report, summary: str, submissions: int, kills: int) -> None:
    v = report.verification
    assert report.client_errors == [], summary
    assert report.kills == kills and all(0 < p < submissions for p in report.kill_points), \
        summary
    assert report.refused == report.abandoned == 0, summary
    assert v.acknowledged == v.complete == v.stored == submissions, summary
    assert v.lost == v.duplicated == v.unknown == v.bad_versions == 0, summary
    assert v.attachments_lost == v.attachments_corrupt == v.attachments_unexpected == 0, summary
    assert v.missing_blob_content == v.relational_errors == 0 and v.integrity == "ok", summary
    assert v.blob_files == 0, summary  # every byte is in the database
    assert report.ok, summary


def check_same_from_both(pair: Pair, report: Report) -> None:
    token_path = report.collect_url.split("/v1/", 1)[1]
    lists = []
    with HttpTransport() as transport:
        for base in [i.base_url for i in pair.instances] + [pair.base_url]:
            lists.append(_households_csv(Collect(f"{base}/v1/{token_path}", transport)))
    engine = create_engine(pair.database_url)
    try:
        with engine.connect() as conn:
            live = conn.scalar(select(func.count()).select_from(Entity).where(
                Entity.dataset == "households", Entity.canonical_id.is_(None),
                Entity.erased.is_(False), Entity.tdp == "tdp01"))
    finally:
        engine.dispose()
    body, listed_md5 = lists[0]
    assert live > 0 and body.count(b"\n") == live + 1  # header + one row per household
    assert listed_md5 == hashlib.md5(body).hexdigest()
    assert lists[1] == lists[0] and lists[2] == lists[0]  # a, b and through nginx

    # one login (through nginx) is good on both instances: the session is a signed cookie
    session = _login(pair.base_url)
    try:
        a, b = (_csv_exports(session, i.base_url) for i in pair.instances)
    finally:
        session.close()
    assert a.keys() == b.keys() and len(a) >= 3, sorted(a)
    surveys = sum(e.form_id == "household_survey" for e in report.ledger)
    tables = [a[link] for link in a if "/exports/submissions/household_survey/" in link]
    assert any(len(rows) == surveys + 1 for rows in tables), sorted(a)  # the root table
    for link in a:
        assert a[link] == b[link], link


def test_an_entity_list_is_cached_only_under_the_revision_it_shows(app, ward, monkeypatch):
    """Another app server commits a household while this one builds households.csv: the
    list is not kept under the revision read before (on PostgreSQL it shows the new row)."""
    from server.db.models import User
    from server.domain import entities, generated_media

    db = app.extensions["db"]
    built = generated_media.households_csv

    def racing(session, project_id, scope):
        with db.session(write=True) as other:
            other.add(Entity(id=str(uuid.uuid4()), project_id=project_id, dataset="households",
                             label="Hộ chen ngang", version=1, properties={"tdp": "tdp01"},
                             tdp="tdp01"))
            entities.bump_revision(other, project_id, "households")
            other.commit()
        return built(session, project_id, scope)

    cache = generated_media.ListCache()
    monkeypatch.setattr(generated_media, "households_csv", racing)
    with db.session() as session:
        volunteer = session.scalar(select(User).where(User.username == ward.volunteer))
        before = entities.revision(session, ward.project_id, "households")
        generated_media.render(session, cache, "households.csv", ward.project_id, volunteer)
    monkeypatch.setattr(generated_media, "households_csv", built)

    kept = cache.get_or_build((ward.project_id, "households.csv", "tdp01"), before,
                              lambda: b"nothing kept")
    assert "Hộ chen ngang".encode() not in kept.data
    with db.session() as session:
        volunteer = session.scalar(select(User).where(User.username == ward.volunteer))
        after = generated_media.render(session, cache, "households.csv", ward.project_id,
                                       volunteer)
    assert "Hộ chen ngang".encode() in after.data
