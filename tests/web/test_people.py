"""The team registry in the web UI: adding volunteers, members leaving, passwords, training
sessions and their attendance (what I07 counts), each within the actor's tổ."""

from __future__ import annotations

import datetime as dt
import html as html_lib
import re
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from server.db.models import AuditEntry, LoginAttempt, TrainingSession, User, VolunteerTraining
from server.domain import accounts
from server.domain.ward import load_ward_config
from server.exports.facts import load_facts
from server.exports.indicators import Report
from tests.support.factories import PASSWORD, make_ward
from tests.web.conftest import Browser


def today(app) -> dt.date:
    return dt.datetime.now(ZoneInfo(app.config["TIMEZONE"])).date()


def query(app, statement):
    session = app.extensions["db"].session()
    try:
        return session.execute(statement).all()
    finally:
        session.close()


def user(app, username: str) -> User:
    session = app.extensions["db"].session()
    try:
        found = session.scalar(select(User).where(User.username == username))
        session.expunge_all()
        return found
    finally:
        session.close()


def count(app, model) -> int:
    return query(app, select(func.count()).select_from(model))[0][0]


def text(response) -> str:
    return html_lib.unescape(response.get_data(as_text=True))


@pytest.fixture
def ward(app):
    """The ward's project and people; these pages need no published form."""
    return make_ward(app, forms=False)


@pytest.fixture
def other_tdp(app, ward):
    """tdp02's leader and volunteer, which sup1 (tdp01) must not see."""
    session = app.extensions["db"].session(write=True)
    accounts.create_user(session, "sup2", "supervisor", project_id=ward.project_id,
                         team="tdp02", password=PASSWORD, display_name="Lê Văn Hai")
    accounts.create_user(session, "vol2", "volunteer", project_id=ward.project_id,
                         team="tdp02", display_name="Phạm Thị Mai")
    session.commit()
    session.close()


def new_volunteer(b: Browser, app, **fields):
    data = {"username": "lan", "display_name": "Nguyễn Thị Lan", "team": "tdp01",
            "joined_on": today(app).isoformat(), **fields}
    return b.post("/people/new", data)


def formlist_status(app, ward, token: str) -> int:
    client = app.test_client()
    response = client.get(f"/v1/key/{token}/projects/{ward.project_id}/formList",
                          headers={"X-OpenRosa-Version": "1.0"})
    return response.status_code


def test_add_a_volunteer_then_set_up_its_phone(app, ward, sup1):
    response = new_volunteer(sup1, app, joined_on="2026-03-01")
    lan = user(app, "lan")
    assert response.status_code == 302
    assert response.headers["Location"] == f"/setup/{lan.id}"
    assert (lan.role, lan.team, lan.joined_on, lan.password_hash) == (
        "volunteer", "tdp01", "2026-03-01", None)
    qr_page = text(sup1.get(f"/setup/{lan.id}"))
    assert "Nguyễn Thị Lan" in qr_page and "data-qr" in qr_page  # token issued on creation
    token = re.search(r"/v1/key/([^/]+)/projects/", qr_page).group(1)
    assert formlist_status(app, ward, token) == 200
    listing = text(sup1.get("/people"))
    row = re.search(rf'<tr>\s*<td><a href="/people/{lan.id}">Nguyễn Thị Lan</a>.*?</tr>',
                    listing, re.S).group(0)
    assert "<code>lan</code>" in row and "01/03/2026" in row and "Tình nguyện viên" in row
    [(actor, target, details)] = query(app, select(
        AuditEntry.actor_id, AuditEntry.target, AuditEntry.details).where(
        AuditEntry.action == "user.create"))
    assert (actor, target, details["team"]) == (user(app, "sup1").id, "lan", "tdp01")


def test_the_list_shows_leaders_dates_and_last_training(app, ward, sup1, other_tdp):
    page = text(sup1.get("/people"))
    assert "Trần Văn Giám" in page and "Tổ trưởng" in page and "Hà Thị Thu" in page
    assert "Phạm Thị Mai" not in page and "Lê Văn Hai" not in page  # tdp02's people


def test_a_leader_stays_inside_its_own_tdp(app, ward, sup1, admin, other_tdp):
    vol2, sup2, root = user(app, "vol2"), user(app, "sup2"), user(app, "admin")
    assert sup1.get(f"/people/{vol2.id}").status_code == 403
    assert sup1.post(f"/people/{vol2.id}/leave", {"left_on": today(app).isoformat()},
                     page="/people").status_code == 403
    assert user(app, "vol2").active and user(app, "vol2").left_on is None
    assert new_volunteer(sup1, app, username="khoa", team="tdp02").status_code == 403
    assert user(app, "khoa") is None
    # passwords: another tổ's leader, an admin (not a member: not found), itself via reset
    for target, status in ((sup2, 403), (root, 404), (user(app, "sup1"), 403)):
        assert sup1.post(f"/people/{target.id}/password", page="/people").status_code == status
    assert user(app, "admin").password_hash == root.password_hash
    assert user(app, "sup2").password_hash == sup2.password_hash
    # the admin sees both tổ
    page = text(admin.get("/people"))
    assert "Phạm Thị Mai" in page and "Hà Thị Thu" in page


def test_leaving_cuts_the_phone_off_at_once(app, ward, sup1, collect):
    vol1 = user(app, "vol1")
    assert formlist_status(app, ward, ward.token) == 200
    day = today(app).isoformat()
    response = sup1.post(f"/people/{vol1.id}/leave", {"left_on": day}, page=f"/people/{vol1.id}")
    assert response.status_code == 302
    assert formlist_status(app, ward, ward.token) == 403
    after = user(app, "vol1")
    assert (after.active, after.left_on, after.token_hash) == (False, day, None)
    assert after.left_recorded_at is not None
    assert "Đã nghỉ" in text(sup1.get(f"/people/{vol1.id}"))
    assert "data-qr" not in text(sup1.get(f"/setup/{vol1.id}"))
    assert query(app, select(AuditEntry.target, AuditEntry.details).where(
        AuditEntry.action == "user.leave")) == [("vol1", {"left_on": day})]


def test_admin_resets_a_leaders_password_shown_once(app, ward, admin, sup1):
    sup = user(app, "sup1")
    response = admin.post(f"/people/{sup.id}/password", page=f"/people/{sup.id}")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    password = re.search(r'id="new-password">([^<]+)<', text(response)).group(1)
    assert re.fullmatch(r"[a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4}", password)
    after = user(app, "sup1")
    assert after.password_hash.startswith("scrypt:") and password not in after.password_hash
    assert after.digest_ha1 == accounts.digest_ha1("sup1", password)
    assert password not in text(admin.get(f"/people/{sup.id}"))  # shown once only
    assert sup1.get("/people").status_code == 302  # the leader's old session has ended
    fresh = Browser(app, remote_addr="10.0.0.3")
    assert fresh.login("sup1", PASSWORD).status_code == 200  # the old one is refused
    assert fresh.login("sup1", password).status_code == 302


def test_a_leader_changes_its_own_password(app, ward, sup1):
    new = "mật khẩu mới của tôi"
    before = user(app, "sup1").password_hash
    wrong = sup1.post("/account/password", {"current": "not it", "new": new, "again": new})
    assert wrong.status_code == 200 and "Mật khẩu hiện tại không đúng." in text(wrong)
    assert count(app, LoginAttempt) == 1  # counts against the login throttle
    mismatch = sup1.post("/account/password", {"current": PASSWORD, "new": new, "again": "x"})
    assert mismatch.status_code == 400 and "không giống nhau" in text(mismatch)
    short = sup1.post("/account/password", {"current": PASSWORD, "new": "short", "again": "short"})
    assert short.status_code == 400 and "từ 10 đến 200 ký tự" in text(short)
    assert user(app, "sup1").password_hash == before
    ok = sup1.post("/account/password", {"current": PASSWORD, "new": new, "again": new})
    assert ok.status_code == 302
    assert sup1.get("/people").status_code == 200  # this session goes on
    assert accounts.check_password(user(app, "sup1"), new)
    assert Browser(app, remote_addr="10.0.0.9").login("sup1", new).status_code == 302


def i07_tdp01(app, ward) -> tuple[int, int]:
    session = app.extensions["db"].session()
    try:
        facts = load_facts(session, ward.project_id, timezone=app.config["TIMEZONE"])
        count = Report(facts, load_ward_config(Path(app.config["WARD_CONFIG"]))).status(
            today(app))["tdp01"]["I07"]
        return count.num, count.den
    finally:
        session.close()


def test_a_training_session_counts_its_attendees_for_i07(app, ward, sup1):
    vol1 = user(app, "vol1")
    assert i07_tdp01(app, ward) == (0, 2)  # vol1 and its leader sup1
    page = text(sup1.get("/trainings/new"))
    assert f'value="{vol1.id}"' in page and f'value="{user(app, "sup1").id}"' in page
    response = sup1.post("/trainings/new", {
        "date": today(app).isoformat(), "topic": "Cài đặt VNeID mức 2",
        "organiser": "UBND phường Bình Thuận", "attendee": str(vol1.id)})
    assert response.status_code == 302
    assert i07_tdp01(app, ward) == (1, 2)
    [(session_id, organiser, day)] = query(app, select(
        VolunteerTraining.session_id, VolunteerTraining.organiser, VolunteerTraining.date))
    assert (organiser, day) == ("UBND phường Bình Thuận", today(app).isoformat())
    assert response.headers["Location"] == f"/trainings/{session_id}"
    detail = text(sup1.get(f"/trainings/{session_id}"))
    assert "Cài đặt VNeID mức 2" in detail and "Hà Thị Thu" in detail
    assert f"Đã tập huấn năm {today(app).year}: 1 / 2" in text(sup1.get("/people"))
    # the leader then adds itself; a second tick of vol1 adds nothing
    sup = user(app, "sup1")
    added = sup1.post(f"/trainings/{session_id}/attendees", {"attendee": [str(sup.id)]},
                      page=f"/trainings/{session_id}")
    assert added.status_code == 302 and i07_tdp01(app, ward) == (2, 2)
    again = sup1.post(f"/trainings/{session_id}/attendees", {"attendee": [str(vol1.id)]},
                      page=f"/trainings/{session_id}")
    assert again.status_code == 302 and count(app, VolunteerTraining) == 2


def test_attendance_stays_inside_the_leaders_tdp(app, ward, sup1, admin, other_tdp):
    vol2 = user(app, "vol2")
    assert f'value="{vol2.id}"' not in text(sup1.get("/trainings/new"))
    refused = sup1.post("/trainings/new", {
        "date": today(app).isoformat(), "topic": "An toàn số", "organiser": "Phường",
        "attendee": [str(user(app, "vol1").id), str(vol2.id)]})
    assert refused.status_code == 403
    assert count(app, TrainingSession) == 0 and count(app, VolunteerTraining) == 0
    admin.post("/trainings/new", {"date": today(app).isoformat(), "topic": "An toàn số",
                                  "organiser": "Phường", "attendee": [str(vol2.id)]})
    [(session_id,)] = query(app, select(TrainingSession.id))
    assert "Phạm Thị Mai" in text(admin.get(f"/trainings/{session_id}"))
    detail = text(sup1.get(f"/trainings/{session_id}"))
    assert "An toàn số" in detail and "Phạm Thị Mai" not in detail
    assert sup1.post(f"/trainings/{session_id}/attendees", {"attendee": [str(vol2.id)]},
                     page=f"/trainings/{session_id}").status_code == 403


BAD_VOLUNTEERS = [
    ({"username": ""}, "Hãy nhập tên đăng nhập."),
    ({"username": "  "}, "Hãy nhập tên đăng nhập."),
    ({"username": "vol1"}, "đã có người dùng"),
    ({"username": "VOL1"}, "đã có người dùng"),
    ({"username": "lan thi"}, "chỉ gồm chữ không dấu"),
    ({"display_name": ""}, "Hãy nhập họ tên."),
    ({"joined_on": "2026-02-30"}, "Ngày không hợp lệ"),
    ({"joined_on": "hôm qua"}, "Ngày không hợp lệ"),
    ({"joined_on": "2999-01-01"}, "Ngày phải từ năm 2000 đến hôm nay."),
    ({"team": "tdp99"}, "Hãy chọn một tổ trong danh sách."),
    ({"team": ""}, "Hãy chọn một tổ trong danh sách."),
]


def test_bad_volunteer_input_is_explained_and_nothing_is_stored(app, ward, admin):
    users, audits = count(app, User), count(app, AuditEntry)
    for fields, message in BAD_VOLUNTEERS:
        response = new_volunteer(admin, app, **fields)
        assert response.status_code == 400, fields
        page = text(response)
        assert message in page and "Chưa lưu" in page, fields
        assert count(app, User) == users and count(app, AuditEntry) == audits


BAD_TRAININGS = [
    ({"date": "31/12/2026"}, "Ngày không hợp lệ"),
    ({"topic": ""}, "Hãy nhập chủ đề tập huấn."),
    ({"organiser": " "}, "Hãy nhập đơn vị tổ chức."),
    ({"attendee": []}, "Hãy chọn ít nhất một người tham dự."),
    ({"attendee": ["x1"]}, "Danh sách người tham dự không hợp lệ."),
    ({"attendee": ["999999"]}, "Danh sách người tham dự không hợp lệ."),
]


def test_bad_training_input_is_explained_and_nothing_is_stored(app, ward, sup1):
    for fields, message in BAD_TRAININGS:
        data = {"date": today(app).isoformat(), "topic": "Kỹ năng số", "organiser": "Phường",
                "attendee": [str(user(app, "vol1").id)], **fields}
        response = sup1.post("/trainings/new", data)
        assert response.status_code == 400 and message in text(response), fields
        assert count(app, TrainingSession) == 0 and count(app, VolunteerTraining) == 0


def test_leaving_before_joining_is_refused(app, ward, sup1):
    vol1 = user(app, "vol1")
    response = sup1.post(f"/people/{vol1.id}/leave", {"left_on": "2001-01-01"},
                         page=f"/people/{vol1.id}")
    assert response.status_code == 400
    assert "Ngày nghỉ không được trước ngày vào tổ." in text(response)
    assert user(app, "vol1").active and formlist_status(app, ward, ward.token) == 200


def test_writes_without_the_csrf_token_are_refused(app, ward, sup1, admin):
    vol1, sup = user(app, "vol1"), user(app, "sup1")
    client = sup1.client
    day = today(app).isoformat()
    for path, data in (
        ("/people/new", {"username": "lan", "display_name": "Lan", "team": "tdp01",
                         "joined_on": day}),
        (f"/people/{vol1.id}/leave", {"left_on": day}),
        ("/trainings/new", {"date": day, "topic": "x", "organiser": "y",
                            "attendee": str(vol1.id)}),
        ("/account/password", {"current": PASSWORD, "new": "x" * 12, "again": "x" * 12}),
    ):
        response = client.post(path, data=data)
        assert response.status_code == 400, path
        assert "Phiên làm việc đã hết hạn" in text(response)
    assert admin.client.post(f"/people/{sup.id}/password").status_code == 400
    assert user(app, "lan") is None and user(app, "vol1").active
    assert user(app, "sup1").password_hash == sup.password_hash
    assert count(app, TrainingSession) == 0


def test_the_pages_speak_english_on_request(app, ward, sup1):
    switched = sup1.post("/language", {"lang": "en", "next": "/people"}, page="/people")
    assert switched.status_code == 302
    page = text(sup1.get("/people"))
    assert "Add a volunteer" in page and "Team leader" in page
    assert "Thêm tình nguyện viên" not in page
