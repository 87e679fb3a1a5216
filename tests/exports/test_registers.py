"""E3 `households_register`, E4 `members_register`, E5 `service_events` on the fixture ward of
test_indicators (built through Collect uploads); expected values worked out by hand."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from server.exports.registers import register_tables
from server.exports.tables import csv_chunks
from tests.exports.test_indicators import CUTOFF, NOW, Built, build_ward, upload_late

E3_HEADER = (
    "household_id,tdp_code,street_code,street_name,alley,house_no,landmark,address_display,"
    "head_name,head_birth_year,head_sex,phone_norm,phone_owner,has_pid,pid_last4,n_members,"
    "n_adults,consent,informed,informed_channels,internet,has_smartphone_member,"
    "has_basic_member,has_vneid_member,has_dvc_member,is_capable,assigned_helper,has_pupils,"
    "school_app,business,biz_registered,biz_type,biz_cashless,biz_pay_methods,ocop,ocop_name,"
    "online_channels,online_supported,lat,lon,gps_accuracy_m,first_survey_date,"
    "last_survey_date,n_surveys,n_source_entities,n_visits,last_visit_date,needs_followup,"
    "followup_date,dedupe_status,status")
E4_HEADER = (
    "member_id,household_id,tdp_code,full_name,birth_year,sex,age,relation,is_head,is_adult,"
    "smartphone,basic_skill,skills,vneid,dvc,cashless,digisig,vssid,ehealth,bdhvs,thpt_student,"
    "thpt_trained,is_capable,needs,snapshot_date,last_upgrade_visit_date")
E5_HEADER = (
    "instance_id,submitted_at,visit_date,volunteer_id,volunteer_tdp,household_id,"
    "entity_id_submitted,tdp_code,visit_mode,service_code,service_level,member_id,"
    "member_name_other,outcome,member_done,fail_reason,dvc_dossier,minutes_share,followup_date,"
    "satisfaction,has_photo,is_unique_completion,verified")


@pytest.fixture
def built(app, monkeypatch) -> Built:
    return build_ward(app, monkeypatch)


def pick(row: dict[str, str], columns: str) -> tuple[str, ...]:
    return tuple(row[c] for c in columns.split())


def test_headers_are_exactly_the_spec(built):
    out = built.tables(register_tables, period="2026-11")
    assert list(out) == ["households_register", "members_register", "service_events"]
    assert ",".join(out["households_register"][0]) == E3_HEADER
    assert ",".join(out["members_register"][0]) == E4_HEADER
    assert ",".join(out["service_events"][0]) == E5_HEADER


def test_households_register_as_of_period_end(built):
    rows = built.tables(register_tables, period="2026-11")["households_register"]
    hh = built.hh
    # in tổ order, then by first survey; H6 is not uploaded yet; H7 is listed as moved out
    assert [r["household_id"] for r in rows] == [
        hh["H1"], hh["H2"], hh["H3"], hh["H4"], hh["H7"], hh["H5"], hh["H8"], hh["H9"]]
    by_id = {r["household_id"]: r for r in rows}
    h1 = by_id[hh["H1"]]
    assert pick(h1, "tdp_code street_code street_name house_no address_display head_name "
                    "head_birth_year head_sex phone_norm phone_owner has_pid n_members "
                    "n_adults consent informed informed_channels internet") == (
        "tdp01", "st01", "Đường Bình Thuận", "7", "Số 7 Đường Bình Thuận", "Nguyễn Văn An",
        "1970", "male", "0912000001", "head", "0", "3", "3", "1", "1", "zalo meeting",
        "mobile")
    # An got VNeID level 1 on 10 Nov (V1); the business accepts QR since V2 on 22 Nov
    assert pick(h1, "has_smartphone_member has_basic_member has_vneid_member has_dvc_member "
                    "is_capable assigned_helper has_pupils school_app business biz_registered "
                    "biz_type biz_cashless ocop online_channels online_supported") == (
        "1", "1", "1", "1", "1", "vol1", "1", "0", "1", "1", "retail", "1", "0", "none", "0")
    assert pick(h1, "lat lon gps_accuracy_m first_survey_date last_survey_date n_surveys "
                    "n_source_entities n_visits last_visit_date needs_followup followup_date "
                    "dedupe_status status") == (
        "21.82", "105.21", "5.0", "2026-10-05", "2026-10-05", "1", "1", "2", "2026-11-22", "0",
        "", "single", "active")
    h2 = by_id[hh["H2"]]  # VNeID dk: unknown, not "no"
    assert pick(h2, "head_name first_survey_date informed has_vneid_member has_dvc_member "
                    "is_capable") == ("'=Lê Văn Dũng", "2026-11-01", "0", "", "0", "0")
    h3 = by_id[hh["H3"]]  # two surveys of two entities, merged automatically
    assert pick(h3, "head_name phone_norm n_members n_surveys n_source_entities "
                    "first_survey_date last_survey_date lat lon gps_accuracy_m n_visits "
                    "dedupe_status") == (
        "Phạm Văn Đức", "0983123456", "2", "2", "2", "2026-11-03", "2026-11-04", "21.81",
        "105.21", "4.0", "1", "auto_merged")
    h4 = by_id[hh["H4"]]  # consent withdrawn on 15 Nov: only the address and "informed" stay
    assert pick(h4, "house_no head_name phone_norm n_members consent informed "
                    "has_basic_member business n_surveys status") == (
        "21", "", "", "", "0", "1", "", "", "2", "active")
    h5 = by_id[hh["H5"]]  # the edited survey counts once, with its latest answers
    assert pick(h5, "n_surveys business biz_registered ocop ocop_name online_channels "
                    "online_supported is_capable last_visit_date needs_followup "
                    "followup_date") == (
        "1", "1", "0", "1", "Chè Shan tuyết", "social", "1", "1", "2026-11-14", "1",
        "2026-12-05")
    assert pick(by_id[hh["H7"]], "status consent n_members") == ("moved_out", "1", "")
    assert {by_id[hh[k]]["dedupe_status"] for k in ("H8", "H9")} == {"pending_review"}


def test_registers_as_of_an_earlier_month(built):
    out = built.tables(register_tables, period="2026-10")
    rows = {r["household_id"]: r for r in out["households_register"]}
    assert set(rows) == {built.hh["H1"], built.hh["H4"], built.hh["H7"]}
    assert pick(rows[built.hh["H1"]], "is_capable n_visits biz_cashless") == ("", "0", "0")
    assert pick(rows[built.hh["H7"]], "status n_members") == ("active", "1")
    assert out["service_events"] == []  # no visit in October


def test_members_register_effective_status(built):
    rows = built.tables(register_tables, period="2026-11")["members_register"]
    # members of the latest consented snapshot of every consented household: H1 (3), H2 (1),
    # H3 (2, from the second survey), H5 (2, from the edit), H8 and H9 (1 each)
    assert len(rows) == 10
    by_name = {r["full_name"]: r for r in rows}
    assert "Hoàng Thị Hoa" not in by_name and "Vũ Văn Khoa" not in by_name
    an = by_name["Nguyễn Văn An"]
    assert an["member_id"] == built.members["Nguyễn Văn An"]
    assert pick(an, "household_id tdp_code birth_year sex age relation is_head is_adult "
                    "smartphone basic_skill vneid dvc is_capable snapshot_date "
                    "last_upgrade_visit_date") == (
        built.hh["H1"], "tdp01", "1970", "male", "56", "", "1", "1", "1", "1", "l1", "1", "1",
        "2026-10-05", "2026-11-10")
    cuong = by_name["Nguyễn Văn Cường"]
    assert pick(cuong, "age relation is_head is_adult dvc digisig thpt_student thpt_trained "
                       "is_capable") == ("17", "child", "0", "1", "", "", "1", "1", "")
    mai = by_name["Lê Thị Mai"]  # named in free text ("Le Thi Mai") on a visit to the alias
    assert pick(mai, "household_id relation vneid dvc digisig is_capable snapshot_date "
                     "last_upgrade_visit_date") == (
        built.hh["H3"], "spouse", "l1", "1", "", "1", "2026-11-04", "2026-11-06")
    lan = by_name["Đỗ Thị Lan"]  # partial VssID, done for her; her dk answers stay unknown
    assert pick(lan, "vssid dvc cashless bdhvs is_capable last_upgrade_visit_date") == (
        "1", "", "", "", "", "2026-11-14")
    assert pick(by_name["Đỗ Văn Hải"], "vssid last_upgrade_visit_date") == ("0", "")
    dung = by_name["'=Lê Văn Dũng"]  # as the CSV carries it
    assert pick(dung, "is_head vneid smartphone skills basic_skill") == (
        "1", "dk", "0", "none", "0")


def test_service_events_one_row_per_visit_service_member(built):
    rows = built.tables(register_tables, period="2026-11")["service_events"]
    hh, m, v = built.hh, built.members, built.visits
    an, hai, lan = m["Nguyễn Văn An"], m["Đỗ Văn Hải"], m["Đỗ Thị Lan"]
    mai = m["Lê Thị Mai"]
    columns = ("instance_id visit_date volunteer_id volunteer_tdp household_id tdp_code "
               "service_code service_level member_id member_name_other outcome member_done "
               "fail_reason minutes_share followup_date is_unique_completion verified")
    assert [pick(r, columns) for r in rows] == [
        (v["V3"], "2026-11-06", "vol1", "tdp01", hh["H3"], "tdp01", "dvc_account", "person",
         mai, "Le Thi Mai", "done", "1", "", "15.00", "", "1", ""),
        (v["V1"], "2026-11-10", "vol1", "tdp01", hh["H1"], "tdp01", "vneid_l1", "person", an,
         "", "done", "1", "", "20.00", "2026-11-20", "1", "1"),
        (v["V1"], "2026-11-10", "vol1", "tdp01", hh["H1"], "tdp01", "biz_qr", "household", "",
         "", "followup", "0", "missing_docs", "20.00", "2026-11-20", "0", ""),
        (v["V4"], "2026-11-14", "vol2", "tdp02", hh["H5"], "tdp02", "ecommerce", "household",
         "", "", "done", "1", "", "13.34", "2026-12-05", "1", ""),
        (v["V4"], "2026-11-14", "vol2", "tdp02", hh["H5"], "tdp02", "vssid", "person", hai, "",
         "partial", "0", "not_ready", "13.33", "2026-12-05", "0", ""),
        (v["V4"], "2026-11-14", "vol2", "tdp02", hh["H5"], "tdp02", "vssid", "person", lan, "",
         "partial", "1", "not_ready", "13.33", "2026-12-05", "1", ""),
        (v["V2"], "2026-11-22", "volw", "ward", hh["H1"], "tdp01", "biz_qr", "household", "",
         "", "done", "1", "", "10.00", "", "1", ""),
        # An's VNeID was already completed by V1: a completion, not a unique one
        (v["V2"], "2026-11-22", "volw", "ward", hh["H1"], "tdp01", "vneid_l1", "person", an,
         "", "done", "1", "", "10.00", "", "0", ""),
    ]
    v3 = rows[0]  # the visit named the merged-away entity: counted for the canonical one
    assert v3["entity_id_submitted"] == built.alias_b != v3["household_id"]
    assert pick(v3, "submitted_at visit_mode satisfaction has_photo") == (
        "2026-11-06T10:00:00+07:00", "remote", "na", "0")
    # minutes_share adds up to the minutes of each visit: 15 + 40 + 40 + 20
    assert sum(float(r["minutes_share"]) for r in rows) == pytest.approx(115)


def test_formula_like_names_are_neutralised_in_the_csv(built):
    session = built.app.extensions["db"].session()
    try:
        households, members, _ = register_tables(session, built.project_id, built.ward,
                                                 period="2026-11", now=NOW)
    finally:
        session.close()
    for table in (households, members):  # rows are produced after the session has closed
        text = "".join(csv_chunks(table))
        assert ",'=Lê Văn Dũng," in text
        assert ",=Lê Văn Dũng" not in text


def test_default_period_is_today(built):
    # without a period: everything as of today (10 Nov, 19:00 in Vietnam)
    out = built.tables(register_tables, now=datetime(2026, 11, 10, 12, tzinfo=UTC))
    households = {r["household_id"] for r in out["households_register"]}
    assert built.hh["H5"] not in households and built.hh["H3"] in households
    assert [r["instance_id"] for r in out["service_events"]] == [
        built.visits["V3"], built.visits["V1"], built.visits["V1"]]


def test_late_upload_does_not_change_registers_as_of_the_cutoff(built):
    before = built.tables(register_tables, period="2026-11")
    upload_late(built)
    assert built.tables(register_tables, period="2026-11", as_of=CUTOFF) == before
    after = built.tables(register_tables, period="2026-11")["households_register"]
    assert built.hh["H6"] in {r["household_id"] for r in after}
