"""App users (the project's volunteers with a Collect token) and form assignments, as pyodk's
projects.create_app_users uses them, and what an assignment changes in Collect."""

from __future__ import annotations

import pytest

from server.db.models import User
from tests.openrosa.conftest import rows
from tests.openrosa.test_entities import survey
from tests.support.collect import Collect, FlaskTransport
from tests.support.instances import build

APP_USER_KEYS = {"projectId", "id", "displayName", "createdAt", "type", "token", "updatedAt",
                 "deletedAt"}


@pytest.fixture
def app_users(ward):
    return f"/v1/projects/{ward.project_id}/app-users"


def collect_for(app, ward, token: str) -> Collect:
    return Collect(f"http://localhost/v1/key/{token}/projects/{ward.project_id}",
                   FlaskTransport(app))


def listed(collect: Collect) -> set[str]:
    return {f["formID"] for f in collect.form_list()}


def test_a_new_app_user_is_a_ward_volunteer_whose_token_sets_up_collect(app, ward, admin_api,
                                                                         app_users):
    created = admin_api.post(app_users, json={"displayName": "Máy tính bảng  Tổ 3"})
    body = created.get_json()
    assert created.status_code == 200, body
    assert set(body) == APP_USER_KEYS
    assert body["type"] == "field_key" and body["displayName"] == "Máy tính bảng Tổ 3"
    assert body["projectId"] == ward.project_id and body["deletedAt"] is None
    [user] = rows(app, User, User.id == body["id"])
    assert user.role == "volunteer" and user.team is None
    assert user.username.startswith("may-tinh-bang-to-3-")
    phone = collect_for(app, ward, body["token"])
    assert listed(phone) == {"household_survey", "support_visit"}

    everyone = {u["displayName"]: u for u in admin_api.get(app_users).get_json()}
    assert everyone["Máy tính bảng Tổ 3"]["token"] == body["token"]
    assert everyone["Hà Thị Thu"]["token"] == ward.token  # vol1, set up on the web
    assert all(set(u) == APP_USER_KEYS for u in everyone.values())


def test_revoking_an_app_user_stops_its_phone_at_once(app, ward, admin_api, app_users):
    body = admin_api.post(app_users, json={"displayName": "Máy 7"}).get_json()
    assert admin_api.delete(f"{app_users}/{body['id']}").get_json() == {"success": True}
    phone = collect_for(app, ward, body["token"])
    assert phone.get(phone.form_list_url).status == 403
    revoked = next(u for u in admin_api.get(app_users).get_json() if u["id"] == body["id"])
    assert revoked["token"] is None


def test_app_users_are_the_admins_business(app, ward, admin_api, supervisor_api, app_users):
    assert supervisor_api.get(app_users).status_code == 403
    refused = supervisor_api.post(app_users, json={"displayName": "Máy lạ"})
    assert refused.status_code == 403 and refused.get_json()["code"] == 403.1
    missing = admin_api.post(app_users, json={"displayName": "  "})
    assert missing.status_code == 400 and missing.get_json()["code"] == 400.2
    assert admin_api.post(app_users, json={"displayName": "x" * 201}).status_code == 400
    assert admin_api.post(app_users, data="{").status_code == 400
    assert len(rows(app, User, User.role == "volunteer")) == 1


def test_assigned_forms_are_all_a_volunteer_lists_downloads_and_submits(
        app, ward, admin_api, app_users, collect, xforms):
    body = admin_api.post(app_users, json={"displayName": "Máy thăm hộ"}).get_json()
    phone = collect_for(app, ward, body["token"])
    survey_entry = next(f for f in phone.form_list() if f["formID"] == "household_survey")
    assignments = f"/v1/projects/{ward.project_id}/forms/support_visit/assignments/2"
    assert admin_api.post(f"{assignments}/{body['id']}").get_json() == {"success": True}
    assert admin_api.post(f"{assignments}/{body['id']}").status_code == 200  # idempotent
    assert [a["id"] for a in admin_api.get(assignments).get_json()] == [body["id"]]

    assert listed(phone) == {"support_visit"}  # the cached list follows the assignment
    assert phone.get(survey_entry["downloadUrl"]).status == 403
    _eid, xml = survey(xforms, head="Trần Văn Mới")
    [refused] = phone.submit(xml)
    assert refused.status == 403 and "<OpenRosaResponse" in refused.text
    visit = build(xforms["support_visit"], {})
    assert phone.submit(visit)[0].status != 403  # an assigned form is only checked as usual
    # a volunteer without assignments keeps every form of the project
    assert listed(collect) == {"household_survey", "support_visit"}

    assert admin_api.delete(f"{assignments}/{body['id']}").get_json() == {"success": True}
    assert listed(phone) == {"household_survey", "support_visit"}
    assert admin_api.delete(f"{assignments}/{body['id']}").status_code == 404


def test_assignments_name_role_2_and_a_volunteer_of_the_project(app, ward, admin_api,
                                                                supervisor_api, app_users):
    body = admin_api.post(app_users, json={"displayName": "Máy 2"}).get_json()
    base = f"/v1/projects/{ward.project_id}/forms/support_visit/assignments"
    assert admin_api.post(f"{base}/3/{body['id']}").status_code == 404
    sup1 = rows(app, User, User.username == "sup1")[0]
    assert admin_api.post(f"{base}/2/{sup1.id}").status_code == 404
    assert admin_api.post(f"/v1/projects/{ward.project_id}/forms/nope/assignments/2/"
                          f"{body['id']}").status_code == 404
    refused = supervisor_api.post(f"{base}/2/{body['id']}")
    assert refused.status_code == 403
    assert admin_api.get(f"{base}/2").get_json() == []
