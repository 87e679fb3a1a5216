"""Form attachments the server builds for the requesting user (domain §5).

UTF-8 without BOM, `name,label,…` header first: a BOM would break Collect's `name` column.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.db.models import User

HOUSEHOLD_COLUMNS = (
    "name", "label", "__version", "tdp", "street", "street_other", "alley", "house_no",
    "landmark", "head_name", "head_birth_year", "phone_tail", "n_members", "consent", "capable",
    "helper", "business", "biz_cashless", "survey_date", "geometry", "needs_followup",
    "followup_date", "last_visit_date", "last_visitor",
)
MEMBER_COLUMNS = ("name", "label", "hh", "birth_year", "sex")
VOLUNTEER_COLUMNS = ("name", "label", "tdp")


def to_csv(header: Iterable[str], rows: Iterable[Iterable[object]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


def team_label(team: str | None) -> str:
    if team and team.startswith("tdp") and team[3:].isdigit():
        return f"Tổ {int(team[3:])}"
    return "Phường"


def volunteers_csv(session: Session, project_id: int) -> bytes:
    users = session.scalars(
        select(User).where(User.project_id == project_id, User.role == "volunteer",
                           User.active.is_(True)).order_by(User.username)
    )
    return to_csv(VOLUNTEER_COLUMNS, (
        (u.username, f"{u.display_name} – {team_label(u.team)}", u.team or "ward") for u in users
    ))


def households_csv(session: Session, project_id: int, user: User) -> bytes:
    # Household entities are registered from surveys by the households module; until a
    # project has any, every user gets the header alone (a valid, empty entity list).
    return to_csv(HOUSEHOLD_COLUMNS, ())


def members_csv(session: Session, project_id: int, user: User) -> bytes:
    return to_csv(MEMBER_COLUMNS, ())


def render(session: Session, filename: str, project_id: int, user: User) -> bytes:
    if filename == "volunteers.csv":
        return volunteers_csv(session, project_id)
    if filename == "households.csv":
        return households_csv(session, project_id, user)
    if filename == "members.csv":
        return members_csv(session, project_id, user)
    raise KeyError(filename)
