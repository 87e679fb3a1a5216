"""A volunteer given a password fills its forms in the browser (/fill) and reaches nothing
else of the web UI."""

from __future__ import annotations

import pytest

from server.db.models import Form, Submission, User
from server.domain import accounts, assignments
from tests.openrosa.conftest import rows
from tests.openrosa.test_entities import households_csv, survey
from tests.support.factories import PASSWORD
from tests.web.test_fill import attribute, fill_page, form_id, other_project_form, send

__all__ = ["other_project_form"]  # the fixture, shared with the fill page's tests


def _write(app, change):
    db = app.extensions["db"].session(write=True)
    try:
        result = change(db)
        db.commit()
        return result
    finally:
        db.close()


@pytest.fixture
def vol7(app, ward):
    """A volunteer of tdp01 with a password (`user add --role volunteer --password-stdin`)."""
    return _write(app, lambda db: accounts.create_user(
        db, "vol7", "volunteer", project_id=ward.project_id, team="tdp01", password=PASSWORD,
        display_name="Võ Thị Bảy").user.id)


@pytest.fixture
def filler(browser, vol7):
    b = browser(remote_addr="10.0.0.7")
    login = b.login("vol7")
    assert login.status_code == 302 and login.headers["Location"] == "/fill"
    return b


def test_a_volunteer_lands_on_its_forms_and_sends_one_as_its_own(app, filler, vol7, xforms):
    page = filler.get("/fill").get_data(as_text=True)
    survey_fid, visit_fid = form_id(app, "household_survey"), form_id(app, "support_visit")
    assert f'href="/forms/{survey_fid}/fill">Điền phiếu</a>' in page
    assert f'href="/forms/{visit_fid}/fill">Điền phiếu</a>' in page
    assert 'href="/fill"' in page and 'href="/households"' not in page  # its one menu entry
    assert filler.get("/").headers["Location"] == "/fill"

    _eid, xml = survey(xforms, head="Phan Văn Bình")
    response = send(filler, survey_fid, xml)
    assert response.status_code == 201, response.get_data(as_text=True)
    assert response.get_json()["submission_url"] is None  # it reads no submission pages
    [sub] = rows(app, Submission)
    assert sub.submitter_id == vol7 and sub.device_id is None


def test_its_household_list_holds_its_own_to_only(app, filler, collect, add_household):
    add_household("Nguyễn Văn Hùng")
    add_household("Lê Thị Lan", tdp="tdp02")
    files = attribute(fill_page(filler, form_id(app, "support_visit")), "data-files-url")
    listed = filler.get(files + "households.csv")
    assert listed.status_code == 200
    assert "Nguyễn Văn Hùng" in listed.get_data(as_text=True)
    assert "Lê Thị Lan" not in listed.get_data(as_text=True)
    assert [r["head_name"] for r in households_csv(collect)] == ["Nguyễn Văn Hùng"]


def test_assignments_limit_what_it_may_fill(app, filler, vol7):
    survey_fid, visit_fid = form_id(app, "household_survey"), form_id(app, "support_visit")

    def assign(db):
        assignments.assign(db, db.get(Form, visit_fid), db.get(User, vol7))

    _write(app, assign)
    page = filler.get("/fill").get_data(as_text=True)
    assert f"/forms/{visit_fid}/fill" in page and f"/forms/{survey_fid}/fill" not in page
    assert filler.get(f"/forms/{visit_fid}/fill").status_code == 200
    assert filler.get(f"/forms/{survey_fid}/fill").status_code == 403


@pytest.mark.parametrize("path", ["/submissions", "/households", "/exports", "/people",
                                  "/forms", "/audit", "/duplicates", "/setup"])
def test_every_other_page_refuses_it(filler, path):
    assert filler.get(path).status_code == 403


def test_another_projects_form_is_refused(app, filler, xforms, other_project_form):
    assert filler.get(f"/forms/{other_project_form}/fill").status_code == 403
    _eid, xml = survey(xforms)
    token = attribute(fill_page(filler, form_id(app, "household_survey")), "data-csrf-token")
    assert send(filler, other_project_form, xml, token=token).status_code == 403
    assert rows(app, Submission) == []


def test_a_login_link_to_a_fill_page_is_kept_and_any_other_dropped(app, browser, vol7):
    fid = form_id(app, "support_visit")
    b = browser(remote_addr="10.0.0.8")
    assert b.login("vol7", next_path=f"/forms/{fid}/fill").headers["Location"] == (
        f"/forms/{fid}/fill")
    b = browser(remote_addr="10.0.0.8")
    assert b.login("vol7", next_path="/households").headers["Location"] == "/fill"


def test_a_volunteer_without_a_password_cannot_log_in(browser, ward):
    refused = browser(remote_addr="10.0.0.9").login("vol1")
    assert refused.status_code == 200
    assert "không đúng" in refused.get_data(as_text=True)


def test_revoking_the_volunteer_ends_its_web_session(app, filler, vol7):
    assert filler.get("/fill").status_code == 200
    _write(app, lambda db: accounts.revoke(db, db.get(User, vol7)))
    gone = filler.get("/fill")
    assert gone.status_code == 302 and gone.headers["Location"].startswith("/login")


def test_user_add_gives_a_volunteer_a_password_to_log_in_with(cli, browser):
    cli("init")
    added = cli("user", "add", "bay", "--role", "volunteer", "--team", "tdp01",
                "--password-stdin", input="mật khẩu của Bảy\n")
    assert added.exit_code == 0 and "password:" not in added.output
    b = browser(remote_addr="10.0.0.6")
    assert b.login("bay", "mật khẩu của Bảy").headers["Location"] == "/fill"
    assert b.get("/fill").status_code == 200
