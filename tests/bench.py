"""`make bench`: figures measured side by side in one run, printed as a table and written to
.bench/latest.json. Absolute times on a shared machine mean little; the ratios do.

    ingest   Collect-like clients (8 concurrent, keep-alive, HEAD then POST of realistic
             household surveys: distinct new households, each with its entity, three
             members and a photo, so matching runs) against the real server under gunicorn, and
             against the ceiling: a bare WSGI app under the same gunicorn that only reads
             the body and answers 201.
    formList p50/p95 of the form list and of a manifest, with the ward's forms.
    dedupe   household matching on the synthetic ward (tests/bench_dedupe.py).
    scale-out  (BENCH_SCALE_OUT=1) two instances behind nginx on PostgreSQL, 10,000
             submissions with 3 SIGKILLs (tests/reliability/test_scale_out.py).
    crash    `tests.load` at full size (BENCH_CRASH_SUBMISSIONS, default 10,000, 8 clients)
             while the whole server is SIGKILLed 3 times, on SQLite and PostgreSQL:
             acknowledged, lost, doubled, attachments (BENCH_CRASH=0 skips it).
    fuzz     the hypothesis properties of tests/reliability/test_fuzz.py with thousands of
             inputs each (BENCH_FUZZ_EXAMPLES, default 4,000 per property): never a 500.
    export   raw root CSV at 20k and 1M rows beside the database's own CSV dump, and the
             E1–E9 reports on the synthetic ward (tests/bench_export.py).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from html import unescape
from pathlib import Path

import requests

from tests.bench_scale import survey_bodies
from tests.support.served import free_port

REPO = Path(__file__).resolve().parent.parent
CLIENTS = int(os.environ.get("BENCH_CLIENTS", "8"))
SUBMISSIONS = int(os.environ.get("BENCH_SUBMISSIONS", "800"))
WORKERS = int(os.environ.get("BENCH_WORKERS", "2"))
# The ward's size for the form list, manifest and entity-list figures (households.csv rows).
LIST_HOUSEHOLDS = int(os.environ.get("BENCH_LIST_HOUSEHOLDS", "8000"))
LIST_CHANGES = 20
ADMIN_PASSWORD = "bench admin password"
CENTRAL = {"ingest_per_s": 118.0, "ingest_p50_ms": 63.0, "formlist_p50_ms": 5.8}


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its children (gunicorn master and workers)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(entry.name) == pid or int(fields[1]) == pid:
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def _family(pid: int) -> list[Path]:
    """/proc entries of a process and its children (gunicorn master and workers)."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
            ppid = int(status.split("PPid:", 1)[1].split()[0])
        except (OSError, IndexError, ValueError):
            continue
        if int(entry.name) == pid or ppid == pid:
            out.append(entry)
    return out


def _kb(entry: Path, name: str, field: str) -> int:
    try:
        text = (entry / name).read_text()
        return int(text.split(field, 1)[1].split()[0]) if field in text else 0
    except (OSError, IndexError, ValueError):
        return 0


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children, in MB: pages the workers share with the
    master (the interpreter, the libraries) are counted in each of them."""
    return sum(_kb(e, "status", "VmRSS:") for e in _family(pid)) / 1024


def pss_mb(pid: int) -> float:
    """The same with each shared page divided among the processes sharing it (PSS): what the
    server takes from the machine's memory."""
    return sum(_kb(e, "smaps_rollup", "Pss:") for e in _family(pid)) / 1024


class Served:
    def __init__(self, app_spec: str, env: dict, port: int):
        self.port = port
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers",
             str(WORKERS), "--worker-class", "gthread", "--threads", "8", "--timeout", "120",
             "--no-control-socket", app_spec],
            env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(300):
            try:
                requests.head(f"http://127.0.0.1:{port}/healthz", timeout=5)
                return
            except requests.RequestException:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{app_spec} did not start")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)


def ingest(url: str, bodies: list[tuple[str, bytes]], pid: int) -> dict:
    """POST the multipart bodies (content type, bytes) from CLIENTS keep-alive clients, each
    a HEAD then a POST as Collect sends them; rate, latency and the server's CPU per 201."""
    latencies: list[float] = []
    statuses: list[int] = []
    lock = threading.Lock()

    def client(chunk):
        s = requests.Session()
        for content_type, body in chunk:
            t0 = time.perf_counter()
            s.head(f"{url}/submission?deviceID=collect%3Abench")
            r = s.post(f"{url}/submission?deviceID=collect%3Abench", data=body,
                       headers={"Content-Type": content_type, "X-OpenRosa-Version": "1.0"})
            with lock:
                latencies.append((time.perf_counter() - t0) * 1000)
                statuses.append(r.status_code)

    threads = [threading.Thread(target=client, args=(bodies[i::CLIENTS],)) for i in range(CLIENTS)]
    cpu0, t0 = cpu_seconds(pid), time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed, cpu = time.perf_counter() - t0, cpu_seconds(pid) - cpu0
    ok = sum(1 for s in statuses if s == 201)
    latencies.sort()
    return {"per_s": ok / elapsed, "p50_ms": statistics.median(latencies),
            "p95_ms": latencies[int(len(latencies) * 0.95) - 1], "ok": ok,
            "cpu_ms_per_submission": 1000 * cpu / max(ok, 1)}


def latency(url: str, n: int = 300) -> dict:
    s = requests.Session()
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        r = s.get(url, headers={"X-OpenRosa-Version": "1.0"})
        times.append((time.perf_counter() - t0) * 1000)
        assert r.status_code == 200, r.status_code
    times.sort()
    return {"p50_ms": statistics.median(times), "p95_ms": times[int(n * 0.95) - 1]}


def run_database(label: str, db_url: str | None, tmp: Path) -> dict:
    data = tmp / label
    data.mkdir()
    env = {**os.environ, "SERVER_DATA_DIR": str(data), "SERVER_VALIDATE_FORMS": "0",
           "SERVER_ADMIN_PASSWORD": ADMIN_PASSWORD}
    if db_url:
        env["SERVER_DATABASE_URL"] = db_url

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "server", *args], env=env, check=True,
                              capture_output=True, text=True, cwd=REPO).stdout

    cli("init")
    # A ward-level volunteer: its phone gets the whole households.csv (every tổ).
    cli("user", "add", "bench", "--role", "volunteer", "--team", "ward")
    port = free_port()
    server = Served("server.wsgi:app", env, port)
    try:
        base = cli("user", "collect-url", "bench", "--base-url", f"http://127.0.0.1:{port}")
        base = base.strip()
        entries = _form_entries(requests.get(f"{base}/formList").text)
        xform = requests.get(entries["household_survey"]["downloadUrl"]).content
        bodies = survey_bodies(xform, max(SUBMISSIONS, LIST_HOUSEHOLDS) + LIST_CHANGES)
        figures = {"ingest": ingest(base, bodies[:SUBMISSIONS], server.proc.pid)}
        # The rest of the households, untimed, so the lists are the ward's size; the
        # server's memory is sampled meanwhile (not during the timed load above).
        with MemorySampler(server.proc.pid) as memory:
            ingest(base, bodies[SUBMISSIONS:LIST_HOUSEHOLDS], server.proc.pid)
        figures["ingesting"] = {**memory.figures(), "submissions": LIST_HOUSEHOLDS - SUBMISSIONS}
        manifest_url = entries["support_visit"]["manifestUrl"]
        figures["formlist"] = latency(f"{base}/formList")
        figures["manifest"] = latency(manifest_url)
        figures["entity_list"] = entity_list_regeneration(
            base, manifest_url, bodies[max(SUBMISSIONS, LIST_HOUSEHOLDS):])
        figures["exporting"] = exports_footprint(f"http://127.0.0.1:{port}",
                                                 server.proc.pid)
    finally:
        server.stop()
    return figures


class MemorySampler:
    """`with MemorySampler(pid) as m:` samples the server's memory (master and workers, RSS
    sum and PSS) every `every` seconds until the block ends; m.figures() gives the peaks."""

    def __init__(self, pid: int, every: float = 0.1):
        self.pid, self.every = pid, every
        self.rss, self.pss = [rss_mb(pid)], [pss_mb(pid)]
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample)

    def _sample(self) -> None:
        while not self._done.wait(self.every):
            self.rss.append(rss_mb(self.pid))
            self.pss.append(pss_mb(self.pid))

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()
        self._thread.join()

    def figures(self) -> dict:
        return {"before_rss_mb": self.rss[0], "peak_rss_mb": max(self.rss),
                "peak_pss_mb": max(self.pss), "after_rss_mb": rss_mb(self.pid)}


def exports_footprint(base: str, pid: int) -> dict:
    """Every CSV and workbook the exports page links to, downloaded one after the other by
    a supervisor, while the server's memory is sampled."""
    from tests.reliability.test_scale_out import _login

    session = _login(base, password=ADMIN_PASSWORD)
    page = session.get(f"{base}/exports", timeout=60).text
    links = sorted({unescape(h) for h in re.findall(r'href="(/exports/[^"]+\.(?:csv|xlsx))"',
                                                     page)})
    t0, size, each = time.perf_counter(), 0, {}
    try:
        with MemorySampler(pid, every=0.05) as memory:
            for link in links:
                mark = len(memory.rss)
                r = session.get(f"{base}{link}", timeout=600)
                assert r.status_code == 200, (link, r.status_code)
                size += len(r.content)
                each[link.split("?")[0]] = max(memory.rss[mark:] + [rss_mb(pid)])
    finally:
        session.close()
    return {"files": len(links), "bytes": size, "seconds": time.perf_counter() - t0,
            **memory.figures(), "peak_by_link": each}


def _form_entries(form_list: str) -> dict[str, dict[str, str]]:
    """formID → its downloadUrl and manifestUrl, from an OpenRosa form list."""
    entries = {}
    for chunk in form_list.split("<xform>")[1:]:
        def tag(name, chunk=chunk):
            return chunk.split(f"<{name}>")[1].split(f"</{name}>")[0]
        entries[tag("formID")] = {"downloadUrl": tag("downloadUrl"),
                                  "manifestUrl": tag("manifestUrl")}
    return entries


def entity_list_regeneration(base: str, manifest_url: str, changes: list) -> dict:
    """What a phone's form update costs after a change: one new household is submitted, then
    the manifest (its households.csv hash) and households.csv are fetched, the list rebuilt
    for the change; then both again, served from the cache. Repeated once per change."""
    s = requests.Session()
    headers = {"X-OpenRosa-Version": "1.0"}

    def csv_url():
        manifest = s.get(manifest_url, headers=headers).text
        chunk = next(c for c in manifest.split("<mediaFile")[1:]
                     if "<filename>households.csv</filename>" in c)
        return chunk.split("<downloadUrl>")[1].split("</downloadUrl>")[0]

    rebuilt, cached, rows = [], [], 0
    for content_type, body in changes:
        r = s.post(f"{base}/submission", data=body,
                   headers={**headers, "Content-Type": content_type})
        assert r.status_code == 201, r.status_code
        for times in (rebuilt, cached):
            t0 = time.perf_counter()
            data = s.get(csv_url(), headers=headers).content
            times.append((time.perf_counter() - t0) * 1000)
        rows = data.count(b"\n") - 1
    return {"rows": rows, "rebuilt_p50_ms": statistics.median(rebuilt),
            "cached_p50_ms": statistics.median(cached), "changes": len(changes)}


@contextlib.contextmanager
def fresh_database(url: str):
    """A new PostgreSQL database beside the one named by `url`, dropped afterwards."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"bench_{os.getpid()}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    try:
        yield make_url(url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


def main() -> None:
    results: dict = {"clients": CLIENTS, "submissions": SUBMISSIONS, "workers": WORKERS,
                     "central": CENTRAL}
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        ceiling = Served("tests.bench_ceiling:app", dict(os.environ), port)
        try:
            # the ceiling needs no form: any multipart body is read and answered 201
            results["ceiling"] = ingest(f"http://127.0.0.1:{port}/x",
                                        survey_bodies(_any_xform(), SUBMISSIONS),
                                        ceiling.proc.pid)
        finally:
            ceiling.stop()
        results["sqlite"] = run_database("sqlite", None, Path(tmp))
        pg = os.environ.get("BENCH_DATABASE_URL")
        if pg:
            with fresh_database(pg) as url:
                results["postgresql"] = run_database("postgresql", url, Path(tmp))
    if os.environ.get("BENCH_CRASH", "1") == "1":
        results["crash"] = crash(os.environ.get("BENCH_DATABASE_URL"))
    if int(os.environ.get("BENCH_FUZZ_EXAMPLES", "4000")):
        results["fuzz"] = fuzz(int(os.environ.get("BENCH_FUZZ_EXAMPLES", "4000")))
    if os.environ.get("BENCH_DEDUPE", "1") == "1":
        from tests import bench_dedupe

        results["dedupe"] = bench_dedupe.run()
    if os.environ.get("BENCH_EXPORT", "1") == "1":
        from tests import bench_export

        pg = os.environ.get("BENCH_DATABASE_URL")
        if pg:
            with fresh_database(pg) as url:
                results["export"] = bench_export.run(url)
        else:
            results["export"] = bench_export.run()
    if os.environ.get("BENCH_SCALE_OUT") == "1" and os.environ.get("BENCH_DATABASE_URL"):
        from tests.reliability import test_scale_out

        with tempfile.TemporaryDirectory() as tmp:
            results["scale_out"] = test_scale_out.bench(os.environ["BENCH_DATABASE_URL"],
                                                        Path(tmp))
    report(results)
    out = REPO / ".bench"
    out.mkdir(exist_ok=True)
    (out / "latest.json").write_text(json.dumps(results, indent=2))
    print(f"\nwritten to {out / 'latest.json'}")


def crash(pg_url: str | None) -> dict:
    """Every acknowledged submission survives SIGKILLs of the whole server, at full size."""
    from tests import load

    n = int(os.environ.get("BENCH_CRASH_SUBMISSIONS", "10000"))
    out = {"sqlite": load.bench(CLIENTS, n, kills=3, seed=11)}
    if pg_url:
        out["postgresql"] = load.bench(CLIENTS, n, pg_url, kills=3, seed=12)
    return out


def fuzz(examples: int) -> dict:
    """The fuzzing properties at bench size; how many inputs each was given, and whether any
    answer was a 500 or changed what was stored (the test fails then)."""
    from collections import Counter

    with tempfile.NamedTemporaryFile("r", suffix=".txt") as counts:
        env = {**os.environ, "FUZZ_EXAMPLES": str(examples), "FUZZ_REPORT": counts.name}
        t0 = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "pytest", "tests/reliability/test_fuzz.py",
                               "-q", "-p", "no:cacheprovider"], env=env, cwd=REPO,
                              capture_output=True, text=True)
        seconds = time.perf_counter() - t0
        per_property: Counter = Counter()
        for line in counts.read().splitlines():
            name, n = line.split()
            per_property[name] += int(n)
    return {"ok": done.returncode == 0, "inputs": sum(per_property.values()),
            "per_property": dict(per_property), "seconds": seconds,
            "failure": "" if done.returncode == 0 else done.stdout[-2000:]}


def _any_xform() -> bytes:
    from server.domain.forms import convert_xlsform
    from server.domain.ward import apply_ward_lists, load_ward_config

    ward = load_ward_config(REPO / "forms" / "ward.toml")
    xlsx = apply_ward_lists((REPO / "forms" / "household_survey.xlsx").read_bytes(), ward)
    return convert_xlsform(xlsx, "household_survey.xlsx")[0]


def report(r: dict) -> None:
    ceiling = r["ceiling"]["per_s"]
    rows = [("ceiling: ingest (bare WSGI)", f"{ceiling:.0f}/s",
             f"1.00× ceiling; {r['ceiling']['cpu_ms_per_submission']:.1f} ms CPU per "
             "submission")]
    for db in ("sqlite", "postgresql"):
        if db not in r:
            continue
        ing = r[db]["ingest"]
        rows += [
            (f"{db}: ingest", f"{ing['per_s']:.0f}/s",
             f"{ing['per_s'] / ceiling:.2f}× ceiling, "
             f"{ing['per_s'] / CENTRAL['ingest_per_s']:.1f}× Central"),
            (f"{db}: ingest p50 / p95", f"{ing['p50_ms']:.1f} / {ing['p95_ms']:.1f} ms",
             f"Central p50 {CENTRAL['ingest_p50_ms']:.0f} ms"),
            (f"{db}: CPU per submission", f"{ing['cpu_ms_per_submission']:.1f} ms", ""),
            (f"{db}: formList p50 / p95",
             f"{r[db]['formlist']['p50_ms']:.2f} / {r[db]['formlist']['p95_ms']:.2f} ms",
             f"{CENTRAL['formlist_p50_ms'] / r[db]['formlist']['p50_ms']:.1f}× faster than "
             "Central"),
            (f"{db}: manifest p50 / p95",
             f"{r[db]['manifest']['p50_ms']:.2f} / {r[db]['manifest']['p95_ms']:.2f} ms",
             f"households.csv of {r[db]['entity_list']['rows']:,} rows"),
            (f"{db}: households.csv after a change",
             f"{r[db]['entity_list']['rebuilt_p50_ms']:.1f} ms",
             f"manifest + list, rebuilt; {r[db]['entity_list']['cached_p50_ms']:.1f} ms from "
             "the cache (p50)"),
            (f"{db}: server memory while ingesting",
             f"{r[db]['ingesting']['peak_pss_mb']:.0f} MB peak",
             f"with shared pages once (PSS; {r[db]['ingesting']['peak_rss_mb']:.0f} MB as a sum "
             f"of RSS), gunicorn master and {WORKERS} workers, while "
             f"{r[db]['ingesting']['submissions']:,} more surveys arrive (target < 300 MB)"),
            (f"{db}: server memory while exporting",
             f"{r[db]['exporting']['peak_pss_mb']:.0f} MB peak",
             f"PSS ({r[db]['exporting']['peak_rss_mb']:.0f} MB as a sum of RSS); "
             f"{r[db]['exporting']['files']} CSV/XLSX exports of the ward in "
             f"{r[db]['exporting']['seconds']:.1f} s (target < 300 MB)"),
        ]
    for db, c in (r.get("crash") or {}).items():
        rows.append((f"{db}: SIGKILL ×{c['kills']} under load", f"{c['acknowledged']:,} acked",
                     f"lost {c['lost']}, doubled {c['duplicates']}; {c['attachments']:,} "
                     f"attachments, {c['attachments_lost']} lost, {c['attachments_corrupt']} "
                     "corrupt"))
    f = r.get("fuzz")
    if f:
        rows.append(("fuzz: inputs, never a 500", f"{f['inputs']:,}",
                     ("all passed" if f["ok"] else "FAILED") + "; " + ", ".join(
                         f"{k} {v:,}" for k, v in f["per_property"].items())
                     + " (target ≥ 10,000)"))
    d = r.get("dedupe")
    if d:
        rows += [
            ("dedupe: synthetic ward", f"{d['households']} households", f"{d['entities']} "
             f"entities, {d['snapshots']} snapshots, {d['true_pairs']} true pairs"),
            ("dedupe: auto-merge precision", f"{d['auto_precision']:.4f}", "target ≥ 0.995"),
            ("dedupe: hard-negative merges", f"{d['hard_negative_merges']}", "target 0"),
            ("dedupe: recall with review", f"{d['recall_with_review']:.4f}", "target ≥ 0.95"),
            ("dedupe: review queue", f"{d['review_pairs']} pairs",
             f"{100 * d['review_share']:.2f} % of households (target ≤ 2 %)"),
            ("dedupe: B-cubed precision / recall",
             f"{d['bcubed_precision']:.4f} / {d['bcubed_recall']:.4f}", ""),
            ("dedupe: households matched at ingest", f"{d['households_matched_per_s']:.0f}/s",
             "whole ingest, one transaction per upload"),
            ("dedupe: full re-run", f"{d['rerun_s']:.1f} s",
             "target < 10 s" + ("" if d["rerun_same_result"] else "; DIFFERS from ingest")),
            ("dedupe: ingest cost with matching", f"{d['ingest_ms_with_matching']:.1f} ms",
             f"{d['matching_cost_ratio']:.2f}× without ({d['ingest_ms_without_matching']:.1f} "
             "ms; target ≤ 1.2×)"),
        ]
    if r.get("export"):
        from tests import bench_export

        rows += bench_export.rows(r["export"])
    if r.get("scale_out"):
        from tests.reliability import test_scale_out

        rows += test_scale_out.rows(r["scale_out"])
    width = max(len(a) for a, _, _ in rows)
    print(f"\n{'figure'.ljust(width)}  {'value':>22}  ratio")
    for a, b, c in rows:
        print(f"{a.ljust(width)}  {b:>22}  {c}")


if __name__ == "__main__":
    main()
