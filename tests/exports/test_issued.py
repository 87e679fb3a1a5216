"""Issued reports (domain §6.5): frozen as sent, downloaded again unchanged after late uploads,
and reproducible from their `data_cutoff` with `export --as-of`."""

from __future__ import annotations

import csv
import io

from tests.openrosa.test_households import add


def read(path) -> list[dict]:
    return list(csv.DictReader(io.StringIO(path.read_text("utf-8").removeprefix("\ufeff"))))


def ward_month(rows: list[dict]) -> dict:
    return next(r for r in rows if r["tdp_code"] == "WARD" and r["period_type"] == "month")


def test_issued_report_is_downloaded_unchanged_after_late_uploads(app, collect, xforms, cli,
                                                                  tmp_path):
    add(collect, xforms, "Phạm Văn Đức", phone="0983123456")
    result = cli("reports", "issue", "indicators", "--period", "2026-11", "--note", "CV 12/UBND")
    assert result.exit_code == 0, result.output
    head, *files = result.output.splitlines()
    report_id = head.split()[0]
    assert head.split()[1:3] == ["indicators", "2026-11"]
    assert [f.split()[0] for f in files] == [
        "indicators_long.csv", "report_wide.csv", "indicators.xlsx"]

    first = tmp_path / "first"
    assert cli("reports", "get", report_id, "--out", str(first)).exit_code == 0
    issued = read(first / "report_wide.csv")
    assert ward_month(issued)["n_households_known"] == "1"

    # a late upload changes the live figures…
    add(collect, xforms, "Nguyễn Thị Lan", house="40", phone="0912000111", year="1980")
    live = tmp_path / "live"
    assert cli("export", "indicators", "--period", "2026-11", "--out", str(live)).exit_code == 0
    assert ward_month(read(live / "report_wide.csv"))["n_households_known"] == "2"

    # …but not the issued report: the very same bytes, file by file
    again = tmp_path / "again"
    result = cli("reports", "get", report_id, "--out", str(again))
    assert result.exit_code == 0
    for name in ("indicators_long.csv", "report_wide.csv", "indicators.xlsx"):
        assert (again / name).read_bytes() == (first / name).read_bytes()

    # and the live export "as of" the issued data_cutoff gives the issued figures again
    cutoff = ward_month(issued)["data_cutoff"]
    rerun = tmp_path / "rerun"
    result = cli("export", "indicators", "--period", "2026-11", "--as-of", cutoff,
                 "--out", str(rerun))
    assert result.exit_code == 0, result.output
    strip = ("generated_at",)
    assert ([{k: v for k, v in r.items() if k not in strip}
             for r in read(rerun / "indicators_long.csv")]
            == [{k: v for k, v in r.items() if k not in strip}
                for r in read(first / "indicators_long.csv")])
    assert read(rerun / "report_wide.csv") == issued

    listing = cli("reports", "list").output.splitlines()
    assert [line.split()[:4] for line in listing] == [
        [report_id, "indicators", "2026-11", "WARD"]]
    assert listing[0].split()[-1] == "admin"


def test_a_teams_issued_report_has_only_its_rows(app, collect, xforms, cli, tmp_path):
    add(collect, xforms, "Phạm Văn Đức", phone="0983123456")
    result = cli("reports", "issue", "households", "--period", "2026-11", "--team", "tdp01")
    assert result.exit_code == 0, result.output
    report_id = result.output.split()[0]
    assert cli("reports", "get", report_id, "--out", str(tmp_path)).exit_code == 0
    rows = read(tmp_path / "households_register.csv")
    assert [r["tdp_code"] for r in rows] == ["tdp01"]
    assert "tdp01" in cli("reports", "list").output


def test_issue_errors_are_one_line(app, ward, cli, tmp_path):
    result = cli("reports", "issue", "indicators", "--period", "2026-13")
    assert result.exit_code == 1 and "month must be 01–12" in result.output
    result = cli("reports", "issue", "indicators", "--period", "2026-11", "--team", "tdp99")
    assert result.exit_code == 1 and result.output.startswith("error: unknown team 'tdp99'")
    result = cli("reports", "get", "99", "--out", str(tmp_path))
    assert result.exit_code == 1 and result.output.startswith("error: no issued report 99")
    result = cli("export", "indicators", "--period", "2026-11", "--as-of", "yesterday",
                 "--out", str(tmp_path))
    assert result.exit_code == 1 and "--as-of 'yesterday'" in result.output
    result = cli("export", "submissions", "--as-of", "2026-11-30T23:59:59",
                 "--out", str(tmp_path))
    assert result.exit_code == 1 and "--as-of applies to the reports" in result.output
    assert cli("reports", "list").output == ""
