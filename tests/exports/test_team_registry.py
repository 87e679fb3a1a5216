"""I07 reads the team registry: a member counts at T when joined_on ≤ T and left_on is empty
or after T; a departure entered after a report's cut-off does not change that report.

Tổ tdp03 (no household data needed: I07 depends on the registry alone), counted by hand:

| member | joined     | left                      | trained    | 31 Oct       | 30 Nov         |
|--------|------------|---------------------------|------------|--------------|----------------|
| an     | 2026-01-10 |                           | 2026-03-05 | yes, trained | yes, trained   |
| binh   | 2026-12-01 |                           | 2026-03-05 | no           | no             |
| chi    | 2026-02-01 | 2026-11-15                | 2026-03-05 | yes, trained | no             |
| dung   | 2026-02-01 | 2026-12-10                |            | yes          | yes            |
| em     | (account made 2026-05-01)              | 2026-06-01 | yes, trained | yes, trained   |
| giang  | 2026-01-01 | 2026-11-20, entered 5 Dec |            | yes          | as of 1 Dec    |

(31 Oct / 30 Nov: a member at that date, and trained in the year by then; giang counts at
30 Nov only in a report as of 1 Dec, before her departure was entered.)
"""

from __future__ import annotations

import datetime as dt
from datetime import UTC, datetime
from pathlib import Path

import pytest

from server.db.models import User, VolunteerTraining
from server.domain import accounts, team_registry
from server.domain.ward import load_ward_config
from server.exports.indicators import report_tables
from tests.exports.test_indicators import csv_rows
from tests.support.factories import make_ward

TZ = "Asia/Ho_Chi_Minh"
NOW = datetime(2026, 12, 20, 2, 0, tzinfo=UTC)
CUTOFF = datetime(2026, 11, 30, 17, 0, tzinfo=UTC)  # 1 Dec 2026 00:00 in Vietnam


@pytest.fixture
def registry(app):
    ward = make_ward(app, forms=False)
    session = app.extensions["db"].session(write=True)
    try:
        def member(username, joined, created="2026-01-01T01:00:00"):
            user = accounts.create_user(session, username, "volunteer",
                                        project_id=ward.project_id, team="tdp03",
                                        joined_on=joined).user
            user.created_at = datetime.fromisoformat(created).replace(tzinfo=UTC)
            return user

        an, binh = member("an", "2026-01-10"), member("binh", "2026-12-01")
        chi, dung = member("chi", "2026-02-01"), member("dung", "2026-02-01")
        em = member("em", None, created="2026-05-01T03:00:00")
        giang = member("giang", "2026-01-01")
        for user, left, entered in ((chi, "2026-11-15", "2026-11-15T09:00:00"),
                                    (dung, "2026-12-10", "2026-12-10T09:00:00"),
                                    (giang, "2026-11-20", "2026-12-05T09:00:00")):
            accounts.deactivate(session, user, left)
            user.left_recorded_at = datetime.fromisoformat(entered).replace(tzinfo=UTC)
        for day, people in ((dt.date(2026, 3, 5), [an, binh, chi]), (dt.date(2026, 6, 1), [em])):
            training = team_registry.record_session(
                session, ward.project_id, day=day, topic="Kỹ năng số cơ bản",
                organiser="UBND phường", recorded_by=None)
            training.created_at = datetime.combine(day, dt.time(3), tzinfo=UTC)
            for row in team_registry.add_attendees(session, training, people, recorded_by=None):
                assert row.project_id == ward.project_id
        session.flush()
        for row in session.query(VolunteerTraining):
            row.created_at = datetime.fromisoformat(row.date + "T03:00:00").replace(tzinfo=UTC)
        session.commit()
    finally:
        session.close()
    return ward


def i07(app, project_id: int, period: str, as_of=None) -> tuple[str, str]:
    session = app.extensions["db"].session()
    try:
        tables = report_tables(session, project_id, load_ward_config(
            Path(app.config["WARD_CONFIG"])), period=period, as_of=as_of, timezone=TZ, now=NOW)
        wide = {t.name: csv_rows(t) for t in tables}["report_wide"]
    finally:
        session.close()
    [row] = [r for r in wide if r["tdp_code"] == "tdp03" and r["period_type"] == "month"]
    return row["I07_num"], row["I07_den"]


def test_active_members_follow_joined_and_left_dates(app, registry):
    # 31 Oct: an, chi, em trained / an, chi, dung, em, giang members
    assert i07(app, registry.project_id, "2026-10") == ("3", "5")
    # 30 Nov: an, em trained / an, dung, em members
    assert i07(app, registry.project_id, "2026-11") == ("2", "3")


def test_a_departure_entered_after_the_cut_off_is_ignored(app, registry):
    # giang left on 20 Nov, but the office entered it on 5 Dec: as of 1 Dec she was active.
    assert i07(app, registry.project_id, "2026-11", as_of=CUTOFF) == ("2", "4")


def test_attendance_entered_after_the_cut_off_is_ignored(app, registry):
    session = app.extensions["db"].session(write=True)
    try:
        dung = session.query(User).filter_by(username="dung").one()
        training = team_registry.record_session(
            session, registry.project_id, day=dt.date(2026, 11, 28), topic="An toàn số",
            organiser="Tổ tdp03", recorded_by=None)
        team_registry.add_attendees(session, training, [dung], recorded_by=None)
        session.flush()
        row = session.query(VolunteerTraining).filter_by(session_id=training.id).one()
        row.created_at = datetime(2026, 12, 2, 3, 0, tzinfo=UTC)  # entered after the cut-off
        session.commit()
    finally:
        session.close()
    assert i07(app, registry.project_id, "2026-11") == ("3", "3")
    assert i07(app, registry.project_id, "2026-11", as_of=CUTOFF) == ("2", "4")
