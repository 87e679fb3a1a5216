"""E6 `volunteer_activity`, E7 `team_activity` and the award tables on a small ward built
through Collect uploads.

Every expected number was worked out by hand from the fixture (see `build_activity_ward`),
never by calling the code under test. Tổ: tdp01 (10 official households), tdp02 (8).
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from server.db.models import ServiceCheck, Submission, VolunteerTraining
from server.domain.ward import AWARD_METRICS, AwardConfig, parse_ward_config
from server.exports.activity import E6_COLUMNS, activity_tables, award_tables
from server.exports.indicators import report_tables
from server.exports.run import REPORT_TABLES
from tests.exports.test_indicators import (
    BASIC,
    Built,
    _member_ids,
    _office,
    _survey,
    _user_id,
    _visit,
    at,
    member,
    start_ward,
)
from tests.exports.test_registers import E5_HEADER
from tests.openrosa.test_households import add
from tests.unit.test_ward import MINIMAL

E6_HEADER = (
    "period_type,period_start,period_end,volunteer_id,volunteer_name,tdp_code,role,active,"
    "trained_this_year,n_surveys,n_households_surveyed,n_new_households,n_duplicate_surveys,"
    "n_visits,n_households_visited,n_households_helped,n_people_helped,n_completions,"
    "n_unique_completions,n_partial,n_followup,done_vneid_l1,done_vneid_l2,done_vneid_use,"
    "done_dvc_account,done_dvc_procedure,done_cashless,done_biz_qr,done_digisig,done_vssid,"
    "done_ehealth,done_school_app,done_ecommerce,done_bdhvs,done_safety,done_other,"
    "minutes_total,n_followups_due,n_followups_on_time,followup_on_time_pct,n_verified,"
    "n_verified_ok,satisfaction_n,satisfaction_positive_pct,active_days,first_activity_date,"
    "last_activity_date")
E7_HEADER = (
    "period_type,period_start,period_end,tdp_code,tdp_name,n_volunteers,n_active_volunteers,"
    "n_trained_volunteers,n_visits,n_households_helped,n_people_helped,n_unique_completions,"
    "minutes_total,n_followups_due,n_followups_on_time,I02_pct_start,I02_pct_end,"
    "I02_change_pp,I03_pct_start,I03_pct_end,I04_pct_start,I04_pct_end,I04_change_pp,"
    "I06_pct_start,I06_pct_end,households_per_active_volunteer")
NO_BIZ = {"g_hh/hh_pupils": "no", "g_hh/hh_business": "no"}


def build_activity_ward(app, monkeypatch) -> Built:
    """The fixture. Team tdp01: vol1 and vol2 (members), sup1 (leader, revoked); team tdp02:
    vol3; ward level: volw. Trainings: vol1 10 Mar 2026, sup1 Dec 2025, vol3 20 Nov 2026.

    H1 (tdp01) surveyed by vol1 on 5 Oct: An 1970 (basic, no VNeID), Bình 1975 (basic, l1).
       V1  vol1 10 Nov: VNeID l1 An done; DVC account Bình follow-up (due 20 Nov); safety An.
       V1b vol1 10 Nov, sent again later that day: cashless Bình done; safety An again.
           V1 + V1b are one visit; satisfaction "no" then "very": the visit's answer is "very".
       V2  vol2 22 Nov: DVC account Bình done (vol1's follow-up met within 3 days of grace);
           safety An again, on another date: a new unique completion (recurring service).
    H2 (tdp01) surveyed as new by vol2 on 2 Nov (Dũng 1950, Hạnh 1955), then again as new by
       vol1 on 9 Nov: merged into H2, vol1's duplicate survey.
       V3  vol2 12 Nov: VssID partial for Dũng and Hạnh, done for Hạnh (check: not confirmed);
           follow-up due 18 Nov, missed.
       V4  vol1 30 Nov at 23:30 in Vietnam (16:30 UTC): VssID Dũng done. Counts in November.
    H3 (tdp02) surveyed by vol3 on 5 Nov (Hà 1980: basic, l2, DVC; a business without QR).
       V5  vol3 6 Nov: biz_qr done.
    H4 (tdp01) surveyed by vol2 on 1 Dec at 00:30 in Vietnam (30 Nov 17:30 UTC): December.
    The office confirmed V1's VNeID for An.
    """
    b = start_ward(app, monkeypatch, [("vol2", "tdp01", "Lò Văn Tám"),
                                      ("vol3", "tdp02", "Đinh Thị Hà"),
                                      ("volw", "ward", "Vi Văn Phường")],
                   {"tdp01": 10, "tdp02": 8}, inactive=("sup1",))

    b.hh["H1"] = _survey(
        b, "vol1", "2026-10-05T03:00:00", tdp="tdp01", head="Nguyễn Văn An", year=1970,
        sex="male", house="7", survey_date="2026-10-05", hh=NO_BIZ,
        members=[member("Nguyễn Văn An", 1970, "male", smartphone="yes", skills=BASIC),
                 member("Trần Thị Bình", 1975, "female", "spouse", smartphone="yes",
                        skills=BASIC, vneid="l1")])
    h2 = {"tdp": "tdp01", "head": "Lê Văn Dũng", "year": 1950, "sex": "male", "house": "15",
          "phone": "0983123456", "informed": "now", "hh": NO_BIZ,
          "members": [member("Lê Văn Dũng", 1950, "male"),
                      member("Đỗ Thị Hạnh", 1955, "female", "spouse")]}
    b.hh["H2"] = _survey(b, "vol2", "2026-11-02T03:00:00", survey_date="2026-11-02",
                         location="21.8 105.2 0 12", **h2)
    b.hh["H3"] = _survey(
        b, "vol3", "2026-11-05T03:00:00", tdp="tdp02", head="Đinh Thị Hà", year=1980,
        sex="female", house="3", survey_date="2026-11-05",
        hh={"g_hh/hh_pupils": "no", "g_hh/hh_business": "yes", "g_hh/biz_registered": "yes",
            "g_hh/biz_type": "retail", "g_hh/biz_cashless": "no", "g_hh/biz_ocop": "no",
            "g_hh/biz_online": "none"},
        members=[member("Đinh Thị Hà", 1980, "female", smartphone="yes", skills=BASIC,
                        vneid="l2", dvc="yes")])
    b.visits["V5"] = _visit(
        b, "vol3", "2026-11-06T03:00:00", entity_id=b.hh["H3"], tdp="tdp02",
        visit_date="2026-11-06", minutes=10, satisfaction="very",
        blocks=[{"svc_code": "biz_qr", "svc_level": "household", "svc_outcome": "done"}])
    b.alias_b = _survey(b, "vol1", "2026-11-09T03:00:00", survey_date="2026-11-09",
                        location="21.81 105.21 0 4", **h2)
    b.members.update(_member_ids(b.clients["vol1"]))
    an, binh = b.members["Nguyễn Văn An"], b.members["Trần Thị Bình"]
    dung, hanh = b.members["Lê Văn Dũng"], b.members["Đỗ Thị Hạnh"]
    h1 = {"entity_id": b.hh["H1"], "tdp": "tdp01"}
    b.visits["V1"] = _visit(
        b, "vol1", "2026-11-10T03:00:00", **h1, visit_date="2026-11-10", minutes=30,
        satisfaction="no", followup="2026-11-20",
        blocks=[{"svc_code": "vneid_l1", "svc_level": "person", "svc_members": an,
                 "svc_outcome": "done"},
                {"svc_code": "dvc_account", "svc_level": "person", "svc_members": binh,
                 "svc_outcome": "followup", "svc_reason": "otp_phone"},
                {"svc_code": "safety", "svc_level": "person", "svc_members": an,
                 "svc_outcome": "done"}])
    b.visits["V1b"] = _visit(
        b, "vol1", "2026-11-10T05:00:00", **h1, visit_date="2026-11-10", minutes=10,
        satisfaction="very",
        blocks=[{"svc_code": "cashless", "svc_level": "person", "svc_members": binh,
                 "svc_outcome": "done"},
                {"svc_code": "safety", "svc_level": "person", "svc_members": an,
                 "svc_outcome": "done"}])
    b.visits["V3"] = _visit(
        b, "vol2", "2026-11-12T03:00:00", entity_id=b.hh["H2"], tdp="tdp01",
        visit_date="2026-11-12", minutes=25, satisfaction="neutral", followup="2026-11-18",
        blocks=[{"svc_code": "vssid", "svc_level": "person", "svc_members": f"{dung} {hanh}",
                 "svc_outcome": "partial", "svc_members_done": hanh,
                 "svc_reason": "not_ready"}])
    b.visits["V2"] = _visit(
        b, "vol2", "2026-11-22T03:00:00", **h1, visit_date="2026-11-22", minutes=20,
        satisfaction="na",
        blocks=[{"svc_code": "dvc_account", "svc_level": "person", "svc_members": binh,
                 "svc_outcome": "done"},
                {"svc_code": "safety", "svc_level": "person", "svc_members": an,
                 "svc_outcome": "done"}])
    b.visits["V4"] = _visit(
        b, "vol1", "2026-11-30T16:30:00", entity_id=b.hh["H2"], tdp="tdp01",
        visit_date="2026-11-30", minutes=15, satisfaction="yes",
        blocks=[{"svc_code": "vssid", "svc_level": "person", "svc_members": dung,
                 "svc_outcome": "done"}])
    b.hh["H4"] = _survey(
        b, "vol2", "2026-11-30T17:30:00", tdp="tdp01", head="Vũ Văn Khoa", year=1960,
        sex="male", house="33", survey_date="2026-12-01", hh=NO_BIZ,
        members=[member("Vũ Văn Khoa", 1960, "male")])

    session = app.extensions["db"].session()
    try:
        ids = {i: n for i, n in session.execute(select(Submission.instance_id, Submission.id))}
    finally:
        session.close()
    checked = at("2026-11-25T03:00:00")
    _office(
        b,
        VolunteerTraining(project_id=b.project_id, user_id=_user_id(b, "vol1"),
                          date="2026-03-10", topic="VNeID", created_at=at("2026-03-10T09:00:00")),
        VolunteerTraining(project_id=b.project_id, user_id=_user_id(b, "sup1"),
                          date="2025-12-01", topic="DVC", created_at=at("2025-12-01T09:00:00")),
        VolunteerTraining(project_id=b.project_id, user_id=_user_id(b, "vol3"),
                          date="2026-11-20", topic="An toàn số",
                          created_at=at("2026-11-20T09:00:00")),
        ServiceCheck(project_id=b.project_id, submission_id=ids[b.visits["V1"]],
                     service_code="vneid_l1", member_id=an, verified=True, checked_at=checked),
        ServiceCheck(project_id=b.project_id, submission_id=ids[b.visits["V3"]],
                     service_code="vssid", member_id=hanh, verified=False, checked_at=checked),
    )
    return b


@pytest.fixture
def built(app, monkeypatch) -> Built:
    return build_activity_ward(app, monkeypatch)


def zeros(n: int) -> list[str]:
    return ["0"] * n


def done(**codes: int) -> list[str]:
    services = [c.removeprefix("done_") for c in E6_COLUMNS if c.startswith("done_")]
    return [str(codes.get(s, 0)) for s in services]


NOV = ["month", "2026-11-01", "2026-11-30"]
YTD = ["ytd", "2026-01-01", "2026-11-30"]
# Per volunteer, from `active` on. vol1: the merged duplicate of H2 (9 Nov); one visit to H1
# (V1 + V1b) and V4 to H2; An, Bình and Dũng helped; completions VNeID An, safety An (once on
# the day), cashless Bình, VssID Dũng, all unique; DVC for Bình pending; 30 + 10 + 15 minutes;
# the follow-up of 20 Nov met on 22 Nov; two answers, both positive; 9, 10 and 30 Nov.
VOL1_NOV = ["1", "1", "1", "1", "0", "1", "2", "2", "2", "3", "4", "4", "0", "1",
            *done(vneid_l1=1, cashless=1, vssid=1, safety=1), "55", "1", "1", "100.0", "1", "1",
            "2", "100.0", "3", "2026-11-09", "2026-11-30"]
# vol2: H2 (new, 2 Nov); V3 (H2: Hạnh's VssID, partial) and V2 (H1: DVC Bình, safety An);
# 25 + 20 minutes; the follow-up of 18 Nov missed; "na" is no answer; the office's check of
# Hạnh's VssID failed; 2, 12 and 22 Nov.
VOL2_NOV = ["1", "0", "1", "1", "1", "0", "2", "2", "2", "3", "3", "3", "1", "0",
            *done(dvc_account=1, vssid=1, safety=1), "45", "1", "0", "0.0", "1", "0", "1",
            "0.0", "3", "2026-11-02", "2026-11-22"]
SUP1 = ["0", "0", *zeros(12), *done(), "0", "0", "0", "", "0", "0", "0", "", "0", "", ""]
VOL3_NOV = ["1", "1", "1", "1", "1", "0", "1", "1", "1", "0", "1", "1", "0", "0",
            *done(biz_qr=1), "10", "0", "0", "", "0", "0", "1", "100.0", "2", "2026-11-05",
            "2026-11-06"]
VOLW = ["1", "0", *zeros(12), *done(), "0", "0", "0", "", "0", "0", "0", "", "0", "", ""]


def e6(b: Built, **kw) -> list[dict[str, str]]:
    return b.tables(activity_tables, **kw)["volunteer_activity"]


def e7(b: Built, **kw) -> list[dict[str, str]]:
    return b.tables(activity_tables, **kw)["team_activity"]


def cells(row: dict[str, str], first: str) -> list[str]:
    columns = list(row)
    return [row[c] for c in columns[columns.index(first):]]


def test_volunteer_activity_by_hand(built):
    rows = e6(built, period="2026-11")
    assert ",".join(rows[0]) == E6_HEADER
    # month rows then year-to-date rows; tổ in configuration order, then the ward team
    assert [(r["period_type"], r["volunteer_id"]) for r in rows] == [
        (p, v) for p in ("month", "ytd") for v in ("sup1", "vol1", "vol2", "vol3", "volw")]
    by = {(r["period_type"], r["volunteer_id"]): r for r in rows}
    head = "period_type period_start period_end volunteer_name tdp_code role".split()
    assert [by[("month", "vol1")][c] for c in head] == [*NOV, "Hà Thị Thu", "tdp01", "member"]
    assert [by[("month", "sup1")][c] for c in head] == [*NOV, "Trần Văn Giám", "tdp01",
                                                        "leader"]
    assert [by[("ytd", "volw")][c] for c in head] == [*YTD, "Vi Văn Phường", "ward", "ward"]
    assert by[("month", "vol3")]["tdp_code"] == "tdp02"

    assert cells(by[("month", "vol1")], "active") == VOL1_NOV
    assert cells(by[("month", "vol2")], "active") == VOL2_NOV
    assert cells(by[("month", "sup1")], "active") == SUP1  # revoked, trained only in 2025
    assert cells(by[("month", "vol3")], "active") == VOL3_NOV
    assert cells(by[("month", "volw")], "active") == VOLW
    # the year to 30 Nov adds vol1's survey of H1 on 5 Oct; H4 (1 Dec local) is not in it
    ytd = list(VOL1_NOV)
    ytd[2:5] = ["2", "2", "1"]  # n_surveys, n_households_surveyed, n_new_households
    ytd[-3:] = ["4", "2026-10-05", "2026-11-30"]
    assert cells(by[("ytd", "vol1")], "active") == ytd
    assert cells(by[("ytd", "vol2")], "active") == VOL2_NOV
    assert cells(by[("ytd", "vol3")], "active") == VOL3_NOV


def test_month_boundary_is_cut_in_vietnam_time(built):
    # V4, at 23:30 on 30 Nov in Vietnam, is a November visit; H4, surveyed at 00:30 on 1 Dec
    # in Vietnam but uploaded on 30 Nov (UTC), is a December survey
    nov = {r["volunteer_id"]: r for r in e6(built, period="2026-11")}
    dec = {r["volunteer_id"]: r for r in e6(built, period="2026-12")
           if r["period_type"] == "month"}
    assert (nov["vol1"]["n_visits"], nov["vol1"]["last_activity_date"]) == ("2", "2026-11-30")
    assert (dec["vol1"]["n_visits"], dec["vol1"]["active_days"]) == ("0", "0")
    assert (dec["vol2"]["n_surveys"], dec["vol2"]["n_new_households"],
            dec["vol2"]["first_activity_date"]) == ("1", "1", "2026-12-01")
    year = {r["volunteer_id"]: r for r in e6(built, period="2026")}
    assert (year["vol2"]["n_surveys"], year["vol2"]["period_end"]) == ("2", "2026-12-31")
    # as of 30 Nov 16:00 UTC, V4 (uploaded 16:30 UTC) was not in yet
    early = {r["volunteer_id"]: r for r in e6(built, period="2026-11",
                                              as_of=at("2026-11-30T16:00:00"))}
    assert (early["vol1"]["n_visits"], early["vol1"]["done_vssid"]) == ("1", "0")


def test_team_activity_by_hand(built):
    rows = e7(built, period="2026-11")
    assert ",".join(rows[0]) == E7_HEADER
    assert [(r["period_type"], r["tdp_code"]) for r in rows] == [
        (p, t) for p in ("month", "ytd") for t in ("tdp01", "tdp02", "WARD")]
    by = {(r["period_type"], r["tdp_code"]): r for r in rows}
    assert [by[("month", "tdp01")][c] for c in ("period_start", "period_end", "tdp_name")] == [
        "2026-11-01", "2026-11-30", "Tổ dân phố 1"]
    assert by[("month", "WARD")]["tdp_name"] == ""
    # tdp01: vol1, vol2 and sup1 (revoked); four visits; H1 and H2 helped; An, Bình, Dũng and
    # Hạnh; 4 + 3 unique completions; 55 + 45 minutes; one follow-up met, one missed.
    # 31 Oct: H1 only, An without VNeID and Bình without DVC or cashless: I02 0/2, I04 0/1.
    # 30 Nov: Bình has DVC and cashless: I02 1/4 (An, Bình, Dũng, Hạnh), I04 1/2 (H1, H2).
    assert cells(by[("month", "tdp01")], "n_volunteers") == [
        "3", "2", "1", "4", "2", "4", "7", "100", "2", "1", "0.0", "25.0", "25.0", "100.0",
        "100.0", "0.0", "50.0", "50.0", "", "", "1.0"]
    # tdp02: nothing on 31 Oct; on 30 Nov Hà is a digital citizen, the business takes QR.
    assert cells(by[("month", "tdp02")], "n_volunteers") == [
        "1", "1", "1", "1", "1", "0", "1", "10", "0", "0", "", "100.0", "", "", "100.0", "",
        "100.0", "", "", "100.0", "1.0"]
    # the ward: the two teams and volw; 3 households helped by 4 active volunteers
    assert cells(by[("month", "WARD")], "n_volunteers") == [
        "5", "4", "2", "5", "3", "4", "8", "110", "2", "1", "0.0", "40.0", "40.0", "100.0",
        "100.0", "0.0", "66.7", "66.7", "", "100.0", "0.8"]
    # year to date: the day before 1 Jan had no data at all
    assert cells(by[("ytd", "tdp01")], "n_volunteers") == [
        "3", "2", "1", "4", "2", "4", "7", "100", "2", "1", "", "25.0", "", "", "100.0", "",
        "50.0", "", "", "", "1.0"]
    # the same submissions, counted by the report (E2) and by the teams
    wide = built.tables(report_tables, period="2026-11")["report_wide"]
    ward = next(r for r in wide if r["period_type"] == "month" and r["tdp_code"] == "WARD")
    team = by[("month", "WARD")]
    assert (team["n_unique_completions"], team["minutes_total"]) == (
        ward["A05_unique_completions"], ward["A06_minutes"]) == ("8", "110")


AWARD_COLUMNS = (
    "period_type,period_start,period_end,volunteer_id,volunteer_name,tdp_code,role,"
    "n_unique_completions,n_households_helped,n_followups_on_time,n_verified,n_verified_ok,"
    "award_score,rank")


def awards(session, project_id, ward, *, now, **kw):
    return award_tables(session, project_id, ward, **kw)  # the award year is not "today's"


def test_award_tables_cut_at_the_award_cutoff(built):
    built.ward = dataclasses.replace(built.ward, awards=AwardConfig(
        cutoff=dt.date(2026, 11, 15), score_weights=()))
    out = built.tables(awards)
    assert list(out) == ["volunteer_awards", "team_awards"]  # no weights: raw figures only
    assert ",".join(out["volunteer_awards"][0]) == E6_HEADER
    assert ",".join(out["team_awards"][0]) == E7_HEADER
    by = {r["volunteer_id"]: r for r in out["volunteer_awards"]}
    assert {(r["period_type"], r["period_start"], r["period_end"])
            for r in out["volunteer_awards"] + out["team_awards"]} == {
        ("ytd", "2026-01-01", "2026-11-15")}
    # to 15 Nov: vol1 has H1 and its duplicate survey, one visit (V1 + V1b), 3 unique
    # completions; the follow-up due on 20 Nov is not due yet
    columns = ("n_surveys n_duplicate_surveys n_visits n_unique_completions n_households_helped "
               "n_followups_due n_verified n_verified_ok minutes_total").split()
    assert [by["vol1"][c] for c in columns] == ["2", "1", "1", "3", "1", "0", "1", "1", "40"]
    assert [by["vol2"][c] for c in columns] == ["1", "0", "1", "1", "1", "0", "1", "0", "25"]
    with pytest.raises(ValueError, match="write the year"):
        built.tables(awards, period="2026-11")

    weights = (("n_unique_completions", 1.0), ("n_households_helped", 0.5),
               ("n_followups_on_time", 2.0))
    built.ward = dataclasses.replace(built.ward, awards=AwardConfig(
        cutoff=dt.date(2026, 11, 15), score_weights=weights))
    out = built.tables(awards, period="2026")
    assert list(out) == ["volunteer_awards", "team_awards", "award_scores"]
    assert ",".join(out["volunteer_awards"][0]) == E6_HEADER  # the weights add a file only
    scores = out["award_scores"]
    assert ",".join(scores[0]) == AWARD_COLUMNS
    # 3 + 0.5 × 1; 1 + 0.5 × 1 twice (tied, one rank); nothing for sup1 and volw
    assert [(r["volunteer_id"], r["award_score"], r["rank"]) for r in scores] == [
        ("vol1", "3.5", "1"), ("vol2", "1.5", "2"), ("vol3", "1.5", "2"), ("sup1", "0", "4"),
        ("volw", "0", "4")]
    assert [scores[0][c] for c in ("n_verified", "n_verified_ok", "period_end")] == [
        "1", "1", "2026-11-15"]


def test_score_weights_must_be_counts_of_e6():
    assert set(AWARD_METRICS) < set(E6_COLUMNS)
    ok = parse_ward_config(MINIMAL + "\n[awards]\ncutoff = 2026-09-30\n"
                           "[awards.score_weights]\nn_unique_completions = 1\n")
    assert ok.awards.score_weights == (("n_unique_completions", 1.0),)
    for metric in ("n_duplicate_surveys", "satisfaction_positive_pct", "n_vists"):
        with pytest.raises(ValueError, match=rf"awards\.score_weights\.{metric}: not a count"):
            parse_ward_config(MINIMAL + f"\n[awards.score_weights]\n{metric} = 1\n")


def _read(path: Path) -> str:
    return path.read_bytes().decode("utf-8")  # as written: BOM and \r\n kept


def test_export_activity_writes_e5_e6_e7(app, collect, xforms, cli, tmp_path):
    add(collect, xforms, "Phạm Văn Đức", phone="0983123456")
    tmp_path = tmp_path / "out"
    result = cli("export", "activity", "--period", "2026-11", "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    names = ["service_events.csv", "volunteer_activity.csv", "team_activity.csv"]
    assert [p.rsplit("/", 1)[1] for p in result.output.split()] == names
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names)
    for name, header in zip(names, (E5_HEADER, E6_HEADER, E7_HEADER), strict=True):
        assert _read(tmp_path / name).split("\r\n", 1)[0] == "\ufeff" + header
    teams = list(csv.DictReader(io.StringIO(_read(tmp_path / "team_activity.csv")[1:])))
    assert len(teams) == 42  # 20 tổ and WARD, for November and the year to date
    volunteers = list(csv.DictReader(io.StringIO(_read(tmp_path / "volunteer_activity.csv")[1:])))
    assert {(r["volunteer_id"], r["role"]) for r in volunteers} == {
        ("sup1", "leader"), ("vol1", "member")}

    result = cli("export", "activity", "--period", "2026-11", "--xlsx", "--out",
                 str(tmp_path / "x"))
    assert result.exit_code == 0, result.output
    book = load_workbook(result.output.strip(), read_only=True)
    assert book.sheetnames == list(REPORT_TABLES["activity"]) == [
        "service_events", "volunteer_activity", "team_activity"]

    result = cli("export", "activity", "--awards", "--out", str(tmp_path / "a"))
    assert result.exit_code == 0, result.output
    assert [p.rsplit("/", 1)[1] for p in result.output.split()] == [
        "volunteer_awards.csv", "team_awards.csv"]
    awards = list(csv.DictReader(io.StringIO(_read(tmp_path / "a/volunteer_awards.csv")[1:])))
    assert {r["period_end"] for r in awards} == {"2026-09-30"}  # forms/ward.toml's cut-off

    result = cli("export", "activity", "--awards", "--period", "2026-Q3", "--out",
                 str(tmp_path))
    assert result.exit_code == 1 and "write the year (YYYY)" in result.output
    result = cli("export", "indicators", "--awards", "--out", str(tmp_path))
    assert result.exit_code == 1 and "--awards goes with the activity export" in result.output
