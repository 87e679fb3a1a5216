"""Ward configuration (forms/ward.toml) and generation of the forms' tdp/street lists."""

from __future__ import annotations

import dataclasses
import datetime as dt
import zipfile
from io import BytesIO
from pathlib import Path

import pytest
from openpyxl import Workbook, load_workbook
from pyxform.xls2xform import convert

from server.domain.ward import (
    WardConfig,
    apply_ward_lists,
    load_ward_config,
    parse_ward_config,
)

REPO = Path(__file__).resolve().parents[2]
FORMS = REPO / "forms"
WARD_TOML = FORMS / "ward.toml"
SURVEY_XLSX = FORMS / "household_survey.xlsx"
VISIT_XLSX = FORMS / "support_visit.xlsx"

ALL_INDICATORS = [
    "I00", "I01", "I02", "I02a", "I02b", "I03", "I04", "I04a", "I04b", "I04c", "I05",
    "I06", "I06a", "I07", "I08", "I09", "I10", "I11", "I12", "I13", "I14", "I15", "I16",
    "I17",
]  # fmt: skip

MINIMAL = """
[ward]
code = "test_ward"
name_vi = "Phường Thử Nghiệm"
name_en = "Test ward"
plan_year = 2026

[[tdp]]
code = "tdp01"
label_vi = "Tổ dân phố Một"
label_en = "Group One"
official_households = 120

[[tdp]]
code = "tdp02"
label_vi = "Tổ dân phố Hai"
label_en = "Group Two"
official_households = 80

[[tdp]]
code = "tdp03"
label_vi = "Tổ dân phố Ba"
label_en = "Group Three"
official_households = 95

[[street]]
name = "st_a"
label_vi = "Đường Thử A"
label_en = "Test A street"
tdp_list = ["tdp01", "tdp02"]

[[street]]
name = "st_b"
label_vi = "Phố Thử B"
label_en = "Test B street"
tdp_list = ["tdp03"]
"""


@pytest.fixture(scope="module")
def ward() -> WardConfig:
    return load_ward_config(WARD_TOML)


@pytest.fixture(scope="module")
def small() -> WardConfig:
    return parse_ward_config(MINIMAL, source="small.toml")


def _rows(xlsx: bytes, sheet: str) -> list[tuple]:
    wb = load_workbook(BytesIO(xlsx))
    return [tuple(r) for r in wb[sheet].iter_rows(values_only=True)]


def _choices(xlsx: bytes) -> list[dict]:
    rows = _rows(xlsx, "choices")
    header = rows[0]
    return [dict(zip(header, r, strict=True)) for r in rows[1:]]


# --------------------------------------------------------------------------- loading


def test_repository_config_loads(ward: WardConfig) -> None:
    assert ward.code
    assert ward.name_vi == "Phường Bình Thuận"
    assert ward.plan_year == 2026
    assert ward.target_date == dt.date(2026, 12, 31)
    assert ward.tdp_codes == tuple(f"tdp{i:02d}" for i in range(1, 21))
    assert all(t.label_vi and t.label_en for t in ward.tdps)
    assert all(t.official_households >= 0 for t in ward.tdps)
    assert ward.adult_min_age == 15
    assert ward.eligible_biz == "all"
    assert ward.followup_grace_days == 3
    assert ward.essential.vneid_levels == ("l1", "l2")
    assert ward.essential.any_of == ("dvc", "cashless")
    assert ward.verification.share_pct == 5.0
    assert ward.verification.min_per_volunteer == 2
    assert ward.awards.cutoff == dt.date(2026, 9, 30)
    assert ward.awards.score_weights == ()
    assert ward.pid_key_env == "PID_KEY"
    assert ward.streets, "the repository config lists streets"
    for street in ward.streets:
        assert street.name != "other"
        assert street.tdp_list and set(street.tdp_list) <= set(ward.tdp_codes)


def test_repository_config_targets(ward: WardConfig) -> None:
    assert [t.id for t in ward.targets] == ALL_INDICATORS
    expect_100 = ["I00", "I01", "I03", "I04", "I05", "I06", "I07"]
    for tid in expect_100:
        assert ward.target(tid).rule == ">=100"
        assert ward.target(tid).target_pct == 100.0
    assert ward.target("I02").rule == ">=80"
    assert ward.target("I02").target_pct == 80.0
    assert ward.target("I02a").reference_pct == 80.0
    assert ward.target("I08").rule == "increase"
    assert ward.target("I08").target_pct is None
    assert ward.target("I09").rule == ""
    assert ward.target("I99") is None


def test_config_is_frozen(ward: WardConfig) -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        ward.adult_min_age = 18  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        ward.tdps[0].label_vi = "x"  # type: ignore[misc]
    assert isinstance(ward.tdps, tuple) and isinstance(ward.streets[0].tdp_list, tuple)


def test_minimal_config_uses_defaults(small: WardConfig) -> None:
    assert small.tdp_codes == ("tdp01", "tdp02", "tdp03")
    assert small.official_households_total == 295
    assert small.get_tdp("tdp02").label_en == "Group Two"
    assert [s.name for s in small.streets_of("tdp02")] == ["st_a"]
    assert small.adult_min_age == 15
    assert small.eligible_biz == "all"
    assert small.followup_grace_days == 3
    assert small.target_date == dt.date(2026, 12, 31)
    assert small.awards.cutoff == dt.date(2026, 9, 30)
    assert small.targets == ()


def test_text_is_normalised() -> None:
    text = MINIMAL.replace('"Tổ dân phố Một"', '"  To\u0302\u0309 dân\u00a0 phố   Một "')
    cfg = parse_ward_config(text)
    assert cfg.tdps[0].label_vi == "Tổ dân phố Một"


def test_load_from_file(tmp_path: Path) -> None:
    path = tmp_path / "ward.toml"
    path.write_text(MINIMAL.replace("Test ward", "Other ward"), encoding="utf-8")
    assert load_ward_config(path).name_en == "Other ward"
    assert load_ward_config(str(path)).name_en == "Other ward"


def test_load_error_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(MINIMAL.replace('code = "tdp03"', 'code = "tdp01"'), encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad\.toml: tdp\[2\]\.code: duplicate tổ code 'tdp01'"):
        load_ward_config(path)


BAD_CONFIGS = [
    pytest.param(
        MINIMAL.replace('code = "tdp02"', 'code = "tdp01"'),
        r"tdp\[1\]\.code: duplicate tổ code 'tdp01'",
        id="duplicate-tdp",
    ),
    pytest.param(
        MINIMAL.replace('tdp_list = ["tdp03"]', 'tdp_list = ["tdp03", "tdp09"]'),
        r"street\[1\]\.tdp_list: unknown tổ code 'tdp09'",
        id="street-unknown-tdp",
    ),
    pytest.param(
        MINIMAL.replace('name = "st_b"', 'name = "st_a"'),
        r"street\[1\]\.name: duplicate street name 'st_a'",
        id="duplicate-street",
    ),
    pytest.param(
        MINIMAL.replace('name = "st_b"', 'name = "other"'),
        r"street\[1\]\.name: 'other' is reserved",
        id="street-named-other",
    ),
    pytest.param(
        MINIMAL.replace('tdp_list = ["tdp03"]', "tdp_list = []"),
        r"street\[1\]\.tdp_list: must not be empty",
        id="street-no-tdp",
    ),
    pytest.param(
        MINIMAL.replace('tdp_list = ["tdp03"]', 'tdp_list = "tdp03"'),
        r"street\[1\]\.tdp_list: must be an array of strings",
        id="street-tdp-list-string",
    ),
    pytest.param(
        MINIMAL.replace('name = "st_b"', 'name = "st b"'),
        r"street\[1\]\.name: 'st b' is not a valid choice name",
        id="street-name-space",
    ),
    pytest.param(
        MINIMAL.replace('code = "tdp03"', 'code = "ward"'),
        r"tdp\[2\]\.code: 'ward' is reserved",
        id="tdp-code-ward",
    ),
    pytest.param(
        MINIMAL.replace("official_households = 80", "official_households = -1"),
        r"tdp\[1\]\.official_households: must be between 0 and",
        id="negative-households",
    ),
    pytest.param(
        MINIMAL.replace("official_households = 80", 'official_households = "80"'),
        r"tdp\[1\]\.official_households: must be an integer, got a string",
        id="households-string",
    ),
    pytest.param(
        MINIMAL.replace("official_households = 80\n", ""),
        r"tdp\[1\]\.official_households: missing",
        id="households-missing",
    ),
    pytest.param(
        MINIMAL.replace('label_en = "Group Two"', 'label_en = "  "'),
        r"tdp\[1\]\.label_en: must not be empty",
        id="empty-label",
    ),
    pytest.param(
        MINIMAL.replace("[[tdp]]", "[[tdps]]", 1),
        r"tdps: unknown key",
        id="unknown-top-level-key",
    ),
    pytest.param(
        MINIMAL.replace("plan_year = 2026", "plan_year = 2026\nnmae_vi = 'x'"),
        r"ward\.nmae_vi: unknown key",
        id="unknown-ward-key",
    ),
    pytest.param(
        MINIMAL.split("[[tdp]]")[0],
        r"tdp: missing",
        id="no-tdp",
    ),
    pytest.param(
        MINIMAL.replace("[ward]", "[wrd]"),
        r"wrd: unknown key",
        id="no-ward",
    ),
    pytest.param(
        MINIMAL.replace("plan_year = 2026", "plan_year = 2026\n[rules]\nadult_min_age = '15'"),
        r"rules\.adult_min_age: must be an integer, got a string",
        id="adult-age-string",
    ),
    pytest.param(
        MINIMAL.replace("plan_year = 2026", "plan_year = 2026\n[rules]\nadult_min_age = true"),
        r"rules\.adult_min_age: must be an integer, got a boolean",
        id="adult-age-bool",
    ),
    pytest.param(
        MINIMAL.replace("plan_year = 2026", "plan_year = 2026\n[rules]\neligible_biz = 'some'"),
        r"rules\.eligible_biz: must be one of all, registered, got 'some'",
        id="eligible-biz",
    ),
    pytest.param(
        MINIMAL.replace(
            "plan_year = 2026", "plan_year = 2026\n[rules.essential]\nvneid_levels = ['l3']"
        ),
        r"rules\.essential\.vneid_levels: unknown level 'l3'",
        id="essential-level",
    ),
    pytest.param(
        MINIMAL.replace("plan_year = 2026", "plan_year = 2026\ntarget_date = '2026-12-31'"),
        r"ward\.target_date: must be a TOML date written without quotes",
        id="date-as-string",
    ),
    pytest.param(
        MINIMAL.replace("plan_year = 2026", "plan_year = 2026\ntarget_date = 2027-12-31"),
        r"ward\.target_date: 2027-12-31 is not in plan_year 2026",
        id="target-date-year",
    ),
    pytest.param(
        MINIMAL + "\n[awards]\ncutoff = 2025-09-30\n",
        r"awards\.cutoff: 2025-09-30 is not in plan_year 2026",
        id="award-cutoff-year",
    ),
    pytest.param(
        MINIMAL + "\n[awards.score_weights]\nn_visits = 'a lot'\n",
        r"awards\.score_weights\.n_visits: must be a number, got a string",
        id="award-weight",
    ),
    pytest.param(
        MINIMAL + "\n[verification]\nshare_pct = 150\n",
        r"verification\.share_pct: must be between 0 and 100, got 150",
        id="verification-share",
    ),
    pytest.param(
        MINIMAL + '\n[[target]]\nid = "I02"\nrule = ">= 80"\n',
        r"target\[0\]\.rule: '>= 80' must be '>=N'",
        id="target-rule",
    ),
    pytest.param(
        MINIMAL + '\n[[target]]\nid = "I02"\nrule = ">=180"\n',
        r"target\[0\]\.rule: target 180 % is not in \(0, 100\]",
        id="target-over-100",
    ),
    pytest.param(
        MINIMAL + '\n[[target]]\nid = "I02"\nrule = ">=80"\n[[target]]\nid = "I02"\nrule = ""\n',
        r"target\[1\]\.id: duplicate indicator 'I02'",
        id="target-duplicate",
    ),
    pytest.param(
        MINIMAL + '\n[[target]]\nid = "X1"\nrule = ""\n',
        r"target\[0\]\.id: 'X1' is not an indicator code",
        id="target-id",
    ),
    pytest.param(
        MINIMAL + '\n[secrets]\npid_key = "s3cret"\n',
        r"secrets\.pid_key: unknown key",
        id="secret-in-file",
    ),
    pytest.param(
        MINIMAL.replace("[ward]", "[ward"),
        r"small\.toml: invalid TOML",
        id="invalid-toml",
    ),
]


@pytest.mark.parametrize(("text", "message"), BAD_CONFIGS)
def test_bad_config_gives_clear_error(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_ward_config(text, source="small.toml")


def test_error_message_starts_with_source() -> None:
    with pytest.raises(ValueError) as info:
        parse_ward_config(MINIMAL.replace('code = "tdp02"', 'code = "tdp01"'), source="x.toml")
    assert str(info.value).startswith("x.toml: tdp[1].code: ")


# --------------------------------------------------------------------------- apply_ward_lists


def test_apply_replaces_tdp_and_street_lists(small: WardConfig) -> None:
    raw = SURVEY_XLSX.read_bytes()
    out = apply_ward_lists(raw, small)
    before, after = _choices(raw), _choices(out)

    tdp = [r for r in after if r["list_name"] == "tdp"]
    assert [r["name"] for r in tdp] == ["tdp01", "tdp02", "tdp03"]
    assert tdp[0]["label::Tiếng Việt (vi)"] == "Tổ dân phố Một"
    assert tdp[0]["label::English (en)"] == "Group One"
    assert tdp[0]["tdp_list"] is None and tdp[0]["label_vi"] is None and tdp[0]["level"] is None

    streets = [r for r in after if r["list_name"] == "street"]
    assert [r["name"] for r in streets] == ["st_a", "st_b", "other"]
    assert streets[0] == {
        "list_name": "street",
        "name": "st_a",
        "label::Tiếng Việt (vi)": "Đường Thử A",
        "label::English (en)": "Test A street",
        "tdp_list": "tdp01 tdp02",
        "label_vi": "Đường Thử A",
        "level": None,
    }
    assert streets[1]["tdp_list"] == "tdp03"
    other_before = [r for r in before if r["list_name"] == "street" and r["name"] == "other"]
    assert streets[2] == other_before[0]

    # Everything else is kept, in order.
    def rest(rows: list[dict]) -> list[dict]:
        return [r for r in rows if r["list_name"] not in ("tdp", "street")]

    assert rest(after) == rest(before)
    # The lists stay where they were.
    order = [r["list_name"] for r in after]
    assert order.index("tdp") == [r["list_name"] for r in before].index("tdp")
    assert _rows(out, "choices")[0] == _rows(raw, "choices")[0]


def test_apply_keeps_other_sheets(small: WardConfig) -> None:
    for path in (SURVEY_XLSX, VISIT_XLSX):
        raw = path.read_bytes()
        out = apply_ward_lists(raw, small)
        assert load_workbook(BytesIO(out)).sheetnames == load_workbook(BytesIO(raw)).sheetnames
        for sheet in ("survey", "settings", "entities"):
            assert _rows(out, sheet) == _rows(raw, sheet), (path.name, sheet)


def test_apply_on_visit_form_does_not_add_streets(small: WardConfig) -> None:
    raw = VISIT_XLSX.read_bytes()
    after = _choices(apply_ward_lists(raw, small))
    assert [r["name"] for r in after if r["list_name"] == "tdp"] == ["tdp01", "tdp02", "tdp03"]
    assert not [r for r in after if r["list_name"] == "street"]
    before = _choices(raw)
    assert [r for r in after if r["list_name"] != "tdp"] == [
        r for r in before if r["list_name"] != "tdp"
    ]


def test_repository_config_reproduces_form_lists(ward: WardConfig) -> None:
    """The example lists in the forms and the repository config agree row for row."""
    for path in (SURVEY_XLSX, VISIT_XLSX):
        raw = path.read_bytes()
        assert _choices(apply_ward_lists(raw, ward)) == _choices(raw), path.name


def test_apply_is_deterministic(small: WardConfig) -> None:
    raw = SURVEY_XLSX.read_bytes()
    first = apply_ward_lists(raw, small)
    second = apply_ward_lists(raw, small)
    assert first == second
    # No clock in the output: fixed zip timestamps, the input's modification date.
    with zipfile.ZipFile(BytesIO(first)) as zf:
        assert {i.date_time for i in zf.infolist()} == {(1980, 1, 1, 0, 0, 0)}
    assert load_workbook(BytesIO(first)).properties.modified == (
        load_workbook(BytesIO(raw)).properties.modified
    )
    # Applying again to the output changes nothing.
    assert apply_ward_lists(first, small) == first


def test_converted_xform_is_identical_run_to_run(small: WardConfig) -> None:
    for path in (SURVEY_XLSX, VISIT_XLSX):
        raw = path.read_bytes()
        one = convert(xlsform=BytesIO(apply_ward_lists(raw, small)), validate=False)
        two = convert(xlsform=BytesIO(apply_ward_lists(raw, small)), validate=False)
        assert one.warnings == [] and two.warnings == []
        assert one.xform.encode("utf-8") == two.xform.encode("utf-8")
        assert "Tổ dân phố Hai" in one.xform and "Tổ dân phố 2<" not in one.xform


def test_apply_leaves_workbook_without_choices_as_given(small: WardConfig) -> None:
    wb = Workbook()
    wb.active.title = "survey"
    buf = BytesIO()
    wb.save(buf)
    assert apply_ward_lists(buf.getvalue(), small) == buf.getvalue()


def test_apply_rejects_street_list_without_tdp_list_column(small: WardConfig) -> None:
    wb = Workbook()
    ws = wb.active
    ws.title = "choices"
    ws.append(["list_name", "name", "label::English (en)"])
    ws.append(["street", "x", "X"])
    buf = BytesIO()
    wb.save(buf)
    with pytest.raises(ValueError, match="needs a 'tdp_list' column"):
        apply_ward_lists(buf.getvalue(), small)


def test_apply_rejects_garbage(small: WardConfig) -> None:
    with pytest.raises(ValueError, match="not a readable .xlsx"):
        apply_ward_lists(b"not a zip", small)
