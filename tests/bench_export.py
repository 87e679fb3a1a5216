"""Export speed, measured side by side with the database's own CSV dump in the same run.

    raw root CSV   A fresh database is filled with realistic household surveys: a small
                   synthetic ward goes through the real ingest, then its submissions (XML,
                   parsed fields, attachments, edits and review states) are copied with new
                   instanceIDs by bulk SQL up to 20k and then 1M rows. The real export code
                   path (`raw_tables` + `write_csv`, as `python -m server export submissions`
                   writes the root CSV) runs in a child process: rows/s and its peak RSS.
    baseline       The same CSV loaded into a plain table of text columns (same rows, same
                   width), dumped by the database itself: the `sqlite3` shell's `.mode csv` /
                   `.once`, PostgreSQL's `COPY (…) TO STDOUT WITH CSV` through psql.
    reports        E1–E9 (`export indicators/households/activity/dedupe --period 2026`) on
                   the synthetic ward of domain §8, loaded through the real ingest.

    scale curve    At each size the real server under gunicorn also takes the realistic ingest
                   load (tests/bench_scale.py: new households with their entities, so
                   matching runs against the store): ingest rate and CPU per submission at
                   10k, 100k and 1M stored submissions.

BENCH_EXPORT_ROWS (default "10000,20000,100000,1000000"), BENCH_SCALE_INGEST=0 (no ingest at
each size), BENCH_SCALE_SUBMISSIONS (default 400), BENCH_EXPORT_WARD (households, default 8000;
0 skips the reports) and BENCH_EXPORT_ON (default "sqlite,postgresql") shorten it. Run alone:
`python -m tests.bench_export` (PostgreSQL too with BENCH_DATABASE_URL, in a database created
beside that one and dropped after).
"""

from __future__ import annotations

import csv
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SIZES = [int(n) for n in os.environ.get("BENCH_EXPORT_ROWS", "10000,20000,100000,1000000")
         .split(",") if n]
# At each size, the realistic ingest load too (tests/bench_scale.py): the scale curve.
SCALE_INGEST = os.environ.get("BENCH_SCALE_INGEST", "1") == "1"
WARD_HOUSEHOLDS = int(os.environ.get("BENCH_EXPORT_WARD", "8000"))
DATABASES = os.environ.get("BENCH_EXPORT_ON", "sqlite,postgresql").split(",")
TEMPLATE_HOUSEHOLDS = 150  # the small ward whose real submissions are copied
CENTRAL = {"rows": 10_000, "seconds": 0.88}  # ODK Central, 10k submissions as CSV
CENTRAL_ROWS_PER_S = CENTRAL["rows"] / CENTRAL["seconds"]
FORM = "household_survey"
REPORT_KINDS = ("indicators", "households", "activity", "dedupe")


# --- the database ---------------------------------------------------------------------------


@dataclass
class Template:
    submission: dict
    version: dict
    attachments: list[dict]


def _app(data: Path, db_url: str | None):
    from server import create_app

    config = {"DATA_DIR": str(data), "VALIDATE_FORMS": 0, "SECRET_KEY": "bench",
              "PID_KEY": "bench"}
    if db_url:
        config["DATABASE_URL"] = db_url
    return create_app(config)


def prepare(data: Path, db_url: str | None) -> tuple[object, list[Template]]:
    """Schema, ward, forms and a small synthetic ward ingested for real: the templates."""
    from sqlalchemy import select

    from server.db.models import Attachment, Form, Submission, SubmissionVersion
    from tests import bench_dedupe
    from tests.support.factories import make_ward
    from tests.support.synthetic_ward import generate

    app = _app(data, db_url)
    app.extensions["db"].upgrade()
    make_ward(app)
    xforms = bench_dedupe._xforms(app)
    ward = generate(xforms[FORM], xforms["support_visit"], households=TEMPLATE_HOUSEHOLDS)
    bench_dedupe._load(app, ward, ward.survey_uploads, match=False)

    session = app.extensions["db"].session()
    try:
        form_id = session.scalar(select(Form.id).where(Form.xml_form_id == FORM))
        pairs = session.execute(
            select(Submission, SubmissionVersion)
            .join(SubmissionVersion, SubmissionVersion.submission_id == Submission.id)
            .where(SubmissionVersion.form_id == form_id, SubmissionVersion.current.is_(True))
            .order_by(Submission.id)).all()
        templates = []
        for sub, ver in pairs:
            atts = session.scalars(select(Attachment)
                                   .where(Attachment.submission_version_id == ver.id)).all()
            version = _columns(ver)
            version["fields"] = json.dumps(version["fields"])  # as SQLAlchemy stores it
            templates.append(Template(
                _columns(sub), version,
                [{k: v for k, v in _columns(a).items() if k not in ("id",)} for a in atts]))
    finally:
        session.close()
    return app, templates


def _columns(obj) -> dict:
    return {c.key: getattr(obj, c.key) for c in obj.__table__.columns}


class Filler:
    """Appends copies of the templates with bulk SQL (no ORM, no HTTP) up to a total.

    1 % of the submissions are edited (an older version beside the current one), 5 % are
    approved and 1 % have issues, so the export's edits and review columns do real work.
    """

    def __init__(self, app, templates: list[Template]):
        self.engine = app.extensions["db"].engine
        self.templates = templates
        self.rng = random.Random(4242)  # not the ward's seed: its uuids would repeat
        self.count = len(templates)  # the ingested ones are rows of the export too
        with self.engine.connect() as conn:
            self.next_sub = conn.exec_driver_sql(
                "SELECT coalesce(max(id), 0) + 1 FROM submissions").scalar()
            self.next_ver = conn.exec_driver_sql(
                "SELECT coalesce(max(id), 0) + 1 FROM submission_versions").scalar()
        self.start = datetime(2026, 1, 5, 1, 0, tzinfo=UTC)

    def resume_after(self, ingested: int) -> None:
        """Submissions were ingested by the server meanwhile: count them, skip their ids."""
        self.count += ingested
        with self.engine.connect() as conn:
            self.next_sub = conn.exec_driver_sql(
                "SELECT coalesce(max(id), 0) + 1 FROM submissions").scalar()
            self.next_ver = conn.exec_driver_sql(
                "SELECT coalesce(max(id), 0) + 1 FROM submission_versions").scalar()

    def fill_to(self, total: int, batch: int = 5000) -> None:
        while self.count < total:
            n = min(batch, total - self.count)
            subs, vers, atts = [], [], []
            for _ in range(n):
                self._one(subs, vers, atts)
            self._insert(subs, vers, atts)

    def _one(self, subs: list, vers: list, atts: list) -> None:
        i = self.count
        self.count += 1
        t = self.templates[i % len(self.templates)]
        old_iid = t.version["instance_id"]
        iid = f"uuid:{uuid.UUID(int=self.rng.getrandbits(128), version=4)}"
        created = self.start + timedelta(seconds=i * 23 + self.rng.random())
        review = "approved" if i % 20 == 3 else "has_issues" if i % 100 == 11 else "received"
        sid = self.next_sub
        self.next_sub += 1
        first = iid
        if i % 100 == 7:  # an edit: the first version stays as a non-current row
            first = f"uuid:{uuid.UUID(int=self.rng.getrandbits(128), version=4)}"
            vers.append(self._version(t, old_iid, first, sid, created, current=False,
                                      deprecated=None))
        subs.append({**t.submission, "id": sid, "instance_id": first, "created_at": created,
                     "review_state": review})
        ver = self._version(t, old_iid, iid, sid, created + timedelta(seconds=5 if first != iid
                                                                        else 0),
                            current=True, deprecated=first if first != iid else None)
        vers.append(ver)
        for a in t.attachments:
            atts.append({**a, "submission_version_id": ver["id"]})

    def _version(self, t: Template, old_iid: str, iid: str, sid: int, received: datetime, *,
                 current: bool, deprecated: str | None) -> dict:
        vid = self.next_ver
        self.next_ver += 1
        fields = t.version["fields"].replace(old_iid, iid)
        return {**t.version, "id": vid, "submission_id": sid, "instance_id": iid,
                "deprecated_id": deprecated, "current": current, "received_at": received,
                "xml": t.version["xml"].replace(old_iid.encode(), iid.encode()),
                "fields": fields}

    def _insert(self, subs: list, vers: list, atts: list) -> None:
        raw = self.engine.raw_connection()
        try:
            if self.engine.dialect.name == "sqlite":
                _sqlite_insert(raw.driver_connection, subs, vers, atts)
            else:
                _copy_insert(raw.driver_connection, subs, vers, atts)
            raw.commit()
        finally:
            raw.close()


def _sqlite_value(value):
    if isinstance(value, datetime):  # as the UTCDateTime column stores it on SQLite
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return value


def _sqlite_insert(conn, subs: list, vers: list, atts: list) -> None:
    conn.execute("PRAGMA synchronous=OFF")
    for table, rows in (("submissions", subs), ("submission_versions", vers),
                        ("attachments", atts)):
        if rows:
            cols = list(rows[0])
            conn.executemany(
                f"INSERT INTO {table} ({', '.join(cols)}) VALUES "  # noqa: S608 (own names)
                f"({', '.join('?' for _ in cols)})",
                [tuple(_sqlite_value(r[c]) for c in cols) for r in rows])


def _copy_insert(conn, subs: list, vers: list, atts: list) -> None:
    with conn.cursor() as cur:
        for table, rows in (("submissions", subs), ("submission_versions", vers),
                            ("attachments", atts)):
            if not rows:
                continue
            cols = list(rows[0])
            with cur.copy(f"COPY {table} ({', '.join(cols)}) FROM STDIN") as copy:
                for r in rows:
                    copy.write_row([json.dumps(r[c]) if isinstance(r[c], (dict, list))
                                    else r[c] for c in cols])
        # The ids were given explicitly: move the sequences past them, so the server's own
        # inserts (the scale curve's ingest) get fresh ones.
        for table in ("submissions", "submission_versions"):
            cur.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608
                        f"(SELECT max(id) FROM {table}))")


# --- measuring ------------------------------------------------------------------------------


def _timed(cmd: list[str], *, env: dict | None = None, stdout=subprocess.PIPE) -> dict:
    """Wall time, CPU time and peak RSS of one child process.

    The peak is the child's VmHWM, polled while it runs: wait4's ru_maxrss would report the
    parent's size, which a vfork-started child inherits at exec.
    """
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=REPO, stdout=stdout, stderr=subprocess.PIPE)
    peak = [0]
    watcher = threading.Thread(target=_watch_hwm, args=(proc.pid, peak), daemon=True)
    watcher.start()
    out, err = proc.communicate()
    elapsed = time.perf_counter() - t0
    watcher.join()
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[:3]} failed: {err.decode(errors='replace')[-2000:]}")
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # CPU is summed, so take the delta
    return {"wall_s": elapsed, "peak_rss_mb": peak[0] / 1024, "stdout": out or b"",
            "cpu_children_s": usage.ru_utime + usage.ru_stime}


def _watch_hwm(pid: int, peak: list[int]) -> None:
    status = Path(f"/proc/{pid}/status")
    while True:
        try:
            text = status.read_text()
        except OSError:
            return
        if "VmHWM:" not in text:  # exited (a zombie has no memory left)
            return
        peak[0] = max(peak[0], int(text.split("VmHWM:")[1].split()[0]))
        time.sleep(0.01)


def _cpu(cmd: list[str], **kw) -> dict:
    """`_timed`, with the CPU seconds this one child used."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    run = _timed(cmd, **kw)
    run["cpu_s"] = run.pop("cpu_children_s") - (before.ru_utime + before.ru_stime)
    return run


def export_root_csv(data: Path, db_url: str | None, out: Path) -> dict:
    """The real export code path in a child process: the root CSV of the form."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "tests.bench_export", "child", str(data), db_url or "",
           str(out)]
    run = _timed(cmd, env=env)
    child = json.loads(run["stdout"])
    return {**child, "process_s": run["wall_s"]}


def _child(data: str, db_url: str, out: str) -> None:
    """Runs in the child: time only the export, as the command does it after start-up."""
    from server.domain.forms import get_form
    from server.exports.raw import raw_tables
    from server.exports.tables import write_csv

    app = _app(Path(data), db_url or None)
    session = app.extensions["db"].session()
    try:
        t0, cpu0 = time.perf_counter(), time.process_time()
        form = get_form(session, 1, FORM)
        root = raw_tables(session, form, timezone=app.config["TIMEZONE"])[0]
        size = write_csv(root, Path(out), bom=True)
        elapsed = time.perf_counter() - t0
        cpu = time.process_time() - cpu0
    finally:
        session.close()
        app.extensions["db"].dispose()
    # the peak of this process: the export's, since counting the rows below needs little
    hwm = int(Path("/proc/self/status").read_text().split("VmHWM:")[1].split()[0])
    with open(out, encoding="utf-8-sig", newline="") as fh:
        reader = csv.reader(fh)
        width = len(next(reader))
        rows = sum(1 for _ in reader)
    print(json.dumps({"rows": rows, "columns": width, "bytes": size, "export_s": elapsed,
                      "rows_per_s": rows / elapsed, "cpu_s": cpu,
                      "cpu_us_per_row": 1e6 * cpu / rows, "peak_rss_mb": hwm / 1024}))


def _baseline_sqlite(db_path: Path, csv_path: Path, columns: int, dump: Path) -> dict:
    """The same rows and width in a plain table, dumped by the sqlite3 shell."""
    sqlite3 = shutil.which("sqlite3")
    if sqlite3 is None:
        raise RuntimeError("the sqlite3 shell is missing: apt-get install sqlite3")
    cols = ", ".join(f"c{i} TEXT" for i in range(columns))
    subprocess.run([sqlite3, "-bail", str(db_path), "DROP TABLE IF EXISTS bench_baseline;",
                    f"CREATE TABLE bench_baseline ({cols});", ".mode csv",
                    f".import --skip 1 '{csv_path}' bench_baseline"], check=True)
    run = _cpu([sqlite3, "-bail", str(db_path), ".mode csv", f".once '{dump}'",
                "SELECT * FROM bench_baseline;"])
    subprocess.run([sqlite3, str(db_path), "DROP TABLE bench_baseline;"], check=True)
    return {"tool": "sqlite3 shell .mode csv / .once", "wall_s": run["wall_s"],
            "cpu_s": run["cpu_s"], "peak_rss_mb": run["peak_rss_mb"],
            "bytes": dump.stat().st_size}


def _psql(url: str) -> list[str]:
    from sqlalchemy.engine import make_url

    u = make_url(url)
    return ["psql", "-q", "-X", "-v", "ON_ERROR_STOP=1", "-h", u.host or "127.0.0.1",
            "-p", str(u.port or 5432), "-U", u.username or "postgres", "-d", u.database]


def _baseline_postgres(url: str, csv_path: Path, columns: int, dump: Path) -> dict:
    """The same rows and width in a plain table, dumped with COPY … TO STDOUT WITH CSV."""
    cols = ", ".join(f"c{i} text" for i in range(columns))
    psql = _psql(url)
    subprocess.run([*psql, "-c", "DROP TABLE IF EXISTS bench_baseline",
                    "-c", f"CREATE TABLE bench_baseline ({cols})",
                    "-c", f"\\copy bench_baseline FROM '{csv_path}' WITH (FORMAT csv, HEADER)",
                    "-c", "VACUUM ANALYZE bench_baseline"], check=True)
    with dump.open("wb") as fh:
        run = _timed([*psql, "-c", "COPY (SELECT * FROM bench_baseline) TO STDOUT WITH CSV"],
                     stdout=fh)
    subprocess.run([*psql, "-c", "DROP TABLE bench_baseline"], check=True)
    return {"tool": "psql COPY (SELECT …) TO STDOUT WITH CSV", "wall_s": run["wall_s"],
            "peak_rss_mb": run["peak_rss_mb"], "bytes": dump.stat().st_size}


def raw_export(label: str, tmp: Path, db_url: str | None) -> dict:
    """Fill up to each size in turn; export, then the baseline, at every size."""
    data = tmp / f"export-{label}"
    app, templates = prepare(data, db_url)
    filler = Filler(app, templates)
    if db_url is None:
        app.extensions["db"].dispose()
    figures: dict = {"templates": len(templates), "sizes": {}}
    for size in SIZES:
        t0 = time.perf_counter()
        filler.fill_to(size)
        if db_url:  # fresh statistics, as autovacuum would have them on a live server
            engine = app.extensions["db"].engine.execution_options(isolation_level="AUTOCOMMIT")
            with engine.connect() as conn:
                conn.exec_driver_sql("VACUUM ANALYZE")
        fill_s = time.perf_counter() - t0
        out = tmp / f"{label}-{size}.csv"
        exported = export_root_csv(data, db_url, out)
        if exported["rows"] != size:
            raise RuntimeError(f"exported {exported['rows']} rows, filled {size}")
        dump = tmp / f"{label}-{size}-baseline.csv"
        if db_url is None:
            base = _baseline_sqlite(data / "server.db", out, exported["columns"], dump)
        else:
            base = _baseline_postgres(db_url, out, exported["columns"], dump)
        base["rows_per_s"] = size / base["wall_s"]
        out.unlink()
        dump.unlink()
        figures["sizes"][str(size)] = {"fill_s": fill_s, "export": exported, "baseline": base}
        print(f"  {label} {size:>9,} rows: {exported['rows_per_s']:,.0f} rows/s, "
              f"peak {exported['peak_rss_mb']:.0f} MB; baseline {base['rows_per_s']:,.0f} "
              f"rows/s", flush=True)
        if SCALE_INGEST:
            from tests.bench_scale import ingest_at

            ingested = ingest_at(data, db_url, seed=size)
            figures["sizes"][str(size)]["ingest"] = ingested
            filler.resume_after(ingested["ok"])
            print(f"  {label} {size:>9,} stored: ingest {ingested['per_s']:.0f}/s, "
                  f"{ingested['cpu_ms_per_submission']:.1f} ms CPU each", flush=True)
    app.extensions["db"].dispose()
    shutil.rmtree(data, ignore_errors=True)
    return figures


def reports(tmp: Path) -> dict:
    """E1–E9 on the synthetic ward: each export command, in one child so start-up is once."""
    from tests import bench_dedupe
    from tests.support.factories import make_ward
    from tests.support.synthetic_ward import generate

    data = tmp / "reports"
    app = _app(data, None)
    app.extensions["db"].upgrade()
    make_ward(app)
    xforms = bench_dedupe._xforms(app)
    ward = generate(xforms[FORM], xforms["support_visit"], households=WARD_HOUSEHOLDS)
    load_s = bench_dedupe._load(app, ward, ward.uploads, match=True)
    app.extensions["db"].dispose()
    env = {**os.environ, "PYTHONPATH": str(REPO), "SERVER_DATA_DIR": str(data),
           "SERVER_VALIDATE_FORMS": "0", "SERVER_SECRET_KEY": "bench", "SERVER_PID_KEY": "bench"}
    out = tmp / "reports-out"
    kinds = {}
    for kind in REPORT_KINDS:
        run = _timed([sys.executable, "-m", "server", "export", kind, "--period", "2026",
                      "--out", str(out)], env=env)
        kinds[kind] = {"wall_s": run["wall_s"], "peak_rss_mb": run["peak_rss_mb"],
                       "files": [Path(p).name for p in run["stdout"].decode().split()]}
    inner = json.loads(_timed([sys.executable, "-m", "tests.bench_export", "reports-child",
                               str(out)], env=env)["stdout"])
    shutil.rmtree(data, ignore_errors=True)
    shutil.rmtree(out, ignore_errors=True)
    return {"households": WARD_HOUSEHOLDS, "uploads": len(ward.uploads), "load_s": load_s,
            "commands": kinds, "commands_total_s": sum(k["wall_s"] for k in kinds.values()),
            "in_process": inner, "in_process_total_s": sum(inner.values())}


def _reports_child(out: str) -> None:
    """The four exports one after another in one process (what a web download costs)."""
    from server import create_app
    from server.exports import run

    app = create_app()
    times = {}
    for kind in REPORT_KINDS:
        session = app.extensions["db"].session()
        try:
            t0 = time.perf_counter()
            run.export(session, app.extensions["blobs"], kind, 1, ward=app.extensions["ward"],
                       period=run.Period.parse("2026"), form_id=None, out=Path(out),
                       xlsx=False, bom=True, timezone=app.config["TIMEZONE"])
            times[kind] = time.perf_counter() - t0
        finally:
            session.close()
    app.extensions["db"].dispose()
    print(json.dumps(times))


def run(pg_url: str | None = None) -> dict:
    """Every export figure; `pg_url` names a PostgreSQL database that may be filled."""
    results: dict = {"central_rows_per_s": CENTRAL_ROWS_PER_S}
    with tempfile.TemporaryDirectory(prefix="bench-export-") as tmp:
        tmp = Path(tmp)
        if "sqlite" in DATABASES:
            results["sqlite"] = raw_export("sqlite", tmp, None)
        if pg_url and "postgresql" in DATABASES:
            results["postgresql"] = raw_export("postgresql", tmp, pg_url)
        if WARD_HOUSEHOLDS:
            results["reports"] = reports(tmp)
    return results


def rows(r: dict) -> list[tuple[str, str, str]]:
    """The lines `make bench` prints for the export figures."""
    out = []
    for db in ("sqlite", "postgresql"):
        if db not in r:
            continue
        first = first_ing = None
        for size, f in r[db]["sizes"].items():
            e, b = f["export"], f["baseline"]
            per_row = 1e6 / e["rows_per_s"]
            first = first or per_row
            out.append((f"{db}: raw root CSV, {int(size):,} rows", f"{e['rows_per_s']:,.0f} rows/s",
                        f"{e['rows_per_s'] / CENTRAL_ROWS_PER_S:.1f}× Central; "
                        f"{e['rows_per_s'] / b['rows_per_s']:.2f}× the database's own dump "
                        f"({b['rows_per_s']:,.0f} rows/s); {per_row:.1f} µs/row = "
                        f"{per_row / first:.2f}× the first size"))
            if "cpu_s" in b:  # both in this machine's CPU time, whatever else runs on it
                out.append((f"{db}: CPU per row, {int(size):,} rows",
                            f"{e['cpu_us_per_row']:.1f} µs",
                            f"dump {1e6 * b['cpu_s'] / int(size):.1f} µs"))
            if "ingest" in f:
                ing = f["ingest"]
                first_ing = first_ing or ing["cpu_ms_per_submission"]
                out.append((f"{db}: ingest with {int(size):,} stored", f"{ing['per_s']:.0f}/s",
                            f"{ing['cpu_ms_per_submission']:.1f} ms CPU per submission = "
                            f"{ing['cpu_ms_per_submission'] / first_ing:.2f}× the first size; "
                            f"p95 {ing['p95_ms']:.0f} ms"))
            out.append((f"{db}: export peak RSS, {int(size):,} rows",
                        f"{e['peak_rss_mb']:.0f} MB",
                        f"target < 150 MB; dump {b['peak_rss_mb']:.0f} MB; {e['columns']} "
                        f"columns, {e['bytes'] / 1e6:,.0f} MB of CSV"))
    rep = r.get("reports")
    if rep:
        out += [
            ("reports: E1–E9, in one process", f"{rep['in_process_total_s']:.2f} s",
             "target < 5 s; " + ", ".join(f"{k} {v:.2f}" for k, v in
                                          rep["in_process"].items())),
            ("reports: E1–E9, four commands", f"{rep['commands_total_s']:.2f} s",
             "each with its own start-up; " + ", ".join(
                 f"{k} {v['wall_s']:.2f}" for k, v in rep["commands"].items())),
        ]
    return out


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "child":
        _child(*sys.argv[2:5])
        return
    if len(sys.argv) > 1 and sys.argv[1] == "reports-child":
        _reports_child(sys.argv[2])
        return
    pg = os.environ.get("BENCH_DATABASE_URL")
    if pg:
        from tests.bench import fresh_database

        with fresh_database(pg) as url:
            results = run(url)
    else:
        results = run()
    for a, b, c in rows(results):
        print(f"{a:<40} {b:>18}  {c}")
    print(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
