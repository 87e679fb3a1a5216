"""JavaRosa, the form engine inside ODK Collect (the copy in ODK_Validate.jar), fills the two ward
forms as downloaded from the server, entity lists included; its submissions and an edit, sent as
Collect sends them, are what the server stores and exports."""

from __future__ import annotations

from tests.engines.conftest import VOLUNTEER
from tests.engines.harness import (
    check_entity_row,
    check_round_trip,
    entity_rows,
    instance_values,
    javarosa_fill,
    repeat_paths,
)

# A man born in 1990 (digit 4 of the identity number: 0), with a child under the age gates.
SURVEY = {"tdp": "tdp01", "hh_mode": "new", "contact_result": "met", "consent": "yes",
          "head_birth_year": 1990, "head_sex": "male", "id_ok": "yes",
          "head_id": "036090001234", "n_members": 2, "g_members/members[2]/m_birth_year": 2016}


def test_survey_and_visit_filled_by_javarosa(javarosa_classes, phone, engine_server, tmp_path):
    survey_form = phone.download("household_survey")
    survey = javarosa_fill(javarosa_classes, survey_form, tmp_path / "jr", seed=31,
                           answers=SURVEY, username=VOLUNTEER)
    assert len(survey.attachments) == 1  # the house photo
    phone.send(survey.xml, survey.attachments)
    values = check_round_trip(engine_server, survey_form, survey, tmp_path / "export1")
    entity_id = values["entity_id"]

    visit_form = phone.download("support_visit")
    check_entity_row(entity_rows(visit_form.media["households.csv"])[entity_id], survey_form,
                     values, version=1)
    visit = javarosa_fill(javarosa_classes, visit_form, tmp_path / "jr", seed=32,
                          answers={"hh": entity_id}, repeats={"g_svc/svc": 3},
                          username=VOLUNTEER)
    visit_values = instance_values(visit.xml, repeat_paths(visit_form.xml))
    assert sum(k.endswith("/svc_code") for k in visit_values) == 3
    phone.send(visit.xml, visit.attachments)
    check_round_trip(engine_server, visit_form, visit, tmp_path / "export2")
    row = entity_rows(phone.download("support_visit").media["households.csv"])[entity_id]
    check_entity_row(row, visit_form, visit_values, version=2)
    check_entity_row(row, survey_form, values, version=2)


def test_edit_by_javarosa(javarosa_classes, phone, engine_server, tmp_path):
    form = phone.download("household_survey")
    first = javarosa_fill(javarosa_classes, form, tmp_path / "jr", seed=41, answers=SURVEY,
                          username=VOLUNTEER)
    phone.send(first.xml, first.attachments)
    edit = javarosa_fill(javarosa_classes, form, tmp_path / "jr", seed=42, edit=first,
                         answers={"n_members": 3, "g_members/members[3]/m_birth_year": 1960,
                                  "notes": "Sửa lại: thêm bà nội"},
                         username=VOLUNTEER)
    edited = instance_values(edit.xml, repeat_paths(form.xml))
    assert edited["meta/deprecatedID"] == first.instance_id != edit.instance_id
    assert edited["g_end/notes"] == "Sửa lại: thêm bà nội"
    assert edited["g_members/members[3]/m_birth_year"] == "1960"
    phone.send(edit.xml, edit.attachments)
    check_round_trip(engine_server, form, edit, tmp_path / "export", files=first.attachments,
                     key=first.instance_id, edits=1)
    assert not engine_server.stored(first.instance_id).current
