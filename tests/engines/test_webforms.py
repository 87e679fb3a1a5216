"""The ODK Web Forms engine (@getodk/xforms-engine, in Node) fills every form the server serves,
downloaded through our formList and manifest with their entity lists; what it produces, sent as
Collect sends it, is what the server stores and exports, and what the next phone downloads in
households.csv."""

from __future__ import annotations

import os

from tests.engines.conftest import VOLUNTEER
from tests.engines.harness import (
    check_entity_row,
    check_round_trip,
    entity_rows,
    instance_values,
    repeat_paths,
    webforms_fill,
)

# A household with a 12-digit identity number (digit 4: a woman born before 2000; digits 5-6:
# the birth year), a teenager and a young adult (the age gates), a business and a photo.
SURVEY = {"tdp": "tdp01", "hh_mode": "new", "contact_result": "met", "consent": "yes",
          "head_birth_year": 1985, "head_sex": "female", "id_ok": "yes",
          "head_id": "001185012345", "n_members": 3, "g_members/members[2]/m_birth_year": 2012,
          "g_members/members[3]/m_birth_year": 2006, "hh_business": "yes"}


def _photo(tmp_path, name: str):
    path = tmp_path / name
    path.write_bytes(b"\xff\xd8\xff\xe0" + os.urandom(2000))
    return path


def test_every_served_form_is_filled_sent_stored_and_exported(webforms_engine, phone,
                                                              engine_server, tmp_path):
    served = [f["formID"] for f in phone.collect.form_list()]
    assert served == ["household_survey", "support_visit"], "a new form needs a scenario here"

    # 1. a new household: creates an entity that the next download of households.csv lists
    survey_form = phone.download("household_survey")
    survey = webforms_fill(survey_form, tmp_path, seed=11, answers=SURVEY,
                           uploads={"house_photo": _photo(tmp_path, "house-wf-11.jpg")},
                           username=VOLUNTEER)
    assert set(survey.attachments) == {"house-wf-11.jpg"}
    phone.send(survey.xml, survey.attachments)
    values = check_round_trip(engine_server, survey_form, survey, tmp_path / "export1")
    entity_id = values["entity_id"]

    # 2. a support visit to it, picked from households.csv (its tổ, its members.csv)
    visit_form = phone.download("support_visit")
    listed = entity_rows(visit_form.media["households.csv"])
    check_entity_row(listed[entity_id], survey_form, values, version=1)
    visit = webforms_fill(visit_form, tmp_path, seed=12, answers={"hh": entity_id},
                          repeats={"g_svc/svc": 2}, username=VOLUNTEER)
    visit_values = instance_values(visit.xml, repeat_paths(visit_form.xml))
    assert sum(k.endswith("/svc_code") for k in visit_values) == 2
    phone.send(visit.xml, visit.attachments)
    check_round_trip(engine_server, visit_form, visit, tmp_path / "export2")
    updated = entity_rows(phone.download("support_visit").media["households.csv"])[entity_id]
    check_entity_row(updated, visit_form, visit_values, version=2)
    check_entity_row(updated, survey_form, values, version=2)  # the rest is unchanged
    assert _entity_attrs(visit.xml)["baseVersion"] == "1"

    # 3. a re-survey of the listed household: the form prefills it from households.csv
    resurvey_form = phone.download("household_survey")
    resurvey = webforms_fill(resurvey_form, tmp_path, seed=13,
                             answers={"tdp": "tdp01", "hh_mode": "existing",
                                      "hh_existing": entity_id, "contact_result": "met",
                                      "consent": "yes", "id_ok": "no"},
                             username=VOLUNTEER)
    again = instance_values(resurvey.xml)
    assert again["g_head/head_name"] == values["g_head/head_name"]  # prefilled, kept
    assert again["g_addr/house_no"] == values["g_addr/house_no"]
    assert _entity_attrs(resurvey.xml)["baseVersion"] == "2"
    phone.send(resurvey.xml, resurvey.attachments)
    resurvey_values = check_round_trip(engine_server, resurvey_form, resurvey,
                                       tmp_path / "export3")
    final = entity_rows(phone.download("support_visit").media["households.csv"])[entity_id]
    check_entity_row(final, resurvey_form, resurvey_values, version=3)


def test_an_edit_is_stored_as_the_new_version_and_exported_in_place(webforms_engine, phone,
                                                                    engine_server, tmp_path):
    form = phone.download("household_survey")
    first = webforms_fill(form, tmp_path, seed=21, answers=SURVEY,
                          uploads={"house_photo": _photo(tmp_path, "house-wf-21.jpg")},
                          username=VOLUNTEER)
    phone.send(first.xml, first.attachments)

    # The phone edits its own copy: one member more, other Internet access, a note; same photo
    edit = webforms_fill(form, tmp_path, seed=22, edit=first, username=VOLUNTEER,
                         answers={"n_members": 4, "g_members/members[4]/m_birth_year": 1958,
                                  "hh_internet": "fixed mobile", "notes": "Đã sửa: thêm ông"})
    edited = instance_values(edit.xml, repeat_paths(form.xml))
    assert edited["meta/deprecatedID"] == first.instance_id != edit.instance_id
    assert edited["g_members/members[4]/m_birth_year"] == "1958"
    assert edited["g_hh/hh_internet"] == "fixed mobile"
    phone.send(edit.xml, edit.attachments)
    check_round_trip(engine_server, form, edit, tmp_path / "export", files=first.attachments,
                     key=first.instance_id, edits=1)
    previous = engine_server.stored(first.instance_id)
    assert not previous.current
    assert engine_server.stored(edit.instance_id).deprecated_id == first.instance_id


def _entity_attrs(xml: bytes) -> dict[str, str]:
    from lxml import etree

    root = etree.fromstring(xml)
    entity = next(el for el in root.iter() if etree.QName(el).localname == "entity")
    return dict(entity.attrib)
