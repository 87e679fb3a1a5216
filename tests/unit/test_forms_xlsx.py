"""The two XLSForms in forms/: sheet shape, and the XForm they convert to with the ward lists."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from io import BytesIO
from pathlib import Path

import pytest
from openpyxl import load_workbook
from pyxform.xls2xform import convert

from server.domain.ward import WardConfig, apply_ward_lists, load_ward_config

REPO = Path(__file__).resolve().parents[2]
FORMS = REPO / "forms"
WARD_TOML = FORMS / "ward.toml"

XF = "http://www.w3.org/2002/xforms"
H = "http://www.w3.org/1999/xhtml"
ENT = "http://www.opendatakit.org/xforms/entities"
NS = {"xf": XF, "h": H, "entities": ENT}
VI = "Tiếng Việt (vi)"
EN = "English (en)"

SHEETS = {
    "household_survey": {
        "survey": [
            "type", "name", "label::Tiếng Việt (vi)", "label::English (en)",
            "hint::Tiếng Việt (vi)", "hint::English (en)", "required", "relevant", "constraint",
            "constraint_message::Tiếng Việt (vi)", "constraint_message::English (en)",
            "calculation", "choice_filter", "appearance", "default", "parameters",
            "repeat_count", "trigger", "save_to",
        ],
        "choices": [
            "list_name", "name", "label::Tiếng Việt (vi)", "label::English (en)", "tdp_list",
            "label_vi", "level",
        ],
        "settings": ["form_title", "form_id", "version", "default_language", "instance_name"],
        "entities": ["list_name", "label", "entity_id", "create_if", "update_if"],
    },
    "support_visit": {
        "survey": [
            "type", "name", "label::Tiếng Việt (vi)", "label::English (en)", "required",
            "relevant", "constraint", "constraint_message::Tiếng Việt (vi)",
            "constraint_message::English (en)", "calculation", "choice_filter", "appearance",
            "default", "parameters", "repeat_count", "save_to",
        ],
        "choices": ["list_name", "name", "label::Tiếng Việt (vi)", "label::English (en)", "level"],
        "settings": ["form_title", "form_id", "version", "default_language", "instance_name"],
        "entities": ["list_name", "label", "entity_id", "update_if"],
    },
}  # fmt: skip

FIELDS = {
    "household_survey": [
        "start", "end", "today", "deviceid", "username", "cur_year", "g_intro", "intro_note",
        "tdp", "hh_mode", "hh_existing", "contact_result", "absent_note", "consent", None,
        "g_addr", "street", "street_other", "alley", "house_no", "landmark", None, "g_head",
        "head_name", "head_birth_year", "head_sex", "phone", "phone_owner", "phone_tail",
        "id_ok", "head_id", None, "g_members", "n_members", "members", "m_pos", "m_head_note",
        "m_name", "m_rel", "m_birth_year", "m_sex", "m_name_eff", "m_birth_year_eff",
        "m_sex_eff", "m_age", "m_smartphone", "m_skills", "m_basic", "m_vneid", "m_dvc",
        "m_cashless", "m_digisig", "m_vssid", "m_ehealth", "m_bdhvs", "m_student",
        "m_student_trained", "m_needs", "m_capable", None, "hh_n_capable", "hh_capable", None,
        "g_hh", "hh_informed", "hh_channels", "hh_internet", "hh_pupils", "hh_school_app",
        "hh_business", "biz_registered", "biz_type", "biz_cashless", "biz_pay_methods",
        "biz_ocop", "biz_ocop_name", "biz_online", None, "g_help", "help_note",
        "assigned_helper", None, "g_end", "location", "house_photo", "notes", None,
        "street_text", "hh_label", "survey_date", "hh_new_id", "entity_id",
    ],
    "support_visit": [
        "start", "end", "today", "deviceid", "username", "volunteers", "g_hh", "tdp", "hh",
        "hh_label", "hh_helper", "hh_helper_label", "hh_prev_followup", "hh_info",
        "visit_date", "visit_mode", None, "g_svc", "svc", "svc_code", "services_other",
        "svc_name", "svc_level", "svc_members", "svc_member_other", "svc_outcome",
        "svc_members_done", "svc_reason", "svc_dossier", "svc_not_done", None, "services",
        "n_not_done", None, "g_close", "minutes", "followup_date", "satisfaction", "photo",
        "notes", "update_status", None, "e_needs_followup", "e_followup_date", "e_last_visit",
        "e_last_visitor",
    ],
}  # fmt: skip

CHOICE_LISTS = {
    "household_survey": {
        "tdp": 20, "hh_mode": 2, "contact": 2, "yes_no": 2, "yes_no_dk": 3, "sex": 2,
        "street": 9, "phone_owner": 3, "relation": 7, "skills": 6, "vneid": 4, "service": 15,
        "informed": 3, "channel": 9, "internet": 3, "biz_type": 6, "pay_method": 3,
        "online_channel": 6,
    },
    "support_visit": {
        "tdp": 20, "yes_no": 2, "service": 15, "visit_mode": 4, "outcome": 3, "fail_reason": 9,
        "satisfaction": 5,
    },
}  # fmt: skip

SAVE_TO = {
    "household_survey": {
        "tdp", "street", "street_other", "alley", "house_no", "landmark", "head_name",
        "head_birth_year", "phone_tail", "n_members", "consent", "capable", "helper",
        "business", "biz_cashless", "survey_date", "geometry",
    },
    "support_visit": {"needs_followup", "followup_date", "last_visit_date", "last_visitor"},
}  # fmt: skip

CSV_INSTANCES = {
    "household_survey": {
        "households": "jr://file-csv/households.csv",
        "volunteers": "jr://file-csv/volunteers.csv",
    },
    "support_visit": {
        "households": "jr://file-csv/households.csv",
        "members": "jr://file-csv/members.csv",
        "volunteers": "jr://file-csv/volunteers.csv",
    },
}

FORM_IDS = ["household_survey", "support_visit"]


def _xlsx(form_id: str) -> bytes:
    return (FORMS / f"{form_id}.xlsx").read_bytes()


def _sheet_rows(xlsx: bytes, sheet: str) -> list[tuple]:
    return list(load_workbook(BytesIO(xlsx))[sheet].iter_rows(values_only=True))


def _settings(xlsx: bytes) -> dict:
    header, row = _sheet_rows(xlsx, "settings")
    return dict(zip(header, row, strict=True))


@pytest.fixture(scope="module")
def ward() -> WardConfig:
    return load_ward_config(WARD_TOML)


@pytest.fixture(scope="module")
def xforms(ward: WardConfig) -> dict[str, str]:
    out = {}
    for form_id in FORM_IDS:
        result = convert(xlsform=BytesIO(apply_ward_lists(_xlsx(form_id), ward)), validate=False)
        assert result.warnings == [], (form_id, result.warnings)
        out[form_id] = result.xform
    return out


def _model(xform: str) -> ET.Element:
    root = ET.fromstring(xform.encode("utf-8"))
    model = root.find("h:head/xf:model", NS)
    assert model is not None
    return model


def _primary(model: ET.Element) -> ET.Element:
    first = model.find("xf:instance", NS)
    assert first is not None and "id" not in first.attrib
    return first[0]


def _choices_in_xform(model: ET.Element, list_name: str) -> list[dict[str, str]]:
    """The items of a static choice instance with their labels in both languages."""
    texts: dict[str, dict[str, str]] = {}
    for tr in model.findall("xf:itext/xf:translation", NS):
        lang = tr.get("lang")
        for text in tr.findall("xf:text", NS):
            value = text.find("xf:value", NS)
            texts.setdefault(text.get("id"), {})[lang] = "" if value is None else value.text or ""
    inst = model.find(f"xf:instance[@id='{list_name}']", NS)
    assert inst is not None, list_name
    items = []
    for item in inst.findall("xf:root/xf:item", NS):
        row = {child.tag.split("}")[1]: child.text or "" for child in item}
        labels = texts[row.pop("itextId")]
        row["vi"], row["en"] = labels[VI], labels[EN]
        items.append(row)
    return items


# --------------------------------------------------------------------------- workbook shape


@pytest.mark.parametrize("form_id", FORM_IDS)
def test_sheets_and_columns(form_id: str) -> None:
    wb = load_workbook(FORMS / f"{form_id}.xlsx")
    assert wb.sheetnames == list(SHEETS[form_id])
    for sheet, columns in SHEETS[form_id].items():
        ws = wb[sheet]
        assert [c.value for c in ws[1]] == columns, sheet
        assert ws.max_column == len(columns), sheet
        for row in ws.iter_rows():
            for cell in row:
                assert cell.value is None or isinstance(cell.value, str), cell.coordinate
                if isinstance(cell.value, str):
                    assert cell.value == cell.value.strip() and cell.value, cell.coordinate


@pytest.mark.parametrize("form_id", FORM_IDS)
def test_survey_fields_in_order(form_id: str) -> None:
    rows = _sheet_rows(_xlsx(form_id), "survey")
    assert [r[1] for r in rows[1:]] == FIELDS[form_id]


@pytest.mark.parametrize("form_id", FORM_IDS)
def test_choice_lists(form_id: str) -> None:
    rows = _sheet_rows(_xlsx(form_id), "choices")
    counts: dict[str, int] = {}
    for row in rows[1:]:
        counts[row[0]] = counts.get(row[0], 0) + 1
    assert counts == CHOICE_LISTS[form_id]
    assert list(counts) == list(CHOICE_LISTS[form_id])  # list order too


@pytest.mark.parametrize("form_id", FORM_IDS)
def test_settings_and_entities_sheets(form_id: str) -> None:
    settings = _settings(_xlsx(form_id))
    assert settings["form_id"] == form_id
    assert settings["version"] == "2026011501"  # text, so that pyxform reads it verbatim
    assert settings["default_language"] == VI
    header, row = _sheet_rows(_xlsx(form_id), "entities")
    entities = dict(zip(header, row, strict=True))
    assert entities["list_name"] == "households"
    if form_id == "household_survey":
        assert entities == {
            "list_name": "households",
            "label": "${hh_label}",
            "entity_id": "${entity_id}",
            "create_if": "${hh_mode} = 'new' and ${contact_result} = 'met'",
            "update_if": "${hh_mode} = 'existing' and ${contact_result} = 'met'",
        }
    else:
        assert entities == {
            "list_name": "households",
            "label": None,
            "entity_id": "${hh}",
            "update_if": "${update_status} = 'yes'",
        }


def test_name_checks_keep_the_nbsp_escape_as_text() -> None:
    for form_id, fields in (
        ("household_survey", {"head_name", "m_name"}),
        ("support_visit", {"svc_member_other"}),
    ):
        rows = _sheet_rows(_xlsx(form_id), "survey")
        header = rows[0]
        col = header.index("constraint")
        for row in rows[1:]:
            if row[1] in fields:
                assert "[^\\s\\u00a0][\\s\\u00a0]+[^\\s\\u00a0]" in row[col]
                assert "\u00a0" not in row[col]


# --------------------------------------------------------------------------- converted XForm


@pytest.mark.parametrize("form_id", FORM_IDS)
def test_xform_root_and_version(form_id: str, xforms: dict[str, str]) -> None:
    model = _model(xforms[form_id])
    data = _primary(model)
    assert data.tag == f"{{{XF}}}data"
    assert data.get("id") == form_id
    assert data.get("version") == _settings(_xlsx(form_id))["version"]
    assert model.get(f"{{{ENT}}}entities-version") == "2024.1.0"


def test_household_survey_entity(xforms: dict[str, str]) -> None:
    model = _model(xforms["household_survey"])
    entity = _primary(model).find("xf:meta/xf:entity", NS)
    assert entity is not None
    assert entity.get("dataset") == "households"
    assert entity.get("create") == "1" and entity.get("update") == "1"
    assert entity.find("xf:label", NS) is not None
    binds = {b.get("nodeset"): b for b in model.findall("xf:bind", NS)}
    create = binds["/data/meta/entity/@create"].get("calculate")
    update = binds["/data/meta/entity/@update"].get("calculate")
    assert "/data/g_intro/hh_mode" in create and "'new'" in create and "'met'" in create
    assert "/data/g_intro/hh_mode" in update and "'existing'" in update and "'met'" in update
    assert binds["/data/meta/entity/@id"].get("calculate").strip() == "/data/entity_id"
    assert binds["/data/meta/entity/label"].get("calculate").strip() == "/data/hh_label"
    assert binds["/data/entity_id"].get("calculate") == (
        "coalesce( /data/g_intro/hh_existing ,  /data/hh_new_id )"
    )


def test_support_visit_entity(xforms: dict[str, str]) -> None:
    model = _model(xforms["support_visit"])
    entity = _primary(model).find("xf:meta/xf:entity", NS)
    assert entity is not None
    assert entity.get("dataset") == "households"
    assert entity.get("update") == "1"
    assert "create" not in entity.attrib
    assert entity.find("xf:label", NS) is None
    binds = {b.get("nodeset"): b for b in model.findall("xf:bind", NS)}
    assert binds["/data/meta/entity/@id"].get("calculate").strip() == "/data/g_hh/hh"
    update = binds["/data/meta/entity/@update"].get("calculate")
    assert "/data/g_close/update_status" in update and "'yes'" in update


@pytest.mark.parametrize("form_id", FORM_IDS)
def test_saveto_properties(form_id: str, xforms: dict[str, str]) -> None:
    model = _model(xforms[form_id])
    saved = {
        b.get(f"{{{ENT}}}saveto")
        for b in model.findall("xf:bind", NS)
        if b.get(f"{{{ENT}}}saveto") is not None
    }
    assert saved == SAVE_TO[form_id]


@pytest.mark.parametrize("form_id", FORM_IDS)
def test_csv_secondary_instances(form_id: str, xforms: dict[str, str]) -> None:
    model = _model(xforms[form_id])
    external = {
        inst.get("id"): inst.get("src")
        for inst in model.findall("xf:instance", NS)
        if inst.get("src") is not None
    }
    assert external == CSV_INSTANCES[form_id]


@pytest.mark.parametrize("form_id", FORM_IDS)
def test_tdp_choices_come_from_config(form_id: str, xforms: dict, ward: WardConfig) -> None:
    items = _choices_in_xform(_model(xforms[form_id]), "tdp")
    assert items == [{"name": t.code, "vi": t.label_vi, "en": t.label_en} for t in ward.tdps]


def test_street_choices_come_from_config(xforms: dict, ward: WardConfig) -> None:
    items = _choices_in_xform(_model(xforms["household_survey"]), "street")
    expected = [
        {
            "name": s.name,
            "tdp_list": " ".join(s.tdp_list),
            "label_vi": s.label_vi,
            "vi": s.label_vi,
            "en": s.label_en,
        }
        for s in ward.streets
    ]
    assert items[:-1] == expected
    assert items[-1]["name"] == "other"
    assert items[-1]["label_vi"] == items[-1]["vi"]


def test_changed_config_shows_in_xform(tmp_path: Path) -> None:
    text = WARD_TOML.read_text(encoding="utf-8")
    assert 'label_vi = "Tổ dân phố 3"' in text
    text = text.replace('label_vi = "Tổ dân phố 3"', 'label_vi = "Tổ dân phố Sông Lô"', 1)
    text = text.replace('label_en = "Residential group 3"', 'label_en = "Song Lo group"', 1)
    text = text.replace('label_en = "Kim Binh street"', 'label_en = "Kim Binh road"', 1)
    path = tmp_path / "ward.toml"
    path.write_text(text, encoding="utf-8")
    changed = load_ward_config(path)
    for form_id in FORM_IDS:
        xform = convert(
            xlsform=BytesIO(apply_ward_lists(_xlsx(form_id), changed)), validate=False
        ).xform
        model = _model(xform)
        tdp03 = [i for i in _choices_in_xform(model, "tdp") if i["name"] == "tdp03"]
        assert tdp03 == [{"name": "tdp03", "vi": "Tổ dân phố Sông Lô", "en": "Song Lo group"}]
        assert "Tổ dân phố 3<" not in xform
        if form_id == "household_survey":
            st08 = [i for i in _choices_in_xform(model, "street") if i["name"] == "st08"]
            assert st08[0]["en"] == "Kim Binh road"
