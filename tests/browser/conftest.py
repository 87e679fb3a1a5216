"""Browser tests: Playwright driving Debian's chromium against a real server (gunicorn) on a
free loopback port, with a small ward submitted through a Collect-like client over HTTP.

Playwright's own browser downloads are never used: chromium comes from apt (`.ci/run`
installs it). Without /usr/bin/chromium these tests fail; SKIP_BROWSER=1 skips them.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from server.db.models import Project
from tests.openrosa.test_entities import survey
from tests.support.collect import Collect, HttpTransport
from tests.support.factories import make_ward
from tests.support.served import Server

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-quic"]
TIMEZONE = "Asia/Ho_Chi_Minh"


@dataclass
class Live:
    base_url: str
    project_id: int
    project_name: str
    token_url: str  # vol1's Collect URL
    today: dt.date  # in the server's time zone


@pytest.fixture(scope="module")
def browser():
    if os.environ.get("SKIP_BROWSER") == "1":
        pytest.skip("SKIP_BROWSER=1")
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (or SKIP_BROWSER=1)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def _submit_households(url: str, today: dt.date) -> None:
    """Three households of tdp01 as vol1's phone sends them; two of them look alike."""
    with HttpTransport() as transport:
        collect = Collect(url, transport)
        xforms = {f["formID"]: collect.download_form(f) for f in collect.form_list()}
        for head, house, year in (("Nguyễn Văn Hùng", "5", "1970"),
                                  ("Nguyễn Văn Hưng", "5", "1970"),
                                  ("Lý Văn Tâm", "21", "1965")):
            members = [{"m_name_eff": head, "m_birth_year_eff": year, "m_sex_eff": "male"}]
            values = {"g_addr/house_no": house, "g_head/head_birth_year": year,
                      "survey_date": today.isoformat()}
            _id, xml = survey(xforms, head=head, extra=values,
                              repeats={"g_members/members": members})
            assert collect.submit(xml)[0].status == 201


@contextlib.contextmanager
def serving(app) -> Iterator[Server]:
    """`app`'s data (its database and data folder, as the fixtures made them) served by the
    real server, one gunicorn worker, stopped on the way out."""
    config = app.config
    app.extensions["db"].dispose()
    server = Server(config["DATA_DIR"], config["DATABASE_URL"], workers=1, env={
        "SERVER_SECRET_KEY": config["SECRET_KEY"], "SERVER_PID_KEY": config["PID_KEY"],
        "SERVER_FORMS_DIR": config["FORMS_DIR"], "SERVER_TIMEZONE": TIMEZONE})
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def live(make_app, tmp_path):
    """The real server on the suite's database (SQLite, or TEST_DATABASE_URL), with a ward."""
    app = make_app()
    ward = make_ward(app)
    with app.extensions["db"].session() as db:
        project_name = db.get(Project, ward.project_id).name
    with serving(app) as server:
        url = f"{server.base_url}/v1/key/{ward.token}/projects/{ward.project_id}"
        today = dt.datetime.now(ZoneInfo(TIMEZONE)).date()
        _submit_households(url, today)
        yield Live(server.base_url, ward.project_id, project_name, url, today)
