"""A ward with its forms, a volunteer's Collect to fill it, and browser-like web clients."""

from __future__ import annotations

import re

import pytest

from tests.openrosa.test_entities import survey
from tests.support.collect import Collect, FlaskTransport
from tests.support.factories import PASSWORD, make_ward

CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"|'
                  r'type="hidden" name="csrf_token" value="([^"]+)"')


def csrf_token(html: str) -> str:
    m = CSRF.search(html)
    assert m, "no CSRF token on the page"
    return m.group(1) or m.group(2)


class Browser:
    """A test client that logs in through /login and posts forms with their CSRF token."""

    def __init__(self, app, remote_addr: str = "10.0.0.1"):
        self.client = app.test_client()
        self.client.environ_base["REMOTE_ADDR"] = remote_addr

    def get(self, path, **kw):
        return self.client.get(path, **kw)

    def login(self, username: str, password: str = PASSWORD, next_path: str | None = None):
        page = self.client.get("/login" + (f"?next={next_path}" if next_path else ""))
        data = {"username": username, "password": password,
                "csrf_token": csrf_token(page.get_data(as_text=True))}
        if next_path:
            data["next"] = next_path
        return self.client.post("/login", data=data)

    def post(self, path: str, data: dict | None = None, page: str | None = None):
        """POST `data` with the CSRF token of `page` (default: the same path)."""
        html = self.client.get(page or path).get_data(as_text=True)
        return self.client.post(path, data={**(data or {}), "csrf_token": csrf_token(html)})


@pytest.fixture
def ward(app):
    return make_ward(app)


@pytest.fixture
def browser(app):
    return lambda **kw: Browser(app, **kw)


@pytest.fixture
def sup1(app, ward):
    b = Browser(app)
    assert b.login("sup1").status_code == 302
    return b


@pytest.fixture
def admin(app, ward):
    b = Browser(app, remote_addr="10.0.0.2")
    assert b.login("admin").status_code == 302
    return b


@pytest.fixture
def collect(app, ward):
    return Collect(f"http://localhost/v1/key/{ward.token}/projects/{ward.project_id}",
                   FlaskTransport(app))


@pytest.fixture
def add_household(collect, xforms):
    """Submit a household survey; returns (entity id, instance id)."""

    def add(head: str, *, tdp: str = "tdp01", house: str = "12", year: str = "1971",
            attachments=None, **extra) -> str:
        members = [{"m_name_eff": head, "m_birth_year_eff": year, "m_sex_eff": "male"}]
        values = {"g_addr/house_no": house, "g_head/head_birth_year": year, **extra}
        entity_id, xml = survey(xforms, head=head, tdp=tdp, extra=values,
                                repeats={"g_members/members": members})
        assert collect.submit(xml, attachments)[0].status == 201
        return entity_id

    return add
