"""`/reports`: the office issues a report; later downloads are the issued bytes, unchanged."""

from __future__ import annotations

import csv
import io
import re

from server.db.models import AuditEntry, IssuedReport
from server.domain import accounts
from tests.openrosa.conftest import rows
from tests.web.conftest import Browser


def _wide(data: bytes) -> dict:
    table = csv.DictReader(io.StringIO(data.decode("utf-8").removeprefix("\ufeff")))
    return next(r for r in table if r["tdp_code"] == "WARD" and r["period_type"] == "month")


def _links(html: str) -> list[str]:
    return re.findall(r'href="(/reports/\d+/[^"]+)"', html)


def test_issue_and_download_unchanged_after_a_late_upload(app, admin, add_household):
    add_household("Phạm Văn Đức", house="3")
    response = admin.post("/reports/issue", {"kind": "indicators", "period": "2026-11",
                                             "note": "CV 12/UBND"}, page="/reports")
    assert response.status_code == 302
    html = admin.get("/reports").get_data(as_text=True)
    assert "CV 12/UBND" in html and "Đã phát hành báo cáo số 1." in html
    links = _links(html)
    assert links == ["/reports/1/indicators_long.csv", "/reports/1/report_wide.csv",
                     "/reports/1/indicators.xlsx"]
    first = admin.get("/reports/1/report_wide.csv")
    assert first.status_code == 200 and first.headers["Content-Type"].startswith("text/csv")
    assert first.data.startswith("\ufeff".encode())
    assert _wide(first.data)["n_households_known"] == "1"

    add_household("Nguyễn Thị Lan", house="40")  # late upload
    live = admin.get("/exports/indicators/report_wide.csv?period=2026-11")
    assert _wide(live.get_data())["n_households_known"] == "2"
    again = admin.get("/reports/1/report_wide.csv")
    assert again.data == first.data
    assert admin.get("/reports/1/indicators.xlsx").data[:2] == b"PK"
    downloads = [a for a in rows(app, AuditEntry) if a.action == "report.download"]
    assert len(downloads) == 3


def test_a_team_leader_sees_only_its_own_teams_reports(app, ward, admin, sup1, add_household):
    add_household("Phạm Văn Đức", house="3")
    assert admin.post("/reports/issue", {"kind": "households", "period": "2026-11"},
                      page="/reports").status_code == 302
    assert sup1.post("/reports/issue", {"kind": "households", "period": "2026-11"},
                     page="/reports").status_code == 302
    [ward_report, team_report] = sorted(rows(app, IssuedReport), key=lambda r: r.id)
    assert (ward_report.team, team_report.team) == (None, "tdp01")
    html = sup1.get("/reports").get_data(as_text=True)
    assert all(link.startswith(f"/reports/{team_report.id}/") for link in _links(html))
    assert sup1.get(f"/reports/{ward_report.id}/households_register.csv").status_code == 404
    assert sup1.get(f"/reports/{team_report.id}/households_register.csv").status_code == 200
    # the ward office sees both
    html = admin.get("/reports").get_data(as_text=True)
    assert {link.split("/")[2] for link in _links(html)} == {str(ward_report.id),
                                                             str(team_report.id)}

    session = app.extensions["db"].session(write=True)
    accounts.create_user(session, "sup2", "supervisor", project_id=ward.project_id,
                         team="tdp02", password="another good password")
    session.commit()
    session.close()
    sup2 = Browser(app, remote_addr="10.0.0.9")
    assert sup2.login("sup2", "another good password").status_code == 302
    assert sup2.get(f"/reports/{team_report.id}/households_register.csv").status_code == 404


def test_bad_issue_requests_store_nothing(app, admin, sup1):
    response = admin.post("/reports/issue", {"kind": "indicators", "period": "2026-13"},
                          page="/reports")
    assert response.status_code == 302
    assert "month must be 01–12" in admin.get("/reports").get_data(as_text=True)
    assert admin.post("/reports/issue", {"kind": "submissions", "period": "2026-11"},
                      page="/reports").status_code == 400
    no_csrf = admin.client.post("/reports/issue", data={"kind": "indicators",
                                                        "period": "2026-11"})
    assert no_csrf.status_code == 400
    assert rows(app, IssuedReport) == []
    assert admin.get("/reports/7/report_wide.csv").status_code == 404
    assert admin.get("/reports/abc/x.csv").status_code == 404
    anonymous = app.test_client().get("/reports")
    assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]
