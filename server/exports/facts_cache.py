"""The report facts of a project, loaded once and reused while the data they read is unchanged.

Why: one export run builds several reports (indicators, registers, activity) and a person
downloads them one after another; each would otherwise load and parse every submission again.

Why a revision instead of a time limit: a report must never show facts older than the data,
so every reuse first asks the database one cheap question (counts, largest ids, latest
decision times, a digest of the team accounts) and loads again when any answer changed. The
answers cover every way the facts can change: new or edited uploads, merges and their undoing,
review decisions, office records (statuses, trainings, spot checks), entity changes (the list
revision the entity list itself relies on), erasures (which rewrite stored fields) and
account changes (team, leaving date). Facts are never changed once loaded (the figures derived
from them are added to `Facts.memo`, keyed by what they depend on), so one object can serve
several reports and threads.
"""

from __future__ import annotations

import datetime as dt
import threading
import weakref
from collections import OrderedDict

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from server.db.models import (
    AuditEntry,
    DedupePair,
    Entity,
    Form,
    HouseholdSnapshot,
    HouseholdStatus,
    ListRevision,
    MergeLogEntry,
    ServiceCheck,
    Submission,
    SubmissionVersion,
    User,
    VolunteerTraining,
)
from server.domain import dedupe
from server.domain.erasure import ACTION as ERASURE  # it rewrites stored fields in place
from server.exports.facts import Facts, load_facts

__all__ = ["cached_facts"]

#: Facts kept per database, the least recently used dropped first. The facts of 8,000
#: households take about 70 MB in each worker that built them: one entry keeps a server of two
#: workers near its memory budget, and still serves every report kind of one download round.
MAX_ENTRIES = 1

_lock = threading.Lock()
# keyed by the engine's connection pool, so two databases never share facts and a disposed
# engine's entries go with it
_by_database: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _counted(model, *extra) -> list:
    """count(*) and max(id) of a table (inserts and deletes), plus the `extra` aggregates."""
    return [select(func.count()).select_from(model).scalar_subquery(),
            select(func.max(model.id)).scalar_subquery(),
            *(select(e).scalar_subquery() for e in extra)]


def _revision(session: Session) -> tuple:
    """What the facts depend on, in one query plus the (small) accounts table."""
    columns = [
        *_counted(SubmissionVersion),
        *_counted(Submission),
        *_counted(HouseholdSnapshot),
        *_counted(Form),
        *_counted(MergeLogEntry, func.count(MergeLogEntry.undone_at),
                  func.max(MergeLogEntry.undone_at)),
        *_counted(DedupePair, func.count(DedupePair.decided_at), func.max(DedupePair.decided_at),
                  func.count(DedupePair.decision)),
        *_counted(ServiceCheck),
        *_counted(HouseholdStatus),
        *_counted(VolunteerTraining),
        select(func.count()).select_from(Entity).scalar_subquery(),
        select(func.max(Entity.updated_at)).scalar_subquery(),
        select(func.coalesce(func.sum(ListRevision.revision), 0)).scalar_subquery(),
        select(func.max(AuditEntry.id)).where(AuditEntry.action == ERASURE)
        .scalar_subquery(),
    ]
    counts = tuple(session.execute(select(*columns)).one())
    accounts = tuple(tuple(row) for row in session.execute(
        select(User.id, User.username, User.display_name, User.role, User.project_id, User.team,
               User.active, User.created_at, User.joined_on, User.left_on,
               User.left_recorded_at).order_by(User.id)))
    return counts, accounts


def cached_facts(session: Session, project_id: int, *, as_of: dt.datetime | None,
                 timezone: str, config: dedupe.DedupeConfig) -> Facts:
    """`load_facts(...)`, or the facts loaded earlier with the same arguments when the
    database has not changed since. A writing session loads its own: what it has written
    may still be rolled back, and SQLite would then hand the same ids to other rows."""
    bind = session.get_bind()
    if bind.get_execution_options().get("write"):
        return load_facts(session, project_id, as_of=as_of, timezone=timezone, config=config)
    pool = bind.pool
    key = (project_id, as_of, timezone, config)
    revision = _revision(session)
    with _lock:
        entries = _by_database.setdefault(pool, OrderedDict())
        found = entries.get(key)
        if found is not None and found[0] == revision:
            entries.move_to_end(key)
            return found[1]
    facts = load_facts(session, project_id, as_of=as_of, timezone=timezone, config=config)
    with _lock:
        entries = _by_database.setdefault(pool, OrderedDict())
        entries[key] = (revision, facts)
        entries.move_to_end(key)
        while len(entries) > MAX_ENTRIES:
            entries.popitem(last=False)
    return facts
