"""Form attachments the server builds for the requesting user (domain §5).

UTF-8 without BOM, `name,label,…` header first: a BOM would break Collect's `name` column.
Entity lists are cached per (project, file, tổ scope) and reused while the dataset's revision
is unchanged, so a formList or manifest request does not rebuild them.
"""

from __future__ import annotations

import csv
import hashlib
import io
import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.db.models import User
from server.domain import entities

HOUSEHOLDS = "households"
HOUSEHOLD_COLUMNS = (
    "name", "label", "__version", "tdp", "street", "street_other", "alley", "house_no",
    "landmark", "head_name", "head_birth_year", "phone_tail", "n_members", "consent", "capable",
    "helper", "business", "biz_cashless", "survey_date", "geometry", "needs_followup",
    "followup_date", "last_visit_date", "last_visitor",
)
MEMBER_COLUMNS = ("name", "label", "hh", "birth_year", "sex")
VOLUNTEER_COLUMNS = ("name", "label", "tdp")


@dataclass(frozen=True)
class Generated:
    data: bytes
    md5: str


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


def scope_of(user: User) -> str | None:
    """The tổ whose households a user's phone gets; None = the whole ward."""
    if user.team and user.team != "ward":
        return user.team
    return None


class ListCache:
    """The generated lists, one entry per list (project, file, scope): its latest revision.

    Why not every revision seen: each change to a household makes a new revision, and the
    ward's households.csv of 8,000 rows is a megabyte or two; kept per revision, a day of
    uploads would pile hundreds of stale copies into every worker."""

    def __init__(self, size: int = 512):
        self._items: OrderedDict[tuple, tuple[int, Generated]] = OrderedDict()
        self._size = size  # lists kept: scopes × files × projects
        self._lock = threading.Lock()

    def get_or_build(self, key: tuple, revision: int, build,
                     keep=lambda: True) -> Generated:
        """The list `key` as of `revision`, cached or built; a new one replaces an older
        revision of the same list, only when `keep()`."""
        with self._lock:
            hit = self._items.get(key)
            if hit is not None and hit[0] == revision:
                self._items.move_to_end(key)
                return hit[1]
        data = build()
        item = Generated(data, hashlib.md5(data).hexdigest())  # noqa: S324 (OpenRosa's hash)
        if not keep():
            return item
        with self._lock:
            held = self._items.get(key)
            if held is None or held[0] < revision:  # a slower, older build never wins
                self._items[key] = (revision, item)
                self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return item

    def __len__(self) -> int:
        return len(self._items)


def volunteers_csv(session: Session, project_id: int) -> bytes:
    users = session.scalars(
        select(User).where(User.project_id == project_id, User.role == "volunteer",
                           User.active.is_(True)).order_by(User.username)
    )
    return to_csv(VOLUNTEER_COLUMNS, (
        (u.username, f"{u.display_name} – {team_label(u.team)}", u.team or "ward") for u in users
    ))


def households_csv(session: Session, project_id: int, scope: str | None) -> bytes:
    def row(e):
        p = e.properties
        return [e.id, e.label, e.version, *(p.get(c, "") for c in HOUSEHOLD_COLUMNS[3:])]

    return to_csv(HOUSEHOLD_COLUMNS,
                  (row(e) for e in entities.live_entities(session, project_id, HOUSEHOLDS, scope)))


def members_csv(session: Session, project_id: int, scope: str | None) -> bytes:
    from server.domain import households

    return to_csv(MEMBER_COLUMNS, households.member_rows(session, project_id, scope))


def render(session: Session, cache: ListCache, filename: str, project_id: int,
           user: User) -> Generated:
    if filename == "volunteers.csv":  # a few dozen rows: built every time, always current
        data = volunteers_csv(session, project_id)
        return Generated(data, hashlib.md5(data).hexdigest())  # noqa: S324
    builders = {"households.csv": households_csv, "members.csv": members_csv}
    if filename not in builders:
        raise KeyError(filename)
    scope = scope_of(user)
    rev = entities.revision(session, project_id, HOUSEHOLDS)
    # On PostgreSQL each statement of a read sees the latest commits, so a list built while
    # another request (or another app server) committed may hold rows of a later revision.
    # It is kept under `rev` only when the revision did not move meanwhile: every process
    # then caches the same bytes for the same revision.
    return cache.get_or_build(
        (project_id, filename, scope), rev,
        lambda: builders[filename](session, project_id, scope),
        keep=lambda: entities.revision(session, project_id, HOUSEHOLDS) == rev)
