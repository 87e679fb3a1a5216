"""Fixtures: a fresh app per test on SQLite (copied from a migrated template) or on the
PostgreSQL database named by TEST_DATABASE_URL (migrated once, emptied before each test)."""

from __future__ import annotations

import functools
import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from server import create_app
from server.cli import main
from server.db import Database
from server.db.models import Base
from server.domain import forms as forms_domain
from server.domain import ward as ward_domain
from tests.support.collect import Collect, FlaskTransport
from tests.support.factories import PASSWORD, make_ward

REPO = Path(__file__).resolve().parent.parent
FORMS_DIR = REPO / "forms"
PG_URL = os.environ.get("TEST_DATABASE_URL")
SECRET = "test-secret-key"

# Converting the same workbook again gives the same bytes; convert each once per run.
forms_domain.convert_xlsform = functools.lru_cache(maxsize=16)(forms_domain.convert_xlsform)
ward_domain.apply_ward_lists = functools.lru_cache(maxsize=16)(ward_domain.apply_ward_lists)


@pytest.fixture(scope="session")
def template_db(tmp_path_factory):
    if PG_URL:
        db = Database(PG_URL)
        with db.engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        db.upgrade()
        db.dispose()
        return None
    path = tmp_path_factory.mktemp("template") / "server.db"
    db = Database(f"sqlite:///{path}")
    db.upgrade()
    db.dispose()
    return path


def _empty_pg() -> None:
    db = Database(PG_URL)
    names = ", ".join(t.name for t in Base.metadata.sorted_tables)
    with db.engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    db.dispose()


@pytest.fixture
def make_app(tmp_path, template_db):
    apps = []

    def factory(**overrides):
        data = tmp_path / f"data{len(apps)}"
        data.mkdir()
        if PG_URL:
            _empty_pg()
            url = PG_URL
        else:
            shutil.copy(template_db, data / "server.db")
            url = f"sqlite:///{data / 'server.db'}"
        config = {"DATA_DIR": str(data), "DATABASE_URL": url, "VALIDATE_FORMS": 0,
                  "TESTING": True, "SECRET_KEY": SECRET, "PID_KEY": "test-pid-key",
                  "FORMS_DIR": str(FORMS_DIR)}
        config.update(overrides)
        app = create_app(config)
        apps.append(app)
        return app

    yield factory
    for app in apps:
        app.extensions["db"].dispose()


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def ward(app):
    return make_ward(app)


@pytest.fixture
def collect(app, ward):
    """A volunteer's Collect, set up from its token URL."""
    return Collect(f"http://localhost/v1/key/{ward.token}/projects/{ward.project_id}",
                   FlaskTransport(app))


@pytest.fixture
def supervisor_collect(app, ward):
    """A supervisor's Collect with username and password over plain http (Digest)."""
    return Collect(f"http://localhost/v1/projects/{ward.project_id}", FlaskTransport(app),
                   username="sup1", password=PASSWORD)


@pytest.fixture
def xforms(collect):
    """The published XForms as a phone downloads them, by form id."""
    return {f["formID"]: collect.download_form(f) for f in collect.form_list()}


@pytest.fixture
def cli(app, monkeypatch):
    """`python -m server …` run in-process on `app`'s database and data folder, configured
    through SERVER_* variables as an operator would."""
    for key in ("DATA_DIR", "DATABASE_URL", "SECRET_KEY", "PID_KEY", "FORMS_DIR"):
        monkeypatch.setenv(f"SERVER_{key}", str(app.config[key]))
    monkeypatch.setenv("SERVER_VALIDATE_FORMS", "0")
    runner = CliRunner()

    def run(*args, input=None):
        return runner.invoke(main, list(args), input=input, catch_exceptions=False)

    run.app = app
    return run


@pytest.fixture
def fetched_batches(monkeypatch) -> list[int]:
    """Exports read their rows two at a time; the size of each batch the database hands over
    is appended to the returned list as it happens."""
    from sqlalchemy.engine import Result

    from server.exports import raw

    monkeypatch.setattr(raw, "_BATCH", 2)
    fetched: list[int] = []
    original = Result.partitions

    def counting(self, size=None):
        for part in original(self, size):
            fetched.append(len(part))
            yield part

    monkeypatch.setattr(Result, "partitions", counting)
    return fetched
