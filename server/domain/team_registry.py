"""The team registry the office keeps (domain §6.3, I07): who is a member of which tổ's team
and from when to when, and the training sessions they attended.

Attendance is stored as one VolunteerTraining row per member, the rows I07 counts; a
session's rows copy its date, topic and organiser.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.db.models import TrainingSession, User, VolunteerTraining

MEMBER_ROLES = ("volunteer", "supervisor")
WARD_TEAM = "ward"


def joined_date(user: User, zone: str) -> dt.date:
    """The day the member joined; without a registry date, the day the account was made."""
    if user.joined_on:
        return dt.date.fromisoformat(user.joined_on)
    return user.created_at.astimezone(ZoneInfo(zone)).date()


def member_on(user: User, day: dt.date, zone: str) -> bool:
    """A member of its team on `day`: joined by then and not yet left (left_on excluded)."""
    if user.left_on:
        return joined_date(user, zone) <= day < dt.date.fromisoformat(user.left_on)
    return user.active and joined_date(user, zone) <= day


def team_of(user: User) -> str:
    return user.team or WARD_TEAM


def members(session: Session, project_id: int, team: str | None) -> list[User]:
    """Volunteers and supervisors of the project (of one team when `team` is given)."""
    query = select(User).where(User.project_id == project_id, User.role.in_(MEMBER_ROLES))
    if team is not None:
        query = query.where(User.team == team)
    return sorted(session.scalars(query),
                  key=lambda u: (team_of(u) == WARD_TEAM, team_of(u), u.role != "supervisor",
                                 u.display_name.casefold(), u.username))


def trainings_by_member(session: Session, user_ids: Iterable[int]
                        ) -> dict[int, list[VolunteerTraining]]:
    """Each member's attended trainings, latest first."""
    ids = list(user_ids)
    out: dict[int, list[VolunteerTraining]] = defaultdict(list)
    if not ids:
        return out
    rows = session.scalars(select(VolunteerTraining).where(VolunteerTraining.user_id.in_(ids))
                           .order_by(VolunteerTraining.date.desc(), VolunteerTraining.id.desc()))
    for row in rows:
        out[row.user_id].append(row)
    return out


def record_session(session: Session, project_id: int, *, day: dt.date, topic: str,
                   organiser: str, recorded_by: User | None) -> TrainingSession:
    training = TrainingSession(project_id=project_id, date=day.isoformat(), topic=topic,
                               organiser=organiser,
                               recorded_by=recorded_by.id if recorded_by else None)
    session.add(training)
    session.flush()
    return training


def attendee_ids(session: Session, training: TrainingSession) -> set[int]:
    return set(session.scalars(select(VolunteerTraining.user_id).where(
        VolunteerTraining.session_id == training.id)))


def add_attendees(session: Session, training: TrainingSession, people: Iterable[User], *,
                  recorded_by: User | None) -> list[User]:
    """Records that `people` attended; those already recorded are skipped. Returns the added."""
    already = attendee_ids(session, training)
    added = []
    for user in people:
        if user.id in already or user.project_id != training.project_id:
            continue
        session.add(VolunteerTraining(
            project_id=training.project_id, user_id=user.id, date=training.date,
            topic=training.topic, organiser=training.organiser, session_id=training.id,
            recorded_by=recorded_by.id if recorded_by else None))
        already.add(user.id)
        added.append(user)
    session.flush()
    return added


def sessions(session: Session, project_id: int) -> list[TrainingSession]:
    return list(session.scalars(select(TrainingSession).where(
        TrainingSession.project_id == project_id).order_by(TrainingSession.date.desc(),
                                                           TrainingSession.id.desc())))
