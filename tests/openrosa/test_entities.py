"""Households as an ODK entity list: created and updated by submissions, served per user,
checked by the integrity endpoint (domain §5, openrosa.md §7)."""

from __future__ import annotations

import csv
import io
import uuid

from server.db.models import Entity, EntityProblem, EntityVersion, SubmissionVersion
from server.domain import accounts
from tests.openrosa.conftest import rows
from tests.support import instances
from tests.support.collect import Collect, FlaskTransport


def survey(xforms, *, entity_id=None, mode="new", tdp="tdp01", head="Nguyễn Văn Hùng",
           label=None, base_version="", consent="yes", extra=None, **kw) -> tuple[str, bytes]:
    entity_id = entity_id or str(uuid.uuid4())
    values = {"g_intro/tdp": tdp, "g_intro/hh_mode": mode, "g_intro/contact_result": "met",
              "g_intro/consent": consent, "g_addr/street": "st01", "g_addr/house_no": "12",
              "g_head/head_name": head if consent == "yes" else "",
              "g_head/head_birth_year": "1971" if consent == "yes" else "",
              "survey_date": "2026-11-20", "entity_id": entity_id,
              "hh_label": label if label is not None else f"{head} – Đường Bình Thuận, số 12",
              **(extra or {})}
    if mode == "existing":
        values["g_intro/hh_existing"] = entity_id
    attrs = {"id": entity_id, "create": "1" if mode == "new" else "0",
             "update": "1" if mode == "existing" else "0", "baseVersion": base_version,
             "label": values["hh_label"]}
    return entity_id, instances.build(xforms["household_survey"], values, entity=attrs, **kw)


def households_csv(collect) -> list[dict]:
    entry = next(f for f in collect.form_list() if f["formID"] == "support_visit")
    media = next(m for m in collect.manifest(entry) if m["filename"] == "households.csv")
    body = collect.download_media(media).body
    assert not body.startswith(b"\xef\xbb\xbf")
    return list(csv.DictReader(io.StringIO(body.decode("utf-8"))))


def manifest_hash(collect, filename="households.csv"):
    entry = next(f for f in collect.form_list() if f["formID"] == "support_visit")
    return next(m for m in collect.manifest(entry) if m["filename"] == filename)["hash"]


def test_created_household_is_in_the_next_list(app, collect, xforms):
    before = manifest_hash(collect)
    entity_id, xml = survey(xforms)
    assert collect.submit(xml)[0].status == 201
    assert manifest_hash(collect) != before
    [row] = households_csv(collect)
    assert row["name"] == entity_id and row["__version"] == "1"
    assert row["label"] == "Nguyễn Văn Hùng – Đường Bình Thuận, số 12"
    assert row["tdp"] == "tdp01" and row["head_name"] == "Nguyễn Văn Hùng"
    assert row["survey_date"] == "2026-11-20"
    [version] = rows(app, EntityVersion)
    assert version.version == 1 and version.source == "submission"


def test_update_merges_properties_keeps_blank_label_and_counts_versions(app, collect, xforms):
    entity_id, xml = survey(xforms)
    collect.submit(xml)
    visit = instances.build(xforms["support_visit"], {
        "g_hh/tdp": "tdp01", "g_hh/hh": entity_id, "g_close/update_status": "yes",
        "e_needs_followup": "yes", "e_followup_date": "2026-12-01T00:00:00.000+07:00",
        "e_last_visit": "2026-11-21", "e_last_visitor": "vol1"},
        entity={"id": entity_id, "update": "1", "baseVersion": "1"})
    assert collect.submit(visit)[0].status == 201
    [row] = households_csv(collect)
    assert row["__version"] == "2"
    assert row["label"].startswith("Nguyễn Văn Hùng")  # the visit sends no label
    assert row["head_name"] == "Nguyễn Văn Hùng"  # not sent by the visit: kept
    assert row["needs_followup"] == "yes"
    assert row["followup_date"] == "2026-12-01"  # Collect's long date → local date
    assert [v.version for v in rows(app, EntityVersion)] == [1, 2]


def test_stale_base_version_is_applied_and_flagged(app, collect, xforms):
    entity_id, xml = survey(xforms)
    collect.submit(xml)
    for head in ("Nguyễn Văn Hưng", "Nguyễn Văn Hừng"):  # two phones, both from version 1
        _, update = survey(xforms, entity_id=entity_id, mode="existing", head=head,
                           base_version="1")
        assert collect.submit(update)[0].status == 201
    [entity] = rows(app, Entity)
    assert entity.version == 3 and entity.properties["head_name"] == "Nguyễn Văn Hừng"
    assert entity.conflict == "hard"
    assert [v.conflict for v in rows(app, EntityVersion)] == [None, None, "hard"]


def test_refusal_on_resurvey_withdraws_personal_data(app, collect, xforms):
    entity_id, xml = survey(xforms, extra={"g_head/phone": "0912345678",
                                           "g_head/phone_tail": "678"})
    collect.submit(xml)
    _, refusal = survey(xforms, entity_id=entity_id, mode="existing", consent="no",
                        label="Đường Bình Thuận, số 12", base_version="1")
    assert collect.submit(refusal)[0].status == 201
    [row] = households_csv(collect)
    assert row["consent"] == "no" and row["head_name"] == "" and row["phone_tail"] == ""
    assert row["label"] == "Đường Bình Thuận, số 12"


def test_entity_problems_never_lose_the_submission(app, collect, xforms):
    _, bad = survey(xforms, entity_id="not-a-uuid")
    assert collect.submit(bad)[0].status == 201
    _, unknown = survey(xforms, entity_id=str(uuid.uuid4()), mode="existing")
    assert collect.submit(unknown)[0].status == 201
    _, no_label = survey(xforms, label="")
    assert collect.submit(no_label)[0].status == 201
    assert len(rows(app, SubmissionVersion)) == 3
    assert rows(app, Entity) == []
    assert sorted(p.kind for p in rows(app, EntityProblem)) == [
        "invalid_id", "missing_label", "unknown_entity"]


def test_duplicate_create_is_a_problem_not_an_error(app, collect, xforms):
    entity_id, xml = survey(xforms)
    collect.submit(xml)
    _, again = survey(xforms, entity_id=entity_id)  # another submission, same new id
    assert collect.submit(again)[0].status == 201
    assert [p.kind for p in rows(app, EntityProblem)] == ["duplicate_create"]
    assert rows(app, Entity)[0].version == 1


def test_resend_and_edit_do_not_touch_the_entity(app, collect, xforms):
    entity_id, xml = survey(xforms)
    collect.submit(xml)
    collect.submit(xml)
    iid = rows(app, SubmissionVersion)[0].instance_id
    _, edit = survey(xforms, entity_id=entity_id, head="Nguyễn Văn Hưng", deprecated_id=iid)
    assert collect.submit(edit)[0].status == 201
    [entity] = rows(app, Entity)
    assert entity.version == 1 and entity.properties["head_name"] == "Nguyễn Văn Hùng"


def test_each_volunteer_gets_its_own_tdp(app, ward, collect, xforms):
    in_01, xml = survey(xforms, tdp="tdp01")
    collect.submit(xml)
    in_02, xml = survey(xforms, tdp="tdp02")
    collect.submit(xml)
    assert [r["name"] for r in households_csv(collect)] == [in_01]
    session = app.extensions["db"].session(write=True)
    ward_vol = accounts.create_user(session, "wardvol", "volunteer", project_id=1,
                                    team="ward").user
    token = accounts.collect_token(session, ward_vol, app.config["SECRET_KEY"])
    session.commit()
    session.close()
    ward_collect = Collect(f"http://localhost/v1/key/{token}/projects/1", FlaskTransport(app))
    assert sorted(r["name"] for r in households_csv(ward_collect)) == sorted([in_01, in_02])
    assert manifest_hash(ward_collect) != manifest_hash(collect)


def test_integrity_endpoint(app, collect, xforms):
    live, xml = survey(xforms)
    collect.submit(xml)
    gone, xml = survey(xforms, tdp="tdp02")
    collect.submit(xml)
    session = app.extensions["db"].session(write=True)
    session.get(Entity, gone).canonical_id = live  # merged away
    session.commit()
    session.close()
    entry = next(f for f in collect.form_list() if f["formID"] == "support_visit")
    media = next(m for m in collect.manifest(entry) if m["filename"] == "households.csv")
    unknown = str(uuid.uuid4())
    states = collect.integrity(media["integrityUrl"], [gone, live, unknown])
    assert states == {gone: True, live: False}  # unknown ids are left out
    response = collect.last_response
    assert "text/xml" in response.headers.get("Content-Type")
    assert b"<deleted>true</deleted>" in response.body
