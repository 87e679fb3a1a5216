"""E8 `dedupe_review_queue` and E9 `merge_log` (domain §7.8), exactly those columns."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from server.db.models import (
    DedupePair,
    Entity,
    HouseholdSnapshot,
    MergeLogEntry,
    SubmissionVersion,
    User,
)
from server.domain import entities
from server.exports.tables import Table

E8_COLUMNS = (
    "pair_id,created_at,rule,score,household_id_a,household_id_b,tdp_a,tdp_b,head_name_a,"
    "head_name_b,head_birth_year_a,head_birth_year_b,address_a,address_b,phone_match,pid_match,"
    "name_similarity,diacritic_conflict,address_relation,members_shared,members_jaccard,"
    "distance_m,surveyor_a,surveyor_b,status,decision,decided_by,decided_at,note"
).split(",")
E9_COLUMNS = ("merge_id,action,canonical_id,alias_id,rule,score,decided_by,decided_at,reason,"
              "undone_by,undone_at").split(",")


def _iso(moment) -> str:
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z") if moment else ""


def _flag(value) -> str | int:
    return "" if value is None else int(bool(value))


def address(data: dict, street_labels: dict[str, str]) -> str:
    """`Đường Bình Thuận, ngõ 5, số 12` (or the landmark when there is no number)."""
    street = data.get("street", "")
    name = data.get("street_other") if street == "other" else street_labels.get(street, street)
    parts = [name] if name else []
    if data.get("alley"):
        parts.append(f"ngõ {data['alley']}")
    if data.get("house_no"):
        parts.append(f"số {data['house_no']}")
    elif data.get("landmark"):
        parts.append(data["landmark"])
    return ", ".join(parts)


def review_queue(session: Session, project_id: int, ward=None) -> Table:
    labels = {s.name: s.label_vi for s in ward.streets} if ward is not None else {}
    snap_a, snap_b = aliased(HouseholdSnapshot), aliased(HouseholdSnapshot)
    ver_a, ver_b = aliased(SubmissionVersion), aliased(SubmissionVersion)
    user_a, user_b, decider = aliased(User), aliased(User), aliased(User)
    query = (
        select(DedupePair, snap_a, snap_b, user_a.username, user_b.username, decider.username)
        .join(snap_a, snap_a.id == DedupePair.snapshot_a)
        .join(snap_b, snap_b.id == DedupePair.snapshot_b)
        .join(ver_a, ver_a.id == snap_a.submission_version_id)
        .join(ver_b, ver_b.id == snap_b.submission_version_id)
        .outerjoin(user_a, user_a.id == ver_a.submitter_id)
        .outerjoin(user_b, user_b.id == ver_b.submitter_id)
        .outerjoin(decider, decider.id == DedupePair.decided_by)
        .where(DedupePair.project_id == project_id, DedupePair.status != "auto")
        .order_by(DedupePair.status.desc(), DedupePair.score.desc(), DedupePair.id)
    )

    def rows():
        for pair, a, b, surveyor_a, surveyor_b, decided_by in session.execute(query).yield_per(500):
            f = pair.features or {}
            yield [
                pair.id, _iso(pair.created_at), pair.rule, pair.score, pair.entity_a,
                pair.entity_b, a.tdp, b.tdp, a.data.get("head_name"), b.data.get("head_name"),
                a.data.get("head_birth_year"), b.data.get("head_birth_year"),
                address(a.data, labels), address(b.data, labels), _flag(f.get("phone_match")),
                _flag(f.get("pid_match")), f.get("name_similarity"),
                _flag(f.get("diacritic_conflict")), f.get("address_relation"),
                f.get("members_shared"), f.get("members_jaccard"), f.get("distance_m"),
                surveyor_a, surveyor_b,
                "decided" if pair.status == "decided" else "pending", pair.decision,
                decided_by, _iso(pair.decided_at), pair.note,
            ]

    return Table("dedupe_review_queue", E8_COLUMNS, rows)


def merge_log(session: Session, project_id: int) -> Table:
    decider, undoer = aliased(User), aliased(User)
    query = (select(MergeLogEntry, decider.username, undoer.username)
             .outerjoin(decider, decider.id == MergeLogEntry.decided_by)
             .outerjoin(undoer, undoer.id == MergeLogEntry.undone_by)
             .where(MergeLogEntry.project_id == project_id).order_by(MergeLogEntry.id))

    def rows():
        # every named household in one query: resolve() then finds them in the session
        # instead of asking for each entry (kept referenced: the session holds them weakly)
        _named = session.scalars(select(Entity).where(Entity.id.in_(
            select(MergeLogEntry.canonical_id).where(MergeLogEntry.project_id == project_id)))
        ).all()
        for entry, decided_by, undone_by in session.execute(query).yield_per(500):
            survivor = entities.resolve(session, entry.canonical_id)[0]
            yield [
                entry.id, entry.action, survivor.id if survivor else entry.canonical_id,
                entry.alias_id, entry.rule, entry.score, decided_by or "auto",
                _iso(entry.decided_at), entry.reason,
                (undone_by or "auto") if entry.undone_at else "", _iso(entry.undone_at),
            ]

    return Table("merge_log", E9_COLUMNS, rows)
