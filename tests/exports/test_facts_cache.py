"""One load of the facts serves several reports, and never outlives the data it was read from.

The fixture ward is the one of test_indicators.py (figures worked out by hand there); at
30 Nov 2026 tdp01 has 3 known households and I07 = 1 trained of 2 team members, tdp03 has 2
known households.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from server.db.models import HouseholdStatus, User
from server.domain import accounts
from server.exports import facts_cache
from server.exports.activity import activity_tables
from server.exports.indicators import report_tables
from server.exports.registers import register_tables
from tests.exports.test_indicators import (
    NOW,
    Built,
    _office,
    at,
    build_ward,
    csv_rows,
    long_index,
    upload_late,
)


@pytest.fixture
def built(app, monkeypatch) -> Built:
    return build_ward(app, monkeypatch)


@pytest.fixture
def loads(monkeypatch) -> list[int]:
    """One entry per load of the facts from the database."""
    calls: list[int] = []
    real = facts_cache.load_facts

    def counted(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(facts_cache, "load_facts", counted)
    return calls


def figure(built: Built, tdp: str, code: str) -> tuple[str, str]:
    rows = long_index(built.tables(report_tables, period="2026-11")["indicators_long"])
    row = rows[("month", tdp, code)]
    return row["numerator"], row["denominator"]


def test_the_reports_share_one_load_until_a_new_upload(built, loads):
    for build in (report_tables, register_tables, activity_tables):
        built.tables(build, period="2026-11")
        built.tables(build, period="2026")
    assert len(loads) == 1

    upload_late(built)  # H6 in tdp02, surveyed 28 Nov
    assert figure(built, "tdp02", "I00") == ("3", "8")
    assert len(loads) == 2
    households = built.tables(register_tables, period="2026-11")["households_register"]
    assert sum(row["tdp_code"] == "tdp02" for row in households) == 4  # H4, H5, H7 and H6
    assert len(loads) == 2


def test_a_departure_and_an_office_record_show_at_once(built, loads):
    assert figure(built, "tdp01", "I07") == ("1", "2")
    session = built.app.extensions["db"].session(write=True)
    try:  # the account row changes in place: no new row, no new id
        accounts.deactivate(session, session.scalar(select(User).where(User.username == "sup1")),
                            "2026-11-20")
        session.commit()
    finally:
        session.close()
    assert figure(built, "tdp01", "I07") == ("1", "1")

    _office(built, HouseholdStatus(project_id=built.project_id, entity_id=built.hh["H1"],
                                   status="moved_out", date="2026-11-25",
                                   created_at=at("2026-11-25T05:00:00")))
    assert figure(built, "tdp01", "I00") == ("2", "10")
    assert len(loads) == 3


def test_what_a_rolled_back_transaction_saw_is_not_reused(built):
    session = built.app.extensions["db"].session(write=True)
    try:
        session.add(HouseholdStatus(project_id=built.project_id, entity_id=built.hh["H1"],
                                    status="moved_out", date="2026-11-25",
                                    created_at=at("2026-11-25T05:00:00")))
        session.flush()
        inside = long_index(csv_rows(next(
            t for t in report_tables(session, built.project_id, built.ward, period="2026-11",
                                     timezone="Asia/Ho_Chi_Minh", now=NOW)
            if t.name == "indicators_long")))
        assert inside[("month", "tdp01", "I00")]["numerator"] == "2"
        session.rollback()
    finally:
        session.close()
    # another record takes the place (and, on SQLite, the id) of the rolled-back one
    _office(built, HouseholdStatus(project_id=built.project_id, entity_id=built.hh["H8"],
                                   status="moved_out", date="2026-11-25",
                                   created_at=at("2026-11-25T05:00:00")))
    assert figure(built, "tdp01", "I00") == ("3", "10")
    assert figure(built, "tdp03", "I00") == ("1", "5")
