"""Login, logout, throttling, CSRF, session renewal and revocation, deny by default."""

from __future__ import annotations

import pytest

from server.db.models import AuditEntry, LoginAttempt
from server.domain import accounts
from tests.openrosa.conftest import rows
from tests.web.conftest import csrf_token


def test_login_success_redirects_into_the_ui(app, ward, browser):
    b = browser()
    response = b.login("sup1")
    assert response.status_code == 302 and response.headers["Location"] == "/"
    page = b.get("/")
    assert page.status_code == 200
    assert "Trần Văn Giám" in page.get_data(as_text=True)
    assert ("web.login", "sup1") in [(e.action, e.target) for e in rows(app, AuditEntry)]


def test_login_returns_to_the_page_asked_for(ward, browser):
    b = browser()
    assert b.get("/households").headers["Location"] == "/login?next=/households"
    assert b.login("sup1", next_path="/households").headers["Location"] == "/households"
    # never to another site
    assert b.login("sup1", next_path="//evil.example/x").headers["Location"] == "/"


def test_wrong_password_is_refused(ward, browser):
    b = browser()
    response = b.login("sup1", "wrong password!")
    assert response.status_code == 200
    assert "không đúng" in response.get_data(as_text=True)
    assert b.get("/").status_code == 302


def test_only_a_volunteer_given_a_password_logs_in_and_only_to_fill(app, ward, browser):
    session = app.extensions["db"].session(write=True)
    accounts.create_user(session, "vol2", "volunteer", project_id=ward.project_id,
                         team="tdp01", password="a volunteer password")
    session.commit()
    session.close()
    b = browser()
    assert b.login("vol1", "").status_code == 400  # no password at all
    assert b.get("/").headers["Location"].startswith("/login")
    login = b.login("vol2", "a volunteer password")
    assert login.status_code == 302 and login.headers["Location"] == "/fill"
    assert b.get("/").headers["Location"] == "/fill"  # its forms, not the dashboard


def test_five_failures_lock_that_username_and_address(app, ward, browser):
    b = browser()
    for _ in range(5):
        assert b.login("sup1", "wrong password!").status_code == 200
    locked = b.login("sup1")  # even the right password
    assert locked.status_code == 429
    assert "15 phút" in locked.get_data(as_text=True)
    assert browser(remote_addr="10.9.9.9").login("sup1").status_code == 302  # another address
    assert b.login("admin").status_code == 302  # another username
    assert len(rows(app, LoginAttempt)) == 5


def test_success_clears_the_failures(app, ward, browser):
    b = browser()
    for _ in range(4):
        b.login("sup1", "wrong password!")
    assert b.login("sup1").status_code == 302
    assert rows(app, LoginAttempt) == []


def test_forms_without_a_csrf_token_are_refused(app, ward, browser, sup1):
    b = browser()
    refused = b.client.post("/login", data={"username": "sup1", "password": "x" * 12})
    assert refused.status_code == 400
    assert "tải lại trang" in refused.get_data(as_text=True)
    assert sup1.client.post("/logout").status_code == 400
    assert sup1.get("/").status_code == 200  # still logged in


def test_login_renews_the_session(ward, browser):
    b = browser()
    before = csrf_token(b.get("/login").get_data(as_text=True))
    with b.client.session_transaction() as s:
        s["planted"] = "by an attacker"
    b.login("sup1")
    with b.client.session_transaction() as s:
        assert "planted" not in s and s.get("sid")
        first_sid = s["sid"]
    # the token from before the login is worth nothing now
    assert b.client.post("/logout", data={"csrf_token": before}).status_code == 400
    b.post("/logout", page="/")
    b.login("sup1")
    with b.client.session_transaction() as s:
        assert s["sid"] != first_sid


def test_logout_ends_the_session(ward, sup1):
    assert sup1.post("/logout", page="/").headers["Location"] == "/login"
    assert sup1.get("/").status_code == 302


def test_revoked_user_is_logged_out_at_once(app, ward, sup1):
    assert sup1.get("/").status_code == 200
    session = app.extensions["db"].session(write=True)
    accounts.revoke(session, accounts.get_user(session, "sup1"))
    session.commit()
    session.close()
    response = sup1.get("/")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")


def test_session_cookie_flags(app, ward, browser):
    b = browser()
    b.login("sup1")
    cookie = b.client.get_cookie("session")
    assert cookie.http_only and cookie.same_site == "Lax" and not cookie.secure
    secure = app.test_client()
    page = secure.get("/login", base_url="https://localhost")
    data = {"username": "sup1", "password": "correct horse battery",
            "csrf_token": csrf_token(page.get_data(as_text=True))}
    response = secure.post("/login", data=data, base_url="https://localhost",
                           headers={"Referer": "https://localhost/login"})  # checked over https
    header = next(v for v in response.headers.getlist("Set-Cookie") if v.startswith("session="))
    assert "Secure" in header and "HttpOnly" in header and "SameSite=Lax" in header


def test_security_headers_on_web_pages(ward, browser, sup1):
    for response in (browser().get("/login"), sup1.get("/"), sup1.get("/submissions"),
                     sup1.get("/assets/site.css")):
        h = response.headers
        assert "script-src 'self'" in h["Content-Security-Policy"]
        assert "unsafe-inline" not in h["Content-Security-Policy"]
        assert h["X-Frame-Options"] == "DENY"
        assert h["X-Content-Type-Options"] == "nosniff"
        assert h["Referrer-Policy"] == "same-origin"
        response.close()
    assert sup1.get("/").headers["Cache-Control"] == "no-store"


def test_pages_have_no_inline_script_or_style(ward, sup1):
    html = sup1.get("/").get_data(as_text=True)
    assert "<script" not in html and " style=" not in html and "<style" not in html


def _sample_path(rule) -> str:
    values = {}
    for name, conv in rule._converters.items():
        values[name] = 1 if type(conv).__name__ in ("IdConverter", "IntegerConverter") else "x"
    return rule.build(values, append_unknown=False)[1]


PUBLIC = {"web.login", "web.set_language", "web.static", "static", "healthz"}


def test_every_web_url_needs_a_login(app, ward):
    client = app.test_client()
    checked = 0
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith(("openrosa.", "central.")) or rule.endpoint in PUBLIC:
            continue
        path = _sample_path(rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            response = client.open(path, method=method)
            assert response.status_code == 302, (method, path, response.status_code)
            assert response.headers["Location"].startswith("/login"), (method, path)
            checked += 1
    assert checked >= 20


def test_openrosa_urls_are_not_web_pages(app, ward):
    client = app.test_client()
    response = client.get(f"/v1/projects/{ward.project_id}/formList",
                          headers={"X-OpenRosa-Version": "1.0"})
    assert response.status_code == 401
    assert response.headers["Content-Type"].startswith("text/xml")
    assert "Set-Cookie" not in response.headers
    assert "Content-Security-Policy" not in response.headers


@pytest.mark.parametrize("who", ["sup1", "admin"])
def test_every_page_answers_every_role_without_a_server_error(app, ward, browser, who):
    b = browser()
    b.login(who)
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("openrosa.") or "GET" not in rule.methods:
            continue
        response = b.get(_sample_path(rule))
        assert response.status_code < 500, (rule.rule, response.status_code)


def test_admin_may_switch_project_supervisor_may_not(app, ward, admin, sup1):
    session = app.extensions["db"].session(write=True)
    other = accounts.create_project(session, "Phường Khác").id
    session.commit()
    session.close()
    assert sup1.post("/project", {"project": str(other)}, page="/").status_code == 403
    assert admin.post("/project", {"project": str(other)}, page="/").status_code == 302
    assert "Phường Khác" in admin.get("/").get_data(as_text=True)


def test_language_switch(ward, browser):
    b = browser()
    assert "Đăng nhập" in b.get("/login").get_data(as_text=True)
    b.post("/language", {"lang": "en", "next": "/login"}, page="/login")
    page = b.get("/login").get_data(as_text=True)
    assert "Log in" in page and 'lang="en"' in page
    b.login("sup1")
    html = b.get("/").get_data(as_text=True)
    assert "Submissions" in html  # the choice survives the login
