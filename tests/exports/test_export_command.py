"""`python -m server export KIND …` writes the files and prints their paths."""

from __future__ import annotations

import csv
import io
import zipfile

from tests.openrosa.test_households import add


def test_export_submissions_and_dedupe(app, collect, xforms, cli, tmp_path):
    add(collect, xforms, "=Phạm Văn Đức", phone="0983123456")
    add(collect, xforms, "Nguyễn Văn Hùng", house="5", year="1970")
    add(collect, xforms, "Nguyễn Văn Hưng", house="5", year="1970")
    result = cli("export", "submissions", "--form", "household_survey", "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    paths = result.output.split()
    assert [p.rsplit("/", 1)[1] for p in paths] == ["household_survey.zip",
                                                    "household_survey.csv"]
    text = (tmp_path / "household_survey.csv").read_text("utf-8")
    assert text.startswith("\ufeffSubmissionDate,")
    rows = list(csv.DictReader(io.StringIO(text.removeprefix("\ufeff"))))
    assert len(rows) == 3
    assert rows[0]["g_head-head_name"] == "'=Phạm Văn Đức"
    with zipfile.ZipFile(tmp_path / "household_survey.zip") as z:
        assert "household_survey-members.csv" in z.namelist()

    result = cli("export", "dedupe", "--out", str(tmp_path))
    assert result.exit_code == 0
    queue = (tmp_path / "dedupe_review_queue.csv").read_text("utf-8").removeprefix("\ufeff")
    [pair] = list(csv.DictReader(io.StringIO(queue)))
    assert pair["rule"] == "R4c" and pair["status"] == "pending"
    assert pair["address_a"] == "Đường Bình Thuận, số 5"
    assert (tmp_path / "merge_log.csv").exists()

    result = cli("export", "dedupe", "--xlsx", "--out", str(tmp_path))
    assert result.output.strip().endswith("dedupe.xlsx")


def test_export_errors_are_one_line(cli, app, ward, tmp_path):
    result = cli("export", "submissions", "--form", "nope", "--out", str(tmp_path))
    assert result.exit_code == 1 and result.output.startswith("error: no form 'nope'")
    result = cli("export", "indicators", "--period", "2026-13", "--out", str(tmp_path))
    assert result.exit_code == 1 and "month must be 01–12" in result.output


def test_export_reports(app, collect, xforms, cli, tmp_path):
    add(collect, xforms, "Phạm Văn Đức", phone="0983123456")
    for kind, names in (("indicators", ["indicators_long.csv", "report_wide.csv"]),
                        ("households", ["households_register.csv", "members_register.csv"]),
                        ("activity", ["service_events.csv", "volunteer_activity.csv",
                                      "team_activity.csv"])):
        result = cli("export", kind, "--period", "2026-11", "--out", str(tmp_path))
        assert result.exit_code == 0, result.output
        assert [p.rsplit("/", 1)[1] for p in result.output.split()] == names
    wide = (tmp_path / "report_wide.csv").read_text("utf-8").removeprefix("\ufeff")
    rows = list(csv.DictReader(io.StringIO(wide)))
    # the month rows and the year-to-date rows: 20 tổ plus WARD each
    assert [(r["period_type"], r["tdp_code"]) for r in rows if r["tdp_code"] == "WARD"] == [
        ("month", "WARD"), ("ytd", "WARD")]
    assert len(rows) == 42


def test_export_submissions_filters(app, collect, xforms, cli, tmp_path):
    add(collect, xforms, "Phạm Văn Đức", phone="0983123456")
    add(collect, xforms, "Lê Thị Lan", house="7", tdp="tdp02")

    def heads(*args):
        result = cli("export", "submissions", "--form", "household_survey",
                     "--out", str(tmp_path), *args)
        assert result.exit_code == 0, result.output
        text = (tmp_path / "household_survey.csv").read_text("utf-8").removeprefix("\ufeff")
        return sorted(r["g_head-head_name"] for r in csv.DictReader(io.StringIO(text)))

    assert heads("--tdp", "tdp02") == ["Lê Thị Lan"]
    assert heads("--submitter", "vol1", "--review-state", "received") == [
        "Lê Thị Lan", "Phạm Văn Đức"]
    assert heads("--review-state", "approved") == []
    result = cli("export", "submissions", "--tdp", "tdp99", "--out", str(tmp_path))
    assert result.exit_code == 1 and result.output.startswith("error: unknown tổ 'tdp99'")
    result = cli("export", "submissions", "--submitter", "nobody", "--out", str(tmp_path))
    assert result.exit_code == 1 and "no user 'nobody'" in result.output
    result = cli("export", "indicators", "--tdp", "tdp01", "--out", str(tmp_path))
    assert result.exit_code == 1 and "filter the submissions export only" in result.output
