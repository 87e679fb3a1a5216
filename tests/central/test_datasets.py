"""Entity lists and entities through Central's API, and their OData feed: what pyodk's
`entity_lists`, `entities` and `get_table` read and write, and what a volunteer's phone then
gets in households.csv."""

from __future__ import annotations

import uuid

import pytest

from server.db.models import AuditEntry, Entity, EntityProblem, EntityVersion
from server.domain import accounts, matching
from server.exports.facts import load_facts
from tests.central.conftest import Api, login
from tests.openrosa.conftest import rows
from tests.openrosa.test_entities import households_csv, survey
from tests.web.conftest import Browser

HH = "/v1/projects/{pid}/datasets/households"


@pytest.fixture
def add_household(collect, xforms):
    """A household survey sent from vol1's phone; returns the new household's entity id."""

    def add(head: str, *, tdp: str = "tdp01", house: str = "12", year: str = "1971") -> str:
        entity_id, xml = survey(xforms, head=head, tdp=tdp,
                                extra={"g_addr/house_no": house, "g_head/head_birth_year": year})
        assert collect.submit(xml)[0].status == 201
        return entity_id

    return add


def path(ward, tail: str = "") -> str:
    return HH.format(pid=ward.project_id) + tail


def integrity_url(collect) -> str:
    entry = next(f for f in collect.form_list() if f["formID"] == "support_visit")
    return next(m for m in collect.manifest(entry)
                if m["filename"] == "households.csv")["integrityUrl"]


def new_household(admin_api, ward, label="Hộ ông Ba – số 7", tdp="tdp01", **data):
    entity_id = str(uuid.uuid4())
    response = admin_api.post(path(ward, "/entities"), json={
        "uuid": entity_id, "label": label, "data": {"tdp": tdp, "house_no": "7", **data}})
    assert response.status_code == 200, response.get_data(as_text=True)
    return entity_id


def fingerprint(app):
    return (len(rows(app, Entity)), len(rows(app, EntityVersion)),
            sorted((e.id, e.version, e.label, e.deleted_at is None) for e in rows(app, Entity)))


# Lists -----------------------------------------------------------------------------------------


def test_the_households_list_is_declared_by_the_published_forms(app, ward, supervisor_api):
    listed = supervisor_api.get(f"/v1/projects/{ward.project_id}/datasets")
    assert listed.status_code == 200
    [households] = listed.get_json()
    assert households["name"] == "households" and households["approvalRequired"] is False
    detail = supervisor_api.get(path(ward)).get_json()
    assert detail["createdAt"] == households["createdAt"]  # the same on every request
    props = {p["name"]: p for p in detail["properties"]}
    assert {"tdp", "head_name", "survey_date", "needs_followup", "last_visit_date"} <= set(props)
    assert [f["xmlFormId"] for f in props["head_name"]["forms"]] == ["household_survey"]
    assert [f["xmlFormId"] for f in props["needs_followup"]["forms"]] == ["support_visit"]
    assert props["tdp"]["publishedAt"].endswith("Z")
    missing = supervisor_api.get(f"/v1/projects/{ward.project_id}/datasets/trees")
    assert missing.status_code == 404 and missing.get_json()["code"] == 404.1


def test_admins_create_lists_and_properties_with_central_rules(app, ward, admin_api,
                                                              supervisor_api):
    base = f"/v1/projects/{ward.project_id}/datasets"
    created = admin_api.post(base, json={"name": "trees", "approvalRequired": True})
    assert created.status_code == 200
    assert created.get_json()["name"] == "trees" and created.get_json()["approvalRequired"]
    assert [d["name"] for d in admin_api.get(base).get_json()] == ["households", "trees"]
    assert admin_api.post(base, json={"name": "trees"}).get_json()["code"] == 409.3
    assert admin_api.post(base, json={"name": "Trees"}).get_json()["code"] == 409.16
    for bad in ("__trees", "2trees", "cây xanh", "a/b", ""):
        assert admin_api.post(base, json={"name": bad}).status_code == 400, bad

    prop = admin_api.post(f"{base}/trees/properties", json={"name": "height"})
    assert prop.get_json() == {"success": True}
    again = admin_api.post(f"{base}/trees/properties", json={"name": "height"})
    assert again.status_code == 409 and again.get_json()["code"] == 409.3
    for bad in ("label", "name", "__x", "a.b", 7):
        assert admin_api.post(f"{base}/trees/properties", json={"name": bad}).status_code == 400
    # a property added to the form-declared list is there from now on
    assert admin_api.post(path(ward, "/properties"), json={"name": "note"}).status_code == 200
    names = [p["name"] for p in admin_api.get(path(ward)).get_json()["properties"]]
    assert names[-1] == "note" and "tdp" in names
    assert admin_api.post(path(ward, "/properties"), json={"name": "tdp"}).status_code == 409

    refused = supervisor_api.post(base, json={"name": "bushes"})
    assert refused.status_code == 403 and refused.get_json()["code"] == 403.1
    assert supervisor_api.post(path(ward, "/properties"),
                               json={"name": "x"}).status_code == 403
    assert [d["name"] for d in supervisor_api.get(base).get_json()] == ["households", "trees"]


# Entities --------------------------------------------------------------------------------------


def test_entities_are_listed_with_their_versions_and_scoped_to_the_team(
        app, ward, admin_api, supervisor_api, add_household):
    ours = add_household("Nguyễn Văn Hùng")
    theirs = add_household("Lê Thị Lan", tdp="tdp02")
    everyone = {e["uuid"]: e for e in admin_api.get(path(ward, "/entities")).get_json()}
    assert set(everyone) == {ours, theirs}
    entity = everyone[ours]
    current = entity["currentVersion"]
    with app.extensions["db"].session() as db:
        volunteer_id = accounts.get_user(db, "vol1").id
    assert entity["creatorId"] == volunteer_id == current["creatorId"]
    assert current["version"] == 1 and current["current"] is True
    assert current["data"]["head_name"] == "Nguyễn Văn Hùng" and current["data"]["tdp"] == "tdp01"
    assert entity["updatedAt"] is None and entity["deletedAt"] is None
    assert current["label"].startswith("Nguyễn Văn Hùng")

    # sup1 leads tdp01: the other tổ's household is neither listed nor readable
    assert [e["uuid"] for e in supervisor_api.get(path(ward, "/entities")).get_json()] == [ours]
    assert supervisor_api.get(path(ward, f"/entities/{ours}")).status_code == 200
    assert supervisor_api.get(path(ward, f"/entities/{theirs}")).status_code == 404
    with app.extensions["db"].session(write=True) as db:
        accounts.create_user(db, "office", "supervisor", project_id=ward.project_id,
                             team="ward", password="mật-khẩu-văn-phòng-1")
        db.commit()
    office = Api(app, login(app, "office", "mật-khẩu-văn-phòng-1"))
    assert len(office.get(path(ward, "/entities")).get_json()) == 2


def test_create_update_delete_reach_the_volunteers_households_csv(app, ward, admin_api,
                                                                   collect):
    entity_id = new_household(admin_api, ward, head_name="Trần Văn Ba")
    row = next(r for r in households_csv(collect) if r["name"] == entity_id)
    assert row["label"] == "Hộ ông Ba – số 7" and row["__version"] == "1"
    assert row["head_name"] == "Trần Văn Ba"
    [history] = rows(app, EntityVersion, EntityVersion.entity_id == entity_id)
    assert history.source == "server" and history.actor_id is not None

    url = path(ward, f"/entities/{entity_id}")
    updated = admin_api.patch(f"{url}?baseVersion=1",
                              json={"label": "Hộ bà Tư – số 7", "data": {"head_name": "Lò Thị Tư"}})
    assert updated.status_code == 200
    body = updated.get_json()
    assert body["currentVersion"]["version"] == 2 and body["currentVersion"]["baseVersion"] == 1
    assert body["currentVersion"]["data"]["house_no"] == "7"  # untouched properties stay
    row = next(r for r in households_csv(collect) if r["name"] == entity_id)
    assert (row["label"], row["head_name"], row["__version"]) == ("Hộ bà Tư – số 7",
                                                                   "Lò Thị Tư", "2")

    before = fingerprint(app)
    stale = admin_api.patch(f"{url}?baseVersion=1", json={"data": {"head_name": "X"}})
    assert stale.status_code == 409 and stale.get_json()["code"] == 409.15
    missing = admin_api.patch(url, json={"data": {"head_name": "X"}})
    assert missing.status_code == 400 and missing.get_json()["code"] == 400.2
    unknown = admin_api.patch(f"{url}?baseVersion=2", json={"data": {"colour": "xanh"}})
    assert unknown.status_code == 400 and unknown.get_json()["code"] == 400.28
    not_text = admin_api.patch(f"{url}?baseVersion=2", json={"data": {"house_no": 7}})
    assert not_text.status_code == 400
    assert fingerprint(app) == before

    forced = admin_api.patch(f"{url}?force=True", json={"data": {"phone_tail": "123"}})
    assert forced.get_json()["currentVersion"]["version"] == 3

    assert admin_api.delete(url).get_json() == {"success": True}
    assert entity_id not in [r["name"] for r in households_csv(collect)]
    assert collect.integrity(integrity_url(collect), [entity_id]) == {entity_id: True}
    assert admin_api.get(url).status_code == 404
    assert admin_api.get(path(ward, "/entities")).get_json() == []
    assert admin_api.patch(f"{url}?force=true", json={"label": "Y"}).status_code == 404
    entity = rows(app, Entity, Entity.id == entity_id)[0]  # kept, marked
    assert entity.deleted_at is not None and entity.version == 3
    assert rows(app, AuditEntry, AuditEntry.action == "entity.deleted")[0].target == entity_id
    reuse = admin_api.post(path(ward, "/entities"),
                           json={"uuid": entity_id, "label": "Z", "data": {}})
    assert reuse.status_code == 409 and reuse.get_json()["code"] == 409.19


def test_a_phone_update_of_a_deleted_household_is_kept_but_not_applied(app, ward, admin_api,
                                                                       collect, xforms):
    entity_id = new_household(admin_api, ward)
    assert admin_api.delete(path(ward, f"/entities/{entity_id}")).status_code == 200
    _eid, xml = survey(xforms, entity_id=entity_id, mode="existing", base_version="1")
    assert collect.submit(xml)[0].status == 201  # the submission itself is never lost
    [problem] = rows(app, EntityProblem, EntityProblem.entity_id == entity_id)
    assert problem.kind == "deleted_entity"
    entity = rows(app, Entity, Entity.id == entity_id)[0]
    assert entity.version == 1 and entity.deleted_at is not None


def test_bulk_create_is_all_or_nothing(app, ward, admin_api, collect):
    body = {"entities": [{"label": "Hộ A", "data": {"tdp": "tdp01", "house_no": "1"}},
                         {"label": "Hộ B", "data": {"tdp": "tdp01", "house_no": "2"}}],
            "source": {"name": "pyodk v1.3.0", "size": 2}}
    assert admin_api.post(path(ward, "/entities"), json=body).get_json() == {"success": True}
    assert sorted(r["label"] for r in households_csv(collect)) == ["Hộ A", "Hộ B"]

    before = fingerprint(app)
    for bad in (
        [{"label": "Hộ C", "data": {"tdp": "tdp01"}}, {"label": "Hộ D", "data": {"màu": "đỏ"}}],
        [{"label": "", "data": {}}],
        [{"label": "Hộ E", "data": {}, "uuid": "not-a-uuid"}],
        [{"label": "Hộ F", "data": {"tdp": None}}],
        [],
    ):
        response = admin_api.post(path(ward, "/entities"), json={"entities": bad})
        assert response.status_code == 400, bad
    assert fingerprint(app) == before


def test_supervisors_read_but_do_not_change_entities(app, ward, admin_api, supervisor_api):
    entity_id = new_household(admin_api, ward)
    before = fingerprint(app)
    url = path(ward, f"/entities/{entity_id}")
    assert supervisor_api.patch(f"{url}?force=true", json={"label": "X"}).status_code == 403
    assert supervisor_api.delete(url).status_code == 403
    assert supervisor_api.post(path(ward, "/entities"),
                               json={"uuid": str(uuid.uuid4()), "label": "X",
                                     "data": {"tdp": "tdp01"}}).status_code == 403
    assert fingerprint(app) == before


def test_a_merged_alias_is_no_entity_of_its_own(app, ward, admin_api, add_household):
    first = add_household("Phạm Thị Mận", house="9", year="1980")
    second = add_household("Phạm Thị Mẫn", house="9", year="1980")
    with app.extensions["db"].session(write=True) as db:
        matching.merge(db, first, second, accounts.get_user(db, "admin"),
                       app.extensions["matcher"])
        db.commit()
    assert [e["uuid"] for e in admin_api.get(path(ward, "/entities")).get_json()] == [first]
    assert admin_api.get(path(ward, f"/entities/{second}")).status_code == 404
    table = admin_api.get(path(ward, ".svc/Entities")).get_json()["value"]
    assert [r["__id"] for r in table] == [first]


def test_a_deleted_household_no_longer_counts_in_the_figures(app, ward, admin_api,
                                                            add_household):
    kept, deleted = add_household("Nguyễn Văn Hùng"), add_household("Lý Văn Tâm", house="21")
    assert admin_api.delete(path(ward, f"/entities/{deleted}")).status_code == 200
    with app.extensions["db"].session() as db:
        households = load_facts(db, ward.project_id).households
    assert kept in households and deleted not in households


# OData -----------------------------------------------------------------------------------------


def test_the_odata_feed_pages_counts_selects_and_filters(app, ward, admin_api,
                                                         supervisor_api):
    ids = [new_household(admin_api, ward, label=f"Hộ {n}", tdp="tdp01", street=f"st0{n}")
           for n in range(1, 4)]
    other = new_household(admin_api, ward, label="Hộ tổ 2", tdp="tdp02")
    feed = path(ward, ".svc/Entities")

    everything = admin_api.get(feed).get_json()
    assert [r["__id"] for r in everything["value"]] == [*ids, other]
    first = everything["value"][0]
    assert first["label"] == "Hộ 1" and first["street"] == "st01" and first["head_name"] is None
    assert first["__system"]["version"] == 1 and first["__system"]["updates"] == 0
    with app.extensions["db"].session() as db:
        admin = accounts.get_user(db, "admin")
    assert first["__system"]["creatorId"] == str(admin.id)
    assert first["__system"]["creatorName"] == admin.display_name
    assert everything["@odata.context"].endswith("/datasets/households.svc/$metadata#Entities")

    page = admin_api.get(feed, query_string={"$top": "2", "$count": "True"}).get_json()
    assert [r["__id"] for r in page["value"]] == ids[:2] and page["@odata.count"] == 4
    assert "%24skip=2" in page["@odata.nextLink"]
    rest = admin_api.get(page["@odata.nextLink"]).get_json()
    assert [r["__id"] for r in rest["value"]] == [ids[2], other] and "@odata.nextLink" not in rest

    chosen = admin_api.get(feed, query_string={"$select": "__id,label,__system/version"})
    assert chosen.get_json()["value"][0] == {"__id": ids[0], "label": "Hộ 1",
                                             "__system": {"version": 1}}

    admin_api.patch(path(ward, f"/entities/{ids[1]}?baseVersion=1"),
                    json={"data": {"street": "st09"}})
    since = admin_api.get(path(ward, f"/entities/{ids[1]}")).get_json()["updatedAt"]
    filters = {
        f"__system/updatedAt ge {since}": [ids[1]],
        "__system/updatedAt eq null": [ids[0], ids[2], other],
        "street eq 'st09' or label eq 'Hộ 3'": [ids[1], ids[2]],
        f"__system/createdAt le {since} and not (tdp eq 'tdp02')": ids,
        "__system/version gt 1": [ids[1]],
    }
    for expression, expected in filters.items():
        got = admin_api.get(feed, query_string={"$filter": expression})
        assert [r["__id"] for r in got.get_json()["value"]] == expected, expression

    team = supervisor_api.get(feed, query_string={"$count": "true"}).get_json()
    assert team["@odata.count"] == 3 and other not in [r["__id"] for r in team["value"]]

    for expression, code in (("year(__system/createdAt) eq 2026", 501.4),
                             ("__system/submitterId eq 5", 501.5),
                             ("label eq", 400.18), ("label eq 'x' and", 400.18),
                             ("__system/createdAt gt 'yesterday'", 400.18)):
        response = admin_api.get(feed, query_string={"$filter": expression})
        assert response.get_json()["code"] == code, expression
    assert admin_api.get(feed, query_string={"$top": "-1"}).status_code == 400
    assert admin_api.get(feed, query_string={"$select": "colour"}).status_code == 400


def test_the_odata_service_document_and_metadata(app, ward, supervisor_api):
    service = supervisor_api.get(path(ward, ".svc"))
    assert service.get_json()["value"] == [{"kind": "EntitySet", "name": "Entities",
                                            "url": "Entities"}]
    assert service.headers["OData-Version"] == "4.0"
    metadata = supervisor_api.get(path(ward, ".svc/$metadata"))
    assert metadata.status_code == 200 and metadata.content_type.startswith("application/xml")
    xml = metadata.get_data(as_text=True)
    assert '<EntityType Name="Entities">' in xml and '<Property Name="head_name"' in xml
    assert 'EntitySet Name="Entities" EntityType="org.opendatakit.user.households.Entities"' in xml


def test_a_deleted_household_leaves_the_register_page_and_takes_no_merge(
        app, ward, admin_api, add_household):
    """A new survey of the same family does not become an alias of a deleted household
    (which would hide it too), at ingest and in a full re-run; the households page drops it."""
    deleted = add_household("Phạm Thị Mận", house="9", year="1980")
    assert admin_api.delete(path(ward, f"/entities/{deleted}")).status_code == 200
    again = add_household("Phạm Thị Mận", house="9", year="1980")
    [row] = rows(app, Entity, Entity.id == again)
    assert row.canonical_id is None
    with app.extensions["db"].session(write=True) as db:
        matching.rerun(db, ward.project_id, app.extensions["matcher"])
        db.commit()
    [row] = rows(app, Entity, Entity.id == again)
    assert row.canonical_id is None
    browser = Browser(app)
    assert browser.login("admin").status_code == 302
    page = browser.get("/households").get_data(as_text=True)
    assert again[:8] in page or "Phạm Thị Mận" in page
    assert f"/households/{deleted}" not in page
