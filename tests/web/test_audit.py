"""The audit log: logins, downloads and exports, reviews, duplicate decisions and unmerges, and
erasures leave entries; admins alone read them at /audit (filters, pages) and download them as
a formula-safe CSV, which is itself audited."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re

from server.db.models import AuditEntry, DedupePair, SubmissionVersion, User
from server.domain import accounts
from tests.openrosa.conftest import rows
from tests.web.conftest import csrf_token


def _actions(app, action):
    return rows(app, AuditEntry, AuditEntry.action == action)


def _user_id(app, username):
    return rows(app, User, User.username == username)[0].id


def _download(browser, path):
    response = browser.get(path)
    data = response.get_data()
    response.close()
    assert response.status_code == 200, path
    return data


def test_logins_succeeded_and_failed_are_audited(app, ward, browser):
    b = browser(remote_addr="10.9.9.9")
    assert b.login("sup1", password="wrong").status_code == 200
    assert b.login("sup1").status_code == 302
    [failed] = _actions(app, "web.login_failed")
    assert failed.target == "sup1" and failed.actor_id is None
    assert failed.details == {"ip": "10.9.9.9"}
    [ok] = _actions(app, "web.login")
    assert ok.actor_id == _user_id(app, "sup1")


def test_downloads_reviews_decisions_exports_and_erasures_are_audited(
        app, sup1, admin, add_household, cli, tmp_path):
    hid = add_household("Nguyễn Văn Hùng", house="5", year="1970")
    add_household("Nguyễn Văn Hưng", house="5", year="1970")
    _download(sup1, "/exports/households/households_register.csv")
    _download(sup1, "/exports/submissions/household_survey.zip")
    sid = rows(app, SubmissionVersion)[0].submission_id
    sup1.post(f"/submissions/{sid}/review", {"state": "approved", "comment": ""},
              page=f"/submissions/{sid}")
    [pair] = rows(app, DedupePair)
    sup1.post(f"/duplicates/{pair.id}/decide", {"decision": "merge"},
              page=f"/duplicates/{pair.id}")
    alias = pair.entity_b if pair.entity_a == hid else pair.entity_a
    admin.post(f"/duplicates/unmerge/{alias}", page="/duplicates/merges")
    assert cli("export", "households", "--out", str(tmp_path)).exit_code == 0
    assert cli("erase", "household", hid, "--reason", "Đơn 9", "--yes").exit_code == 0
    sup = _user_id(app, "sup1")
    downloads = _actions(app, "export")
    web = [e for e in downloads if (e.details or {}).get("via") == "web"]
    assert [(e.target, e.details["table"], e.details["format"], e.actor_id) for e in web] == [
        ("households", "households_register", "csv", sup),
        ("submissions", "household_survey", "zip", sup)]
    assert web[0].details["masked"] is False  # a team leader sees its tổ's phones
    assert any(e.target == "households" and e.actor_id is None for e in downloads)  # the CLI
    [review] = _actions(app, "submission.review")
    assert review.actor_id == sup and review.details["to_state"] == "approved"
    [decision] = _actions(app, "households.decide")
    assert decision.details["decision"] == "merge" and decision.target == str(pair.id)
    [undo] = _actions(app, "households.unmerge")
    assert undo.target == alias and undo.actor_id == _user_id(app, "admin")
    [erasure] = _actions(app, "personal_data.erase")
    assert erasure.target == hid and erasure.details["reason"] == "Đơn 9"


def _seed(app, n_days=3, per_day=25):
    session = app.extensions["db"].session(write=True)
    try:
        admin = session.query(User).filter_by(username="admin").one()
        for day in range(n_days):
            for i in range(per_day):
                accounts.audit(session, "user.token_issued", actor=admin, target=f"vol{day}-{i}")
                session.flush()
                entry = session.query(AuditEntry).order_by(AuditEntry.id.desc()).first()
                entry.at = dt.datetime(2026, 11, 10 + day, 3, 0, tzinfo=dt.UTC)
        session.commit()
    finally:
        session.close()


def test_audit_page_is_for_admins_with_filters_and_pages(app, ward, sup1, admin):
    assert sup1.get("/audit").status_code == 403
    assert sup1.get("/audit.csv").status_code == 403
    assert 'href="/audit"' not in sup1.get("/").get_data(as_text=True)
    assert 'href="/audit"' in admin.get("/").get_data(as_text=True)
    _seed(app)
    html = admin.get("/audit").get_data(as_text=True)
    assert "Nhật ký hệ thống" in html and "Đăng nhập" in html
    assert "Trang 1 / 2" in html
    only = admin.get("/audit?action=user.token_issued&date_from=2026-11-11&date_to=2026-11-11")
    text = only.get_data(as_text=True)
    assert "25 mục" in text and "vol1-0" in text and "vol0-0" not in text
    second = admin.get("/audit?action=user.token_issued&page=2").get_data(as_text=True)
    assert "Trang 2 / 2" in second and len(re.findall(r"vol\d-\d+", second)) == 25
    by_sup = admin.get(f"/audit?user={_user_id(app, 'sup1')}").get_data(as_text=True)
    assert "1 mục" in by_sup and "web.login" in by_sup
    # bad filters are dropped, never an error page
    assert admin.get("/audit?date_from=yesterday&page=-3&user=x' OR 1=1").status_code == 200


def test_audit_csv_has_a_bom_is_formula_safe_and_is_itself_audited(app, ward, browser, admin):
    b = browser(remote_addr="10.7.7.7")
    b.login("=HYPERLINK(\"http://x\")", password="nope")
    data = _download(admin, "/audit.csv?action=web.login_failed")
    assert data.startswith(b"\xef\xbb\xbf")
    [row] = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
    assert row["target"].startswith("'=") and row["action"] == "web.login_failed"
    assert row["at"].endswith("+07:00") and '"ip": "10.7.7.7"' in row["details"]
    [export] = _actions(app, "audit.export")
    assert export.actor_id == _user_id(app, "admin")
    assert export.details["filters"] == {"action": "web.login_failed"}
    token = csrf_token(admin.get("/audit").get_data(as_text=True))
    assert admin.client.post("/audit", data={"csrf_token": token}).status_code == 405
