"""The real server for tests and tools: `python -m server init`, then `python -m server serve`
(gunicorn, master and workers) on a free loopback port, on a given data dir and database.

The server runs in a process group of its own, so it can be killed the way a power cut or the
OOM killer ends it: SIGKILL to the master and every worker at the same moment. It can then be
started again on the same data and port, as an operator would after the machine came back.

    with served(tmp_path / "data") as server:          # SQLite under the data dir
        url = server.add_volunteer("thu")              # the Collect URL with thu's token
        ...
        server.kill()                                  # SIGKILL, whole process group
        server.start()                                 # same data, same port
    # always stopped (and killed if it does not stop) on the way out

`fresh_postgres_database(url)` gives a new, empty PostgreSQL database beside the one named by
`url` (same server and user) and drops it afterwards.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[2]
ADMIN_PASSWORD = "served admin password 1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _group_alive(pgid: int) -> list[int]:
    """Processes of the group that are still running (zombies count as gone)."""
    alive = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            alive.append(int(entry.name))
    return alive


class ServerError(RuntimeError):
    pass


class Server:
    """One server on one data dir (and database); start, kill, stop, start again."""

    def __init__(self, data_dir: str | Path, database_url: str | None = None, *,
                 workers: int = 2, port: int | None = None, env: dict[str, str] | None = None,
                 host: str = "127.0.0.1"):
        self.data_dir = Path(data_dir).resolve()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.database_url = database_url or f"sqlite:///{self.data_dir / 'server.db'}"
        self.workers = workers
        self.host = host
        self.port = port or free_port()
        # Inherited SERVER_* settings would make a run depend on the shell it came from.
        base = {k: v for k, v in os.environ.items() if not k.startswith("SERVER_")}
        self.env = {**base, "SERVER_DATA_DIR": str(self.data_dir),
                    "SERVER_DATABASE_URL": self.database_url, "SERVER_VALIDATE_FORMS": "0",
                    "SERVER_ADMIN_PASSWORD": ADMIN_PASSWORD, **(env or {})}
        self.log_path = self.data_dir / "serve.log"
        self.proc: subprocess.Popen | None = None
        self.starts = 0
        self.kills = 0

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def cli(self, *args: str, stdin: str | None = None, timeout: float = 120) -> str:
        """Run `python -m server ARGS` on this server's data; its stdout, or ServerError."""
        done = subprocess.run([sys.executable, "-m", "server", *args], env=self.env, cwd=REPO,
                              input=stdin, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            raise ServerError(f"server {' '.join(args)}: {done.stderr.strip()}")
        return done.stdout

    def init(self) -> None:
        self.cli("init")

    def add_volunteer(self, username: str, team: str = "tdp01") -> str:
        """Create a volunteer and return the Collect URL that carries the token."""
        self.cli("user", "add", username, "--role", "volunteer", "--team", team)
        return self.collect_url(username)

    def collect_url(self, username: str) -> str:
        return self.cli("user", "collect-url", username, "--base-url", self.base_url).strip()

    def start(self, timeout: float = 60) -> float:
        """Start gunicorn and wait for /healthz; the seconds it took."""
        if self.running:
            raise ServerError("already running")
        t0 = time.monotonic()
        with open(self.log_path, "ab") as log:
            log.write(f"--- start {self.starts + 1}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "server", "serve", "--host", self.host,
                 "--port", str(self.port), "--workers", str(self.workers)],
                env=self.env, cwd=REPO, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                start_new_session=True,  # its own process group: master + workers
            )
        self.starts += 1
        session = requests.Session()
        session.trust_env = False
        try:
            while time.monotonic() - t0 < timeout:
                if self.proc.poll() is not None:
                    raise ServerError(f"server exited with {self.proc.returncode}:\n"
                                      + self.log_tail())
                try:
                    r = session.get(f"{self.base_url}/healthz", timeout=5)
                    if r.status_code == 200 and r.json() == {"status": "ok"}:
                        return time.monotonic() - t0
                except (requests.RequestException, ValueError):
                    pass
                time.sleep(0.05)
        finally:
            session.close()
        self._signal_group(signal.SIGKILL, wait=10)
        raise ServerError(f"server not healthy after {timeout:.0f} s:\n" + self.log_tail())

    def kill(self) -> None:
        """SIGKILL the master and all workers at once, and wait until they are gone."""
        if not self.running:
            raise ServerError("not running")
        self._signal_group(signal.SIGKILL, wait=10)
        self.kills += 1

    def stop(self, timeout: float = 20) -> None:
        """Graceful stop (SIGTERM to the group); SIGKILL whatever is left after `timeout`."""
        try:
            self._signal_group(signal.SIGTERM, wait=timeout)
        except ServerError:
            self._signal_group(signal.SIGKILL, wait=10)

    def restart(self) -> float:
        self.stop()
        return self.start()

    def _signal_group(self, sig: int, wait: float) -> None:
        proc = self.proc
        if proc is None:
            return
        pgid = proc.pid  # start_new_session: the master leads its group
        if proc.poll() is None or _group_alive(pgid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, sig)
        deadline = time.monotonic() + wait
        try:
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired as exc:
            raise ServerError(f"server did not exit on signal {sig}") from exc
        # The workers are orphans now; wait until the kernel has ended them too.
        while _group_alive(pgid):
            if time.monotonic() > deadline:
                raise ServerError(f"processes {_group_alive(pgid)} survived signal {sig}")
            time.sleep(0.01)
        self.proc = None  # all gone: never signal that group id again

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


@contextlib.contextmanager
def served(data_dir: str | Path, database_url: str | None = None, *, workers: int = 2,
           env: dict[str, str] | None = None, init: bool = True,
           start: bool = True) -> Iterator[Server]:
    """A server on `data_dir` (SQLite there unless `database_url`), initialised and started;
    stopped on the way out whatever happened (killed if it does not stop)."""
    server = Server(data_dir, database_url, workers=workers, env=env)
    try:
        if init:
            server.init()
        if start:
            server.start()
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def fresh_postgres_database(url: str, prefix: str = "served") -> Iterator[str]:
    """A new empty database beside the one `url` names (same server), dropped afterwards."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield make_url(url).set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()
