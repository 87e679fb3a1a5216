"""The OData feed of a form's submissions (`…/forms/<id>.svc`), as Power BI, ruODK and pyodk's
`submissions.get_table` read it: service document, $metadata, the Submissions and repeat
tables with their query options, limited to a team leader's tổ as the raw export is."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime
from urllib.parse import quote, urlsplit

import pytest
from lxml import etree
from sqlalchemy import update

from server.db.models import Submission
from server.domain import accounts, review
from tests.central.conftest import Api, login
from tests.exports.test_raw import FORM_MD, FORM_V2_MD, as_dicts, export, send
from tests.openrosa.conftest import publish, xform_from_md
from tests.openrosa.test_entities import survey
from tests.support.factories import PASSWORD

JPEG = b"\xff\xd8\xff\xe0 a house photo"
EDMX = {"edmx": "http://docs.oasis-open.org/odata/ns/edmx",
        "edm": "http://docs.oasis-open.org/odata/ns/edm"}
RAW_TAIL = {"SubmissionDate", "KEY", "SubmitterID", "SubmitterName", "AttachmentsPresent",
            "AttachmentsExpected", "Status", "ReviewState", "DeviceID", "Edits", "FormVersion"}


@pytest.fixture
def svc(ward):
    return f"/v1/projects/{ward.project_id}/forms/household_survey.svc"


def household(collect, xforms, head, *, tdp="tdp01", members=None, attachments=None,
              iid=None, **kw) -> str:
    """A household survey sent from Collect; returns its instanceID."""
    iid = iid or f"uuid:{uuid.uuid4()}"
    members = members if members is not None else [
        {"m_name_eff": head, "m_birth_year_eff": "1971", "m_sex_eff": "male"}]
    _eid, xml = survey(xforms, head=head, tdp=tdp, instance_id=iid,
                       repeats={"g_members/members": members}, **kw)
    [response] = collect.submit(xml, attachments)
    assert response.status == 201, response.text
    return iid


@pytest.fixture
def surveys(app, collect, xforms):
    """Three households of tdp01 (a photo, a geopoint and two members in the first; the
    second edited) and one of tdp02, sent in this order."""
    first = household(
        collect, xforms, "Nguyễn Văn Hùng", attachments={"house.jpg": JPEG},
        members=[{"m_name_eff": "Nguyễn Văn Hùng", "m_birth_year_eff": "1971"},
                 {"m_name_eff": "Trần Thị Mai", "m_birth_year_eff": "1975"}],
        extra={"g_end/location": "10.7626 106.6601 4.5 5.25", "g_end/house_photo": "house.jpg",
               "g_head/phone": "0912345678", "g_members/n_members": "2"})
    second = household(collect, xforms, "Phạm Thị Mận", extra={"g_addr/house_no": "9"})
    _eid, edit = survey(xforms, head="Phạm Thị Mận", instance_id=f"uuid:{uuid.uuid4()}",
                        deprecated_id=second, extra={"g_addr/house_no": "11"},
                        repeats={"g_members/members": [{"m_name_eff": "Phạm Thị Mận"}]})
    assert collect.submit(edit)[0].status == 201
    third = household(collect, xforms, "Lý Văn Tâm")
    other = household(collect, xforms, "Lê Thị Lan", tdp="tdp02")
    return {"first": first, "second": second, "third": third, "other": other}


def get(api, path, **query):
    response = api.get(path, query_string=query or None)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


GEO_PARTS = ("Latitude", "Longitude", "Altitude", "Accuracy")


def csv_cells(row: dict, prefix: str = "") -> dict[str, str]:
    """An OData row's fields as the raw CSV export writes them (group paths joined by -)."""
    cells = {}
    for name, value in row.items():
        header = f"{prefix}{name}"
        if name.startswith("__") or "@odata" in name or isinstance(value, list):
            continue
        if value is None and name == "location":  # the form's geopoint, unanswered
            cells.update({f"{header}-{part}": "" for part in GEO_PARTS})
        elif isinstance(value, dict) and value.get("type") == "Point":
            lon, lat, alt = value["coordinates"]
            parts = (lat, lon, alt, value["properties"]["accuracy"])
            cells.update({f"{header}-{part}": str(v)
                          for part, v in zip(GEO_PARTS, parts, strict=True)})
        elif isinstance(value, dict):
            cells.update(csv_cells(value, f"{header}-"))
        else:
            cells[header] = "" if value is None else str(value)
    return cells


def set_review(app, iid: str, state: str) -> None:
    with app.extensions["db"].session(write=True) as db:
        sub = db.query(Submission).filter_by(instance_id=iid).one()
        review.record_review(db, sub, accounts.get_user(db, "admin"), state)
        db.commit()


def set_received(app, iid: str, moment: datetime) -> None:
    with app.extensions["db"].session(write=True) as db:
        db.execute(update(Submission).where(Submission.instance_id == iid)
                   .values(created_at=moment))
        db.commit()


# --- service document and $metadata --------------------------------------------------------------


def test_service_document_and_metadata_name_the_repeat_table(admin_api, svc, surveys):
    service = admin_api.get(svc)
    assert service.status_code == 200 and service.mimetype == "application/json"
    body = service.get_json()
    assert body["@odata.context"] == f"http://localhost{svc}/$metadata"
    assert body["value"] == [
        {"name": "Submissions", "kind": "EntitySet", "url": "Submissions"},
        {"name": "Submissions.g_members.members", "kind": "EntitySet",
         "url": "Submissions.g_members.members"}]

    response = admin_api.get(f"{svc}/$metadata")
    assert response.status_code == 200 and response.mimetype == "application/xml"
    doc = etree.fromstring(response.data)
    entities = {e.get("Name"): e for e in doc.iterfind(".//edm:EntityType", EDMX)}
    assert list(entities) == ["Submissions", "Submissions.g_members.members"]
    base = "org.opendatakit.user.household_survey"
    members = entities["Submissions.g_members.members"]
    assert [p.get("Name") for p in members.iterfind("edm:Property", EDMX)][:3] == [
        "__id", "__Submissions-id", "m_pos"]
    [nav] = doc.iterfind(".//edm:ComplexType[@Name='g_members']/edm:NavigationProperty", EDMX)
    assert (nav.get("Name"), nav.get("Type")) == (
        "members", f"Collection({base}.Submissions.g_members.members)")
    types = {(p.getparent().get("Name"), p.get("Name")): p.get("Type")
             for p in doc.iterfind(".//edm:Property", EDMX)}
    assert types["g_head", "head_birth_year"] == "Edm.Int64"
    assert types["g_end", "location"] == "Edm.GeographyPoint"
    assert types["Submissions", "__system"] == "org.opendatakit.submission.metadata"
    assert types["Submissions", "today"] == "Edm.Date"
    [container] = doc.iterfind(".//edm:EntityContainer", EDMX)
    assert container.get("Name") == "household_survey"
    assert [s.get("EntityType") for s in container] == [
        f"{base}.Submissions", f"{base}.Submissions.g_members.members"]


def test_unknown_forms_tables_and_projects_are_404_json(app, admin_api, supervisor_api, svc,
                                                        surveys):
    for path in (f"{svc}/Nope", f"{svc}/Submissions.g_members", f"{svc}/Submissions.nope",
                 f"{svc}/Submissions('uuid:nope')", "/v1/projects/1/forms/nope.svc",
                 "/v1/projects/99/forms/household_survey.svc/Submissions"):
        response = admin_api.get(path)
        assert response.status_code == 404, path
        assert response.get_json()["code"] == 404.1
    with app.extensions["db"].session(write=True) as db:
        other = accounts.create_project(db, "Phường khác").id
        db.commit()
    response = supervisor_api.get(f"/v1/projects/{other}/forms/household_survey.svc")
    assert response.status_code == 404


# --- rows ----------------------------------------------------------------------------------------


def test_rows_carry_the_values_of_the_raw_export(app, admin_api, svc, surveys):
    tables = export(app, "household_survey")
    odata = {r["__id"]: r for r in get(admin_api, f"{svc}/Submissions")["value"]}
    raw_rows = as_dicts(tables["household_survey"])
    assert len(raw_rows) == len(odata) == 4
    for raw_row in raw_rows:
        row = odata[raw_row["KEY"]]
        fields = {k: v for k, v in raw_row.items() if k not in RAW_TAIL}
        assert csv_cells(row) == fields
        system = row["__system"]
        assert system["submissionDate"] == raw_row["SubmissionDate"]
        assert (system["submitterId"], system["submitterName"], system["deviceId"]) == (
            raw_row["SubmitterID"], raw_row["SubmitterName"], raw_row["DeviceID"])
        assert (str(system["attachmentsPresent"]), str(system["attachmentsExpected"]),
                str(system["edits"]), system["formVersion"]) == (
            raw_row["AttachmentsPresent"], raw_row["AttachmentsExpected"], raw_row["Edits"],
            raw_row["FormVersion"])
        assert (system["reviewState"] or "") == raw_row["ReviewState"]

    members = get(admin_api, f"{svc}/Submissions.g_members.members")["value"]
    raw_members = as_dicts(tables["household_survey-members"])
    assert len(members) == len(raw_members) == 5
    for parent in odata:
        mine = [csv_cells(m) for m in members if m["__Submissions-id"] == parent]
        theirs = [{k: v for k, v in m.items() if k not in ("PARENT_KEY", "KEY")}
                  for m in raw_members if m["PARENT_KEY"] == parent]
        assert mine == theirs


def test_types_geopoint_attachment_and_an_edit(app, admin_api, svc, surveys):
    rows = {r["__id"]: r for r in get(admin_api, f"{svc}/Submissions")["value"]}
    first = rows[surveys["first"]]
    assert first["g_head"]["head_birth_year"] == 1971 and first["g_members"]["n_members"] == 2
    assert first["g_head"]["head_id"] is None and first["g_head"]["phone"] == "0912345678"
    assert first["g_end"]["location"] == {"type": "Point",
                                          "coordinates": [106.6601, 10.7626, 4.5],
                                          "properties": {"accuracy": 5.25}}
    assert first["g_end"]["house_photo"] == "house.jpg"
    assert first["__system"]["attachmentsPresent"] == 1
    assert first["__system"]["updatedAt"] is None

    edited = rows[surveys["second"]]
    assert edited["g_addr"]["house_no"] == "11"  # the current version only
    assert edited["meta"]["instanceID"] != surveys["second"]
    assert edited["__system"]["edits"] == 1 and edited["__system"]["reviewState"] == "edited"
    assert edited["__system"]["updatedAt"] > edited["__system"]["submissionDate"]

    wkt = {r["__id"]: r for r in get(admin_api, f"{svc}/Submissions", **{"$wkt": "true"})
           ["value"]}
    assert wkt[surveys["first"]]["g_end"]["location"] == "POINT (106.6601 10.7626 4.5)"


def test_submissions_come_newest_first_with_top_skip_and_count(admin_api, svc, surveys):
    newest_first = [surveys[k] for k in ("other", "third", "second", "first")]
    page = get(admin_api, f"{svc}/Submissions", **{"$top": "2", "$count": "True"})
    assert [r["__id"] for r in page["value"]] == newest_first[:2]
    assert page["@odata.count"] == 4
    link = urlsplit(page["@odata.nextLink"])
    assert link.path == f"{svc}/Submissions" and "%24skip=2" in link.query
    rest = get(admin_api, f"{link.path}?{link.query}")
    assert [r["__id"] for r in rest["value"]] == newest_first[2:]
    assert "@odata.nextLink" not in rest
    assert get(admin_api, f"{svc}/Submissions", **{"$skip": "4"})["value"] == []
    assert "@odata.count" not in get(admin_api, f"{svc}/Submissions", **{"$count": "false"})

    members = get(admin_api, f"{svc}/Submissions.g_members.members",
                  **{"$top": "2", "$skip": "1", "$count": "true"})
    assert members["@odata.count"] == 5 and len(members["value"]) == 2
    assert "%24skip=3" in members["@odata.nextLink"]
    bad = admin_api.get(f"{svc}/Submissions", query_string={"$top": "-1"})
    assert bad.status_code == 400 and bad.get_json()["code"] == 400.8


def test_repeat_rows_link_to_their_parent(admin_api, svc, surveys):
    first = surveys["first"]
    members = [m for m in get(admin_api, f"{svc}/Submissions.g_members.members")["value"]
               if m["__Submissions-id"] == first]
    assert [m["m_name_eff"] for m in members] == ["Nguyễn Văn Hùng", "Trần Thị Mai"]
    # Central's row ids: a hash of the row's place, so the same data joins the same way.
    second_place = f"Submissions#{first}%%g_members#%%members#1"
    assert members[1]["__id"] == hashlib.sha1(second_place.encode()).hexdigest()  # noqa: S324

    [row] = get(admin_api, f"{svc}/Submissions('{quote(first)}')")["value"]
    link = row["g_members"]["members@odata.navigationLink"]
    assert link == f"Submissions('{quote(first, safe='')}')/g_members/members"
    assert get(admin_api, f"{svc}/{link}")["value"] == members
    one = get(admin_api, f"{svc}/{link}('{members[1]['__id']}')", **{"$count": "true"})
    assert one["value"] == [members[1]] and one["@odata.count"] == 1

    [expanded] = [r for r in get(admin_api, f"{svc}/Submissions", **{"$expand": "*"})["value"]
                  if r["__id"] == first]
    inline = expanded["g_members"]["members"]
    assert inline == [{k: v for k, v in m.items() if k != "__Submissions-id"} for m in members]


def test_nested_repeats_older_versions_and_encrypted_submissions(app, admin_api, collect):
    publish(app, xform_from_md(FORM_MD))  # members repeat, toys repeat inside each member
    old = send(collect, {"g_info/hh_name": "Cũ"},
               [("An", "7", [("bóng", "a b")]), ("Bình", "5", [])])
    publish(app, xform_from_md(FORM_V2_MD))  # adds g_info/phone
    new = send(collect, {"g_info/hh_name": "Mới", "g_info/phone": "0901234567"},
               [("Chi", "3", [("xe", "c"), ("búp bê", "")])], version="2")
    sealed = f"uuid:{uuid.uuid4()}"
    envelope = (
        '<data xmlns="http://opendatakit.org/submissions" id="raw_form" version="2" '
        'encrypted="yes"><base64EncryptedKey>a2V5</base64EncryptedKey>'
        '<meta xmlns="http://openrosa.org/xforms"><instanceID>' + sealed + '</instanceID>'
        '</meta><encryptedXmlFile>submission.xml.enc</encryptedXmlFile></data>').encode()
    [response] = collect.submit(envelope, {"submission.xml.enc": b"\x01cipher"},
                                xml_filename="submission.xml")
    assert response.status == 201
    svc = "/v1/projects/1/forms/raw_form.svc"
    assert [t["name"] for t in get(admin_api, svc)["value"]] == [
        "Submissions", "Submissions.g_members.members", "Submissions.g_members.members.toys"]

    rows = {r["__id"]: r for r in get(admin_api, f"{svc}/Submissions")["value"]}
    assert rows[old]["g_info"]["phone"] is None and rows[old]["__system"]["formVersion"] == "1"
    assert rows[new]["g_info"]["phone"] == "0901234567"
    assert set(rows[sealed]) == {"__id", "__system"}
    assert rows[sealed]["__system"]["status"] == "notDecrypted"

    members = get(admin_api, f"{svc}/Submissions.g_members.members")["value"]
    assert [(m["m_name"], m["g_m"]["m_age"]) for m in members] == [
        ("Chi", 3), ("An", 7), ("Bình", 5)]  # newest submission first, then form order
    toys = get(admin_api, f"{svc}/Submissions.g_members.members.toys")["value"]
    assert [t["toy"] for t in toys] == ["xe", "búp bê", "bóng"]
    chi = members[0]
    assert [t["__Submissions-g_members-members-id"] for t in toys[:2]] == [chi["__id"]] * 2
    link = chi["toys@odata.navigationLink"]
    assert link == (f"Submissions('{quote(new, safe='')}')/g_members/members('{chi['__id']}')"
                    "/toys")
    assert get(admin_api, f"{svc}/{link}")["value"] == toys[:2]
    expanded = get(admin_api, f"{svc}/Submissions.g_members.members", **{"$expand": "*"})
    assert [t["toy"] for t in expanded["value"][0]["toys"]] == ["xe", "búp bê"]


# --- $filter and $select -------------------------------------------------------------------------


def test_filter_by_submission_date_review_state_and_submitter(app, admin_api, svc, surveys):
    set_received(app, surveys["third"], datetime(2025, 12, 31, 16, 59, tzinfo=UTC))
    set_review(app, surveys["first"], "approved")

    def ids(expression):
        return {r["__id"] for r in get(admin_api, f"{svc}/Submissions",
                                       **{"$filter": expression})["value"]}

    assert ids("__system/submissionDate lt 2026-01-01") == {surveys["third"]}
    assert ids("__system/submissionDate ge 2025-12-31T17:00:00.000Z") == {
        surveys["first"], surveys["second"], surveys["other"]}
    assert ids("__system/reviewState eq 'approved'") == {surveys["first"]}
    assert ids("__system/reviewState eq 'edited'") == {surveys["second"]}
    assert ids("__system/reviewState eq null") == {surveys["third"], surveys["other"]}
    assert ids("__system/updatedAt ne null") == {surveys["first"], surveys["second"]}
    assert ids("(__system/reviewState eq null or __system/reviewState eq 'approved') and "
               "not (__system/submissionDate lt 2026-01-01)") == {
        surveys["first"], surveys["other"]}
    vol1 = get(admin_api, f"{svc}/Submissions", **{"$top": "1"})["value"][0]["__system"]
    assert ids(f"__system/submitterId eq {vol1['submitterId']}") == set(surveys.values())
    assert ids("__system/submitterId eq 999") == set()

    members = get(admin_api, f"{svc}/Submissions.g_members.members", **{
        "$filter": "$root/Submissions/__system/reviewState eq 'approved'"})["value"]
    assert {m["__Submissions-id"] for m in members} == {surveys["first"]}
    assert get(admin_api, f"{svc}/Submissions",
               **{"$filter": "__system/reviewState eq 'rejected'", "$count": "true"}) == {
        "@odata.context": f"http://localhost{svc}/$metadata#Submissions", "value": [],
        "@odata.count": 0}


@pytest.mark.parametrize(("query", "status", "code"), [
    ({"$filter": "g_intro/tdp eq 'tdp01'"}, 501, 501.5),
    ({"$filter": "year(__system/submissionDate) eq 2026"}, 501, 501.4),
    ({"$filter": "__system/submissionDate lt"}, 400, 400.18),
    ({"$filter": "__system/submissionDate gt 'yesterday'"}, 400, 400.18),
    ({"$orderby": "__system/submissionDate desc"}, 501, 501.1),
    ({"$expand": "g_members"}, 501, 501.6),
    ({"$expand": "*", "$select": "__id"}, 501, 501.11),
    ({"$select": "nope"}, 400, 400.23),
    ({"$select": "g_members/members/m_name"}, 400, 400.24),
    ({"$count": "maybe"}, 400, 400.8),
])
def test_what_the_feed_does_not_support_is_a_clear_json_error(admin_api, svc, surveys, query,
                                                              status, code):
    response = admin_api.get(f"{svc}/Submissions", query_string=query)
    assert response.status_code == status
    assert response.get_json()["code"] == code and response.get_json()["message"]


def test_select_keeps_the_named_fields_and_system_members(admin_api, svc, surveys):
    rows = get(admin_api, f"{svc}/Submissions", **{
        "$select": "__id,g_head/head_name,g_end,__system/reviewState"})["value"]
    first = next(r for r in rows if r["__id"] == surveys["first"])
    assert first == {"__id": surveys["first"], "g_head": {"head_name": "Nguyễn Văn Hùng"},
                     "g_end": {"location": first["g_end"]["location"],
                               "house_photo": "house.jpg", "notes": None},
                     "__system": {"reviewState": None}}
    members = get(admin_api, f"{svc}/Submissions.g_members.members",
                  **{"$select": "m_name_eff"})["value"]
    assert set(members[0]) == {"__id", "m_name_eff"}
    parents = get(admin_api, f"{svc}/Submissions.g_members.members",
                  **{"$select": "m_name_eff,__Submissions-id"})["value"]
    assert set(parents[0]) == {"__id", "m_name_eff", "__Submissions-id"}


# --- who sees what -------------------------------------------------------------------------------


def test_a_team_leader_reads_only_its_tdp(app, supervisor_api, svc, surveys):
    tdp01 = {surveys[k] for k in ("first", "second", "third")}
    page = get(supervisor_api, f"{svc}/Submissions", **{"$count": "true"})
    assert {r["__id"] for r in page["value"]} == tdp01 and page["@odata.count"] == 3
    members = get(supervisor_api, f"{svc}/Submissions.g_members.members")["value"]
    assert {m["__Submissions-id"] for m in members} == tdp01
    assert "Lê Thị Lan" not in supervisor_api.get(f"{svc}/Submissions?$expand=*").get_data(
        as_text=True)
    hidden = supervisor_api.get(f"{svc}/Submissions('{quote(surveys['other'])}')")
    assert hidden.status_code == 404 and hidden.get_json()["code"] == 404.1
    first = next(r for r in page["value"] if r["__id"] == surveys["first"])
    assert first["g_head"]["phone"] == "0912345678"  # it phones its own households

    with app.extensions["db"].session(write=True) as db:
        accounts.create_user(db, "office", "supervisor", project_id=1, team="ward",
                             password=PASSWORD, display_name="Văn phòng")
        db.commit()
    office = Api(app, login(app, "office"))
    rows = {r["__id"]: r for r in get(office, f"{svc}/Submissions")["value"]}
    assert set(rows) == set(surveys.values())  # the whole ward, phone numbers masked
    assert rows[surveys["first"]]["g_head"]["phone"] == "09xx xxx 678"


def test_volunteers_and_strangers_get_401(app, svc, surveys):
    response = Api(app, None).get(f"{svc}/Submissions")
    assert response.status_code == 401 and response.get_json()["code"] == 401.2


# --- streaming -----------------------------------------------------------------------------------


def test_rows_are_read_in_batches_while_the_answer_is_written(admin_api, svc, surveys,
                                                              fetched_batches):
    fetched = fetched_batches
    response = admin_api.get(f"{svc}/Submissions")
    assert response.is_streamed
    assert len(response.get_json()["value"]) == 4
    assert max(fetched) <= 2 and sum(fetched) >= 4
