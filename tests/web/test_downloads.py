"""`/exports`: every export kind as links; CSV with BOM, streamed; .xlsx and zip files."""

from __future__ import annotations

import csv
import io
import re
import zipfile

from server.db.models import DedupePair
from server.domain import accounts
from tests.openrosa.conftest import rows


def _get(browser, path):
    response = browser.get(path)
    data = response.get_data()
    response.close()
    return response, data


def test_exports_page_lists_every_kind(ward, sup1):
    html = sup1.get("/exports").get_data(as_text=True)
    links = set(re.findall(r'href="(/exports/[^"]+)"', html))
    for expected in ("/exports/dedupe/dedupe_review_queue.csv", "/exports/dedupe/merge_log.csv",
                     "/exports/dedupe.xlsx", "/exports/indicators/indicators_long.csv",
                     "/exports/indicators/report_wide.csv",
                     "/exports/households/households_register.csv",
                     "/exports/activity/service_events.csv",
                     "/exports/activity/volunteer_activity.csv",
                     "/exports/activity/team_activity.csv", "/exports/activity.xlsx",
                     "/exports/submissions/household_survey/household_survey.csv",
                     "/exports/submissions/household_survey.csv.zip".replace(".csv.zip", ".zip"),
                     "/exports/submissions/support_visit.xlsx"):
        assert expected in links, expected


def test_dedupe_csv_has_a_bom_and_the_leaders_rows(app, sup1, admin, add_household):
    add_household("Nguyễn Văn Hùng", house="5", year="1970")
    add_household("Nguyễn Văn Hưng", house="5", year="1970")
    response, data = _get(sup1, "/exports/dedupe/dedupe_review_queue.csv")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/csv")
    assert "dedupe_review_queue.csv" in response.headers["Content-Disposition"]
    assert data.startswith(b"\xef\xbb\xbf")
    table = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
    [pair] = rows(app, DedupePair)
    assert [r["pair_id"] for r in table] == [str(pair.id)]
    # the streamed rows' database connection went back to the pool with the last row
    assert app.extensions["db"].engine.pool.checkedout() == 0
    assert {table[0]["head_name_a"], table[0]["head_name_b"]} == {"Nguyễn Văn Hùng",
                                                                  "Nguyễn Văn Hưng"}


def test_raw_submissions_are_limited_to_the_leaders_tdp(sup1, admin, add_household):
    add_household("Nguyễn Văn Hùng", tdp="tdp01")
    add_household("Lê Thị Lan", tdp="tdp02")
    path = "/exports/submissions/household_survey/household_survey.csv"
    _response, mine = _get(sup1, path)
    assert mine.startswith(b"\xef\xbb\xbf")
    assert "Nguyễn Văn Hùng" in mine.decode() and "Lê Thị Lan" not in mine.decode()
    _response, everything = _get(admin, path)
    assert "Lê Thị Lan" in everything.decode()
    response, data = _get(admin, "/exports/submissions/household_survey.zip")
    assert response.headers["Content-Type"] == "application/zip"
    names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    assert "household_survey.csv" in names


def test_xlsx_and_indicators(ward, admin, add_household):
    add_household("Nguyễn Văn Hùng", tdp="tdp01")
    response, data = _get(admin, "/exports/dedupe.xlsx")
    assert response.status_code == 200 and data.startswith(b"PK")
    response, data = _get(admin, "/exports/indicators/report_wide.csv?period=2026-11")
    assert response.status_code == 200 and data.startswith(b"\xef\xbb\xbf")
    wide = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
    assert wide[-1]["tdp_code"] == "WARD"
    assert admin.get("/exports/indicators/report_wide.csv?period=nope").status_code == 400


def test_activity_tables_keep_to_the_leaders_team(app, ward, sup1, admin):
    session = app.extensions["db"].session(write=True)
    accounts.create_user(session, "vol9", "volunteer", project_id=ward.project_id, team="tdp02",
                         display_name="Lê Văn Chín")
    session.commit()
    session.close()

    def table(browser, name):
        response, data = _get(browser, f"/exports/activity/{name}.csv?period=2026-11")
        assert response.status_code == 200 and data.startswith(b"\xef\xbb\xbf")
        return list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))

    # the leader of tdp01 gets its own team's volunteers and its tổ's row, nobody else's
    assert [(r["period_type"], r["volunteer_id"], r["role"])
            for r in table(sup1, "volunteer_activity")] == [
        ("month", "sup1", "leader"), ("month", "vol1", "member"), ("ytd", "sup1", "leader"),
        ("ytd", "vol1", "member")]
    assert {r["tdp_code"] for r in table(sup1, "team_activity")} == {"tdp01"}
    # the office sees every team and the ward row
    assert {r["volunteer_id"] for r in table(admin, "volunteer_activity")} == {
        "sup1", "vol1", "vol9"}
    teams = {r["tdp_code"] for r in table(admin, "team_activity")}
    assert {"tdp01", "tdp02", "WARD"} <= teams
    response, data = _get(sup1, "/exports/activity.xlsx?period=2026-11")
    assert response.status_code == 200 and data.startswith(b"PK")
    assert sup1.get("/exports/activity/team_activity.csv?period=2026-99").status_code == 400
    # service events moved from the registers to the activity downloads
    assert sup1.get("/exports/households/service_events.csv").status_code == 404


def test_raw_filters_by_review_state_tdp_and_submitter(app, sup1, admin, add_household):
    add_household("Nguyễn Văn Hùng", tdp="tdp01")
    add_household("Lê Thị Lan", tdp="tdp02")
    path = "/exports/submissions/household_survey/household_survey.csv"

    def heads(browser, query):
        _response, data = _get(browser, f"{path}?{query}")
        rows = csv.DictReader(io.StringIO(data.decode("utf-8-sig")))
        return sorted(r["g_head-head_name"] for r in rows)

    assert heads(admin, "tdp=tdp02") == ["Lê Thị Lan"]
    assert heads(admin, "submitter=vol1") == ["Lê Thị Lan", "Nguyễn Văn Hùng"]
    assert heads(admin, "state=approved") == []
    assert heads(admin, "state=received&tdp=tdp01") == ["Nguyễn Văn Hùng"]
    # a leader keeps to its own tổ whatever it asks for
    assert heads(sup1, "tdp=tdp02") == ["Nguyễn Văn Hùng"]
    for bad in ("state=done", "tdp=tdp99", "submitter=nobody"):
        assert admin.get(f"{path}?{bad}").status_code == 400
    # the page's links carry the filters to every raw download
    html = admin.get("/exports?tdp=tdp02&state=received").get_data(as_text=True)
    assert ("/exports/submissions/household_survey.zip?state=received&amp;tdp=tdp02" in html
            or "/exports/submissions/household_survey.zip?tdp=tdp02&amp;state=received" in html)
