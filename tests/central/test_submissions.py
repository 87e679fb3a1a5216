"""Submissions through Central's REST API, as pyodk's `client.submissions` calls it: create
from raw XML, list, get, attachments, edits, review and comments, limited to a team
leader's tổ as the web review page is."""

from __future__ import annotations

import io
import uuid
from urllib.parse import quote

import pytest
from sqlalchemy import func, select

from server.db.models import AuditEntry, ReviewComment, Submission, SubmissionVersion
from server.domain import accounts
from tests.central.conftest import Api, login
from tests.exports.test_raw import as_dicts, export
from tests.openrosa.test_entities import survey
from tests.support.factories import PASSWORD
from tests.web.conftest import Browser

XML = {"Content-Type": "application/xml"}
PID_NUMBER = "001234567890"  # a well-formed identity number: blanked before storing
JPEG = b"\xff\xd8\xff\xe0 a small photo"


@pytest.fixture
def base(ward):
    return f"/v1/projects/{ward.project_id}/forms/household_survey/submissions"


def url(base: str, iid: str, rest: str = "") -> str:
    return f"{base}/{quote(iid, safe='')}{rest}"  # pyodk percent-encodes the ':' too


def household(xforms, *, iid=None, tdp="tdp01", extra=None, **kw) -> tuple[str, bytes]:
    iid = iid or f"uuid:{uuid.uuid4()}"
    values = {"g_head/head_id": PID_NUMBER, **(extra or {})}
    _eid, xml = survey(xforms, tdp=tdp, extra=values, instance_id=iid, **kw)
    return iid, xml


def count(app, model, *where) -> int:
    with app.extensions["db"].session() as db:
        return db.scalar(select(func.count()).select_from(model).where(*where))


def stored_xml(app, iid: str) -> bytes:
    with app.extensions["db"].session() as db:
        return db.scalar(select(SubmissionVersion.xml)
                         .where(SubmissionVersion.instance_id == iid))


def user_id(app, username: str) -> int:
    with app.extensions["db"].session() as db:
        return accounts.get_user(db, username).id


def test_create_then_list_and_get_the_same_submission(app, admin_api, supervisor_api, xforms,
                                                      base):
    iid, xml = household(xforms)
    created = admin_api.post(f"{base}?deviceID=collect:abc", data=xml, headers=XML)
    assert created.status_code == 200, created.get_data(as_text=True)
    body = created.get_json()
    assert body["instanceId"] == iid and body["submitterId"] == user_id(app, "admin")
    assert body["deviceId"] == "collect:abc" and body["reviewState"] is None
    assert body["createdAt"].endswith("Z") and body["currentVersion"]["instanceId"] == iid
    assert [s["instanceId"] for s in admin_api.get(base).get_json()] == [iid]
    assert admin_api.get(url(base, iid)).get_json() == body
    # the team leader of the household's tổ reads it too
    assert supervisor_api.get(url(base, iid)).get_json()["instanceId"] == iid


def test_stored_bytes_and_export_rows_equal_a_collect_submission(app, admin_api, collect,
                                                                 xforms, base):
    eid_api, eid_collect = str(uuid.uuid4()), str(uuid.uuid4())
    iid_api, xml_api = household(xforms, entity_id=eid_api)
    iid_collect = f"uuid:{uuid.uuid4()}"
    xml_collect = xml_api.replace(iid_api.encode(), iid_collect.encode()).replace(
        eid_api.encode(), eid_collect.encode())
    assert admin_api.post(base, data=xml_api, headers=XML).status_code == 200
    assert collect.submit(xml_collect)[0].status == 201

    def same(text: str) -> str:
        return text.replace(iid_api, iid_collect).replace(eid_api, eid_collect)

    from_api = admin_api.get(url(base, iid_api, ".xml"))
    assert from_api.status_code == 200 and from_api.mimetype == "application/xml"
    assert same(from_api.get_data(as_text=True)).encode() == stored_xml(app, iid_collect)
    assert PID_NUMBER.encode() not in from_api.data  # blanked before storing, as for Collect

    rows = {r["KEY"]: r for r in as_dicts(export(app, "household_survey")["household_survey"])}
    api_row, collect_row = rows[iid_api], rows[iid_collect]
    assert api_row["g_head-head_name"] == "Nguyễn Văn Hùng" and api_row["g_head-head_id"] == ""
    who = {"SubmitterID", "SubmitterName", "SubmissionDate", "DeviceID"}
    assert {k: same(v) for k, v in api_row.items() if k not in who} == {
        k: v for k, v in collect_row.items() if k not in who}


def test_a_second_post_of_an_instance_id_is_refused(app, admin_api, xforms, base):
    iid, xml = household(xforms)
    assert admin_api.post(base, data=xml, headers=XML).status_code == 200
    again = admin_api.post(base, data=xml, headers=XML)
    assert again.status_code == 409 and again.get_json()["code"] == 409.3
    _, other = household(xforms, iid=iid, extra={"g_addr/house_no": "99"})
    different = admin_api.post(base, data=other, headers=XML)
    assert different.status_code == 409 and different.get_json()["code"] == 409.3
    assert count(app, SubmissionVersion) == 1


def test_malformed_xml_and_a_wrong_form_id_are_refused_and_store_nothing(
        app, ward, admin_api, xforms, base):
    before = count(app, Submission)
    broken = admin_api.post(base, data=b"<data id='household_survey'><meta>", headers=XML)
    assert broken.status_code == 400 and broken.is_json and broken.get_json()["code"] == 400.8
    empty = admin_api.post(base, data=b"", headers=XML)
    assert empty.status_code == 400 and empty.get_json()["code"] == 400.1
    _, household_xml = household(xforms)
    visits = f"/v1/projects/{ward.project_id}/forms/support_visit/submissions"
    wrong = admin_api.post(visits, data=household_xml, headers=XML)
    assert wrong.status_code == 400 and wrong.get_json()["code"] == 400.8
    assert "form ID in the URL" in wrong.get_json()["message"]
    missing = admin_api.post(base.replace("household_survey", "nope"), data=household_xml,
                             headers=XML)
    assert missing.status_code == 404 and missing.get_json()["code"] == 404.1
    assert count(app, Submission) == before == 0
    assert admin_api.get(base).get_json() == []


def test_attachments_are_uploaded_one_by_one_then_listed_as_present(app, admin_api, xforms,
                                                                     base):
    iid, xml = household(xforms, extra={"g_end/house_photo": "house.jpg"})
    assert admin_api.post(base, data=xml, headers=XML).status_code == 200
    assert admin_api.get(url(base, iid, "/attachments")).get_json() == [
        {"name": "house.jpg", "exists": False}]
    assert admin_api.get(url(base, iid, "/attachments/house.jpg")).status_code == 404
    # as pyodk sends it: chunked, no Content-Length
    sent = admin_api.post(url(base, iid, "/attachments/house.jpg"),
                          input_stream=io.BytesIO(JPEG),
                          headers={"Content-Type": "image/jpeg",
                                   "Transfer-Encoding": "chunked"},
                          environ_overrides={"wsgi.input_terminated": True})
    assert sent.status_code == 200 and sent.get_json() == {"success": True}
    assert admin_api.get(url(base, iid, "/attachments")).get_json() == [
        {"name": "house.jpg", "exists": True}]
    got = admin_api.get(url(base, iid, "/attachments/house.jpg"))
    assert got.status_code == 200 and got.data == JPEG and got.mimetype == "image/jpeg"
    got.close()  # a file response: its file stays open until then
    [row] = as_dicts(export(app, "household_survey")["household_survey"])
    assert (row["AttachmentsPresent"], row["AttachmentsExpected"]) == ("1", "1")
    stranger = admin_api.post(url(base, iid, "/attachments/other.jpg"), data=JPEG)
    assert stranger.status_code == 404 and stranger.get_json()["code"] == 404.1


def test_an_edit_is_a_new_version_in_the_exports(app, admin_api, supervisor_api, xforms,
                                                 base):
    iid, xml = household(xforms)
    assert admin_api.post(base, data=xml, headers=XML).status_code == 200
    new_iid, edited = household(xforms, deprecated_id=iid, extra={"g_addr/house_no": "77"})
    response = supervisor_api.put(url(base, iid), data=edited, headers=XML)
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert body["instanceId"] == iid and body["reviewState"] == "edited"
    assert body["currentVersion"]["instanceId"] == new_iid and body["updatedAt"]
    assert b"<house_no>77</house_no>" in admin_api.get(url(base, iid, ".xml")).data
    [row] = as_dicts(export(app, "household_survey")["household_survey"])
    assert (row["KEY"], row["g_addr-house_no"], row["Edits"]) == (iid, "77", "1")
    assert row["ReviewState"] == "edited"

    _, stale = household(xforms, deprecated_id=iid, extra={"g_addr/house_no": "78"})
    conflict = admin_api.put(url(base, iid), data=stale, headers=XML)
    assert conflict.status_code == 409 and conflict.get_json()["code"] == 409.9
    _, plain = household(xforms)
    no_deprecation = admin_api.put(url(base, iid), data=plain, headers=XML)
    assert no_deprecation.status_code == 400 and no_deprecation.get_json()["code"] == 400.19
    assert count(app, SubmissionVersion) == 2


def test_review_state_shows_in_the_list_and_on_the_web_review_page(app, admin_api,
                                                                    supervisor_api, xforms,
                                                                    base):
    iid, xml = household(xforms)
    assert admin_api.post(base, data=xml, headers=XML).status_code == 200
    reviewed = supervisor_api.patch(url(base, iid), json={"reviewState": "approved"})
    assert reviewed.status_code == 200 and reviewed.get_json()["reviewState"] == "approved"
    assert [s["reviewState"] for s in admin_api.get(base).get_json()] == ["approved"]
    with app.extensions["db"].session() as db:
        sid = db.scalar(select(Submission.id).where(Submission.instance_id == iid))
        assert db.scalar(select(Submission.review_state).where(Submission.id == sid)) == \
            "approved"
        assert db.scalar(select(ReviewComment.review_state)
                         .where(ReviewComment.submission_id == sid)) == "approved"
        assert db.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.action == "submission.review", AuditEntry.target == str(sid))) == 1
    web = Browser(app)
    assert web.login("sup1").status_code == 302
    assert "Đã duyệt" in web.get(f"/submissions/{sid}").get_data(as_text=True)
    assert "Đã duyệt" in web.get("/submissions?state=approved").get_data(as_text=True)

    for bad in ({"reviewState": "bogus"}, {"reviewState": "edited"}, {"reviewState": 3}):
        refused = supervisor_api.patch(url(base, iid), json=bad)
        assert refused.status_code == 400 and refused.get_json()["code"] == 400.8, bad
    assert supervisor_api.patch(url(base, iid), json={}).get_json()["code"] == 400.2
    back = admin_api.patch(url(base, iid), json={"reviewState": None})
    assert back.get_json()["reviewState"] is None


def test_comments_are_the_review_thread(app, admin_api, supervisor_api, xforms, base):
    iid, xml = household(xforms)
    assert admin_api.post(base, data=xml, headers=XML).status_code == 200
    supervisor_api.patch(url(base, iid), json={"reviewState": "hasIssues"})  # no words
    posted = supervisor_api.post(url(base, iid, "/comments"), json={"body": "Thiếu số nhà."})
    assert posted.status_code == 200
    comment = posted.get_json()
    assert comment["body"] == "Thiếu số nhà." and comment["actorId"] == user_id(app, "sup1")
    assert admin_api.get(url(base, iid, "/comments")).get_json() == [comment]
    assert admin_api.get(base).get_json()[0]["reviewState"] == "hasIssues"
    for bad in ({"body": "  "}, {"body": "x" * 4001}, {}):
        assert admin_api.post(url(base, iid, "/comments"), json=bad).status_code == 400


def test_a_tdp02_submission_is_invisible_to_the_tdp01_leader(app, ward, admin_api,
                                                               supervisor_api, xforms, base):
    iid, xml = household(xforms, tdp="tdp02", extra={"g_end/house_photo": "house.jpg"})
    assert admin_api.post(base, data=xml, headers=XML).status_code == 200
    assert supervisor_api.get(base).get_json() == []
    for path in ("", ".xml", "/attachments", "/attachments/house.jpg", "/comments"):
        hidden = supervisor_api.get(url(base, iid, path))
        assert hidden.status_code == 404 and hidden.get_json()["code"] == 404.1, path
    assert supervisor_api.patch(url(base, iid),
                                json={"reviewState": "approved"}).status_code == 404
    assert supervisor_api.post(url(base, iid, "/comments"), json={"body": "x"}
                               ).status_code == 404
    assert supervisor_api.post(url(base, iid, "/attachments/house.jpg"),
                               data=JPEG).status_code == 404
    assert admin_api.get(url(base, iid)).get_json()["reviewState"] is None
    # nor may the leader write another tổ's data
    _, theirs = household(xforms, tdp="tdp02")
    refused = supervisor_api.post(base, data=theirs, headers=XML)
    assert refused.status_code == 403 and refused.get_json()["code"] == 403.1
    assert count(app, Submission) == 1
    # a leader of tdp02 sees it
    with app.extensions["db"].session(write=True) as db:
        accounts.create_user(db, "sup2", "supervisor", project_id=ward.project_id,
                             team="tdp02", password=PASSWORD)
        db.commit()
    sup2 = Api(app, login(app, "sup2"))
    assert [s["instanceId"] for s in sup2.get(base).get_json()] == [iid]
