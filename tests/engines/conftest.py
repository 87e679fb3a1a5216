"""One real server (gunicorn on a free port) for the engine tests, and a volunteer's phone.

The server runs on SQLite, or on a fresh PostgreSQL database beside TEST_DATABASE_URL when it is
set. Its commands (init, users, exports) run in this process through the same click entry point
as `python -m server`, with the server's SERVER_* settings, which saves an interpreter start each.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from server.cli import main
from server.db import Database
from server.db.models import SubmissionVersion
from tests.engines.harness import (
    DEVICE_ID,
    Phone,
    compile_javarosa_driver,
    java_problem,
    require,
    validate_jar,
    webforms_problem,
)
from tests.support.collect import Collect, HttpTransport
from tests.support.served import Server, fresh_postgres_database

PG_URL = os.environ.get("TEST_DATABASE_URL")
VOLUNTEER = "thu"


@dataclass(frozen=True)
class Stored:
    """One submission version as the server keeps it."""

    xml: bytes
    fields: dict
    current: bool
    deprecated_id: str | None
    pid_last4: str | None
    has_pid_hmac: bool
    attachment_md5: dict[str, str | None]


class EngineServer:
    def __init__(self, server: Server):
        self.server = server
        self.db = Database(server.database_url)
        self.collect_url = ""

    def cli(self, *args: str) -> str:
        """`python -m server ARGS` in-process, on this server's data and database."""
        env = {k: v for k, v in self.server.env.items() if k.startswith("SERVER_")}
        env.update({k: None for k in os.environ if k.startswith("SERVER_") and k not in env})
        result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
        assert result.exit_code == 0, f"server {' '.join(args)}: {result.output}"
        return result.stdout

    def export_zip(self, form_id: str, out: Path) -> Path:
        """The raw export of one form, through the export command."""
        printed = self.cli("export", "submissions", "--form", form_id, "--out", str(out),
                           "--no-bom")
        zips = [Path(line) for line in printed.splitlines() if line.endswith(".zip")]
        assert len(zips) == 1, printed
        return zips[0]

    def stored(self, instance_id: str) -> Stored:
        with self.db.session() as session:
            sv = session.scalar(select(SubmissionVersion)
                                .where(SubmissionVersion.instance_id == instance_id))
            assert sv is not None, f"{instance_id} was not stored"
            return Stored(bytes(sv.xml), sv.fields, sv.current, sv.deprecated_id, sv.pid_last4,
                          sv.pid_hmac is not None,
                          {a.name: a.blob.md5 if a.blob else None for a in sv.attachments})


@pytest.fixture(scope="session")
def engine_server(tmp_path_factory):
    with contextlib.ExitStack() as stack:
        url = (stack.enter_context(fresh_postgres_database(PG_URL, prefix="engines"))
               if PG_URL else None)
        server = Server(tmp_path_factory.mktemp("engines") / "data", url, workers=1)
        served = EngineServer(server)
        stack.callback(served.db.dispose)
        served.cli("init")
        served.cli("user", "add", VOLUNTEER, "--role", "volunteer", "--team", "tdp01",
                   "--display-name", "Hà Thị Thu")
        served.collect_url = served.cli("user", "collect-url", VOLUNTEER,
                                        "--base-url", server.base_url).strip()
        stack.callback(server.stop)
        server.start()
        yield served


@pytest.fixture(scope="session")
def transport():
    with HttpTransport() as t:
        yield t


@pytest.fixture
def phone(engine_server, transport, tmp_path):
    """The volunteer's phone, set up from its Collect URL (token in the URL, as Central)."""
    return Phone(Collect(engine_server.collect_url, transport, device_id=DEVICE_ID),
                 tmp_path / "phone")


# The engines are checked before the server starts: a missing piece fails (or skips) at once.
@pytest.fixture(scope="session")
def webforms_engine():
    require("The ODK Web Forms engine", webforms_problem())


@pytest.fixture(scope="session")
def odk_validate():
    require("ODK Validate", java_problem(compiler=False))
    return validate_jar()


@pytest.fixture(scope="session")
def javarosa_classes():
    return compile_javarosa_driver()
