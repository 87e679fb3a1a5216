"""Household de-duplication against the database (the rules themselves are in dedupe.py).

At ingest a new snapshot is compared only with the snapshots that share a blocking key
(indexed), and only the component of households it touches is re-clustered: the cost grows
with the block, not with the ward. `rerun` does the same over everything; both give the same
result for the same data. Merges never touch a submission: an alias is a pointer
(`entities.canonical_id`) and every action is a merge_log row that can be undone.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import bindparam, delete, func, insert, or_, select
from sqlalchemy.orm import Session

from server.db.models import (
    DedupePair,
    Entity,
    EntityProblem,
    HouseholdBlockKey,
    HouseholdMember,
    HouseholdSnapshot,
    MergeLogEntry,
    User,
    utcnow,
)
from server.domain import dedupe, entities

DATASET = "households"
DECISIONS = ("merge", "keep_separate", "defer")


class DecisionError(ValueError):
    pass


# Snapshots as the matcher sees them ----------------------------------------------------------


def to_snapshot(row: HouseholdSnapshot) -> dedupe.Snapshot:
    d = row.data
    survey_date = None
    if row.survey_date:
        try:
            survey_date = dt.date.fromisoformat(row.survey_date[:10])
        except ValueError:
            survey_date = None
    return dedupe.Snapshot(
        snapshot_id=str(row.id), entity_id=row.entity_id, tdp=row.tdp or "",
        uploaded_at=row.uploaded_at, street=d.get("street", ""),
        street_other=d.get("street_other", ""), alley=d.get("alley", ""),
        house_no=d.get("house_no", ""), landmark=d.get("landmark", ""),
        head_name=d.get("head_name", ""), head_birth_year=d.get("head_birth_year"),
        head_sex=d.get("head_sex", ""), phone=d.get("phone", ""),
        phone_owner=d.get("phone_owner", ""), pid_hmac=d.get("pid_hmac"),
        members=tuple(dedupe.Member(m.get("name"), m.get("birth_year"), m.get("sex"))
                      for m in d.get("members", [])),
        lat=d.get("lat"), lon=d.get("lon"), accuracy=d.get("accuracy"),
        updated_entity=row.updated_entity, consent=row.consent, survey_date=survey_date)


def key_hash(key: tuple) -> str:
    return hashlib.sha1(json.dumps(key, ensure_ascii=False, default=str).encode()).hexdigest()  # noqa: S324


def _key_rows(project_id: int, row: HouseholdSnapshot, keys) -> list[dict]:
    return [{"project_id": project_id, "key": h, "snapshot_id": row.id}
            for h in sorted({key_hash(k) for k in dedupe.block_keys(keys)})]


# The statements of every ingest, built once (SQLAlchemy then reuses their compiled form) and
# on the tables, not the ORM classes: no ORM bookkeeping for rows nothing here holds.
_KEYS = HouseholdBlockKey.__table__
_MEMBERS = HouseholdMember.__table__
_INSERT_KEYS = insert(_KEYS)
_INSERT_MEMBERS = insert(_MEMBERS)
_DELETE_KEYS_OF = delete(_KEYS).where(_KEYS.c.snapshot_id == bindparam("snapshot_id"))
_BLOCKS = select(_KEYS.c.key, _KEYS.c.snapshot_id).where(
    _KEYS.c.project_id == bindparam("p"), _KEYS.c.key.in_(bindparam("keys", expanding=True)))
# A household deleted through the API is no match for anything: nothing may be merged into it.
_NOT_DELETED = HouseholdSnapshot.entity_id.not_in(
    select(Entity.id).where(Entity.deleted_at.is_not(None)))
_CANDIDATES = select(HouseholdSnapshot).where(
    HouseholdSnapshot.id.in_(bindparam("ids", expanding=True)),
    HouseholdSnapshot.current.is_(True), HouseholdSnapshot.entity_id != bindparam("entity_id"),
    _NOT_DELETED)
_OWN = select(HouseholdSnapshot).where(HouseholdSnapshot.entity_id == bindparam("entity_id"),
                                       HouseholdSnapshot.current.is_(True))
_DELETE_MEMBERS_OF = delete(_MEMBERS).where(_MEMBERS.c.project_id == bindparam("p"),
                                            _MEMBERS.c.household_id == bindparam("entity_id"))
# By the two entity indexes (a project condition here would make SQLite scan the project's
# pairs through its own index instead); the few rows found are checked for the project.
_PAIRED = select(DedupePair.project_id).where(
    or_(DedupePair.entity_a == bindparam("entity_id"),
        DedupePair.entity_b == bindparam("entity_id")))
_ALIASED = select(Entity.id).where(
    or_(Entity.canonical_id == bindparam("entity_id"),
        (Entity.id == bindparam("entity_id")) & Entity.canonical_id.is_not(None))).limit(1)
_CANONICAL_OF = select(Entity.id, Entity.canonical_id).where(
    Entity.id.in_(bindparam("ids", expanding=True)), Entity.canonical_id.is_not(None))
_REASON_KNOWN = select(EntityProblem.id).where(
    EntityProblem.project_id == bindparam("p"), EntityProblem.kind == bindparam("kind"),
    EntityProblem.entity_id == bindparam("entity_id"),
    EntityProblem.message == bindparam("message"))
_PAIR_OF = select(DedupePair).where(DedupePair.snapshot_a == bindparam("a"),
                                    DedupePair.snapshot_b == bindparam("b"))


def _index(session: Session, project_id: int, row: HouseholdSnapshot, keys) -> list[str]:
    key_rows = _key_rows(project_id, row, keys)
    if key_rows:  # one executemany, not one ORM object per key
        session.execute(_INSERT_KEYS, key_rows)
    return [r["key"] for r in key_rows]


def _lock(session: Session, project_id: int) -> None:
    """One matcher per project at a time (SQLite already has one writer)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(7_000_000 + project_id)))


# Ingest ----------------------------------------------------------------------------------


@dataclass
class Summary:
    snapshots: int = 0
    pairs: int = 0
    review: int = 0
    merges: int = 0
    unmerges: int = 0
    skipped_blocks: int = 0


def on_snapshot(session: Session, project_id: int, row: HouseholdSnapshot,
                config: dedupe.DedupeConfig, replaced: HouseholdSnapshot | None = None,
                now: dt.datetime | None = None, *, created: bool = False) -> Summary:
    """Match a new snapshot (or the edited version of one) and re-cluster what it touches.

    `created`: the upload of this snapshot created its household just now, so it cannot be
    merged into another yet (a merge needs the household to exist): that is not looked up."""
    _lock(session, project_id)
    now = now or utcnow()
    summary = Summary(snapshots=1)
    if replaced is not None:
        replaced.current = False
        session.execute(_DELETE_KEYS_OF, {"snapshot_id": replaced.id})
    keys = dedupe.snapshot_keys(to_snapshot(row), config)
    hashes = _index(session, project_id, row, keys)
    session.flush()
    by_key: dict[str, list[int]] = defaultdict(list)
    for key, snapshot_id in session.execute(_BLOCKS, {"p": project_id, "keys": hashes}):
        by_key[key].append(snapshot_id)
    candidates: set[int] = set()
    for ids in by_key.values():
        if len(ids) > config.max_block:
            summary.skipped_blocks += 1
            continue
        candidates.update(i for i in ids if i != row.id)
    others = session.scalars(_CANDIDATES, {"ids": sorted(candidates),
                                           "entity_id": row.entity_id}).all() if candidates else []
    for other in others:
        result = dedupe.compare(keys, dedupe.snapshot_keys(to_snapshot(other), config), config)
        if _store_pair(session, project_id, result, now):
            summary.pairs += 1
            summary.review += result.outcome == dedupe.Outcome.REVIEW
    session.flush()
    if summary.pairs == 0 and _alone(session, project_id, row.entity_id, created):
        # Nothing links this household to another: no clustering to redo, only its people.
        own = list(session.scalars(_OWN, {"entity_id": row.entity_id}))
        session.execute(_DELETE_MEMBERS_OF, {"p": project_id, "entity_id": row.entity_id})
        members = relink_members(project_id, row.entity_id, own, config, set())
        if members:
            session.execute(_INSERT_MEMBERS, members)
        record_reasons(session, project_id, [*own, *others], config, now,
                       unaliased={row.entity_id} if created else set())
        return summary
    seeds = {row.entity_id, *(o.entity_id for o in others)}
    recluster(session, project_id, config, seeds, summary, now=now)
    family = _component(session, project_id, {row.entity_id})
    nearby = session.scalars(select(HouseholdSnapshot).where(
        HouseholdSnapshot.current.is_(True),
        or_(HouseholdSnapshot.entity_id.in_(family),
            HouseholdSnapshot.id.in_([o.id for o in others])))).all()
    record_reasons(session, project_id, nearby, config, now)
    return summary


def _alone(session: Session, project_id: int, entity_id: str, created: bool) -> bool:
    """No pair and no alias involves this household yet. A pair may (a full re-run pairs the
    snapshots of a household whose creation had failed); an alias may not, when `created`."""
    if project_id in session.scalars(_PAIRED, {"entity_id": entity_id}).all():
        return False
    return created or session.scalar(_ALIASED, {"entity_id": entity_id}) is None


def record_reasons(session: Session, project_id: int, rows, config, now,
                   unaliased: set[str] = frozenset()) -> int:
    """The other §7.8 triggers (head changed, shared phone, tổ changed) as review items.
    `unaliased`: households known not to be merged into another (not looked up)."""
    ids = sorted({r.entity_id for r in rows} - set(unaliased))
    canonical = dict(session.execute(_CANONICAL_OF, {"ids": ids}).all()) if ids else {}
    added = 0
    for reason in dedupe.review_reasons([to_snapshot(r) for r in rows], config, canonical):
        kind = f"review_{reason.kind}"
        exists = session.scalar(_REASON_KNOWN, {
            "p": project_id, "kind": kind, "entity_id": reason.household_ids[0],
            "message": reason.detail})
        if exists is None:
            session.add(EntityProblem(project_id=project_id, entity_id=reason.household_ids[0],
                                      kind=kind, message=reason.detail, at=now))
            added += 1
    return added


def _store_pair(session: Session, project_id: int, result: dedupe.PairResult,
                now: dt.datetime) -> bool:
    if result.outcome == dedupe.Outcome.NON_MATCH:
        return False
    a, b = int(result.snapshot_a), int(result.snapshot_b)
    if a > b:
        a, b = b, a
    existing = session.scalar(_PAIR_OF, {"a": a, "b": b})
    outcome = "match" if result.outcome == dedupe.Outcome.MATCH else "review"
    features = {
        "name_similarity": round(result.name_similarity, 1),
        "diacritic_conflict": result.diacritic_conflict,
        "address_relation": result.address_relation, "phone_match": result.phone_match,
        "pid_match": result.pid_match, "members_shared": result.members_shared,
        "members_jaccard": round(result.members_jaccard, 3),
        "distance_m": None if result.distance_m is None else round(result.distance_m, 1),
        "year_delta": result.year_delta, "same_tdp": result.same_tdp,
    }
    ent_a, ent_b = ((result.entity_a, result.entity_b) if int(result.snapshot_a) == a
                    else (result.entity_b, result.entity_a))
    if existing is not None:
        existing.rule, existing.outcome = result.rule or "", outcome
        existing.score, existing.features = round(result.score, 4), features
        return False
    session.add(DedupePair(
        project_id=project_id, snapshot_a=a, snapshot_b=b, entity_a=ent_a, entity_b=ent_b,
        rule=result.rule or "", outcome=outcome, score=round(result.score, 4),
        features=features, status="auto" if outcome == "match" else "pending", created_at=now))
    return True


# Clustering and applying its result ------------------------------------------------------------


def _component(session: Session, project_id: int, seeds: set[str]) -> set[str]:
    """Every household linked to the seeds by a pair or an alias, transitively."""
    seen: set[str] = set()
    frontier = set(seeds)
    while frontier:
        seen |= frontier
        batch = list(frontier)
        found: set[str] = set()
        for a, b in session.execute(
            select(DedupePair.entity_a, DedupePair.entity_b).where(
                DedupePair.project_id == project_id,
                or_(DedupePair.entity_a.in_(batch), DedupePair.entity_b.in_(batch)))
        ):
            found.update((a, b))
        for eid, canonical in session.execute(
            select(Entity.id, Entity.canonical_id).where(
                or_(Entity.id.in_(batch), Entity.canonical_id.in_(batch)))
        ):
            found.add(eid)
            if canonical:
                found.add(canonical)
        frontier = found - seen
    return seen


def recluster(session: Session, project_id: int, config: dedupe.DedupeConfig,
              seeds: set[str] | None, summary: Summary, *, actor: User | None = None,
              now: dt.datetime | None = None) -> None:
    now = now or utcnow()
    ids = _component(session, project_id, seeds) if seeds is not None else None
    ent_q = select(Entity).where(Entity.project_id == project_id, Entity.dataset == DATASET)
    snap_q = select(HouseholdSnapshot).where(HouseholdSnapshot.project_id == project_id,
                                             HouseholdSnapshot.current.is_(True))
    pair_q = select(DedupePair).where(DedupePair.project_id == project_id)
    if ids is not None:
        ent_q = ent_q.where(Entity.id.in_(ids))
        snap_q = snap_q.where(HouseholdSnapshot.entity_id.in_(ids))
        pair_q = pair_q.where(DedupePair.entity_a.in_(ids), DedupePair.entity_b.in_(ids))
    ents = {e.id: e for e in session.scalars(ent_q)}
    snaps_by_entity: dict[str, list[dedupe.Snapshot]] = defaultdict(list)
    rows_by_entity: dict[str, list[HouseholdSnapshot]] = defaultdict(list)
    for s in session.scalars(snap_q):
        if s.entity_id in ents:
            snaps_by_entity[s.entity_id].append(to_snapshot(s))
            rows_by_entity[s.entity_id].append(s)
    pairs = list(session.scalars(pair_q))
    match, accepted, cannot = [], [], []
    best: dict[frozenset, DedupePair] = {}
    for p in pairs:
        if p.entity_a not in ents or p.entity_b not in ents:
            continue
        edge = (p.entity_a, p.entity_b)
        if p.decision == "keep_separate":
            cannot.append(edge)
        elif p.decision == "merge":
            accepted.append(edge)
        elif p.outcome == "match":
            match.append(edge)
        k = frozenset(edge)
        if k not in best or p.score > best[k].score:
            best[k] = p
    result = dedupe.cluster({e.id: e.created_at for e in ents.values()}, match, accepted,
                            cannot, snaps_by_entity, config)
    for edge in result.review_edges:
        pair = best.get(frozenset((edge.entity_a, edge.entity_b)))
        if pair is not None and pair.status == "auto":
            pair.status, pair.outcome = "pending", "review"
            summary.review += 1
    changed_clusters: set[str] = set()
    for e in ents.values():
        desired = result.canonical_of(e.id)
        desired = None if desired == e.id else desired
        if desired == e.canonical_id:
            continue
        if e.canonical_id is not None:
            changed_clusters.add(e.canonical_id)
            _log_unmerge(session, project_id, e, actor, now)
            summary.unmerges += 1
        if desired is not None:
            pair = _linking_pair(best, e.id, result)
            session.add(MergeLogEntry(
                project_id=project_id, action="merge", canonical_id=desired, alias_id=e.id,
                rule=pair.rule if pair else None, score=pair.score if pair else None,
                decided_by=actor.id if actor and pair and pair.decision == "merge" else None,
                decided_at=now, reason=None))
            changed_clusters.add(desired)
            summary.merges += 1
        e.canonical_id = desired
    session.flush()
    for canonical_id in changed_clusters:
        canonical = ents.get(canonical_id) or session.get(Entity, canonical_id)
        if canonical is not None and canonical.canonical_id is None:
            _refresh_canonical(session, canonical, result, rows_by_entity, now)
    if changed_clusters:
        entities.bump_revision(session, project_id, DATASET)
    groups: dict[str, list[str]] = defaultdict(list)
    for eid in ents:
        groups[result.canonical_of(eid)].append(eid)
    session.execute(delete(HouseholdMember).where(HouseholdMember.project_id == project_id,
                                                  HouseholdMember.household_id.in_(list(ents))))
    taken: set[str] = set()  # after an unmerge two households must not share a person's id
    member_rows: list[dict] = []
    with session.no_autoflush:
        for canonical_id in sorted(groups, key=lambda c: (ents[c].created_at, c)):
            member_rows += relink_members(
                project_id, canonical_id,
                [r for m in groups[canonical_id] for r in rows_by_entity.get(m, [])],
                config, taken,
                [s for m in groups[canonical_id] for s in snaps_by_entity.get(m, [])])
    for start in range(0, len(member_rows), 5000):
        session.execute(insert(HouseholdMember), member_rows[start:start + 5000])


def _linking_pair(best: dict[frozenset, DedupePair], entity_id: str, result) -> DedupePair | None:
    canonical = result.canonical_of(entity_id)
    candidates = [p for k, p in best.items() if entity_id in k
                  and result.canonical_of(next(iter(k - {entity_id}), entity_id)) == canonical]
    return max(candidates, key=lambda p: (p.decision == "merge", p.score), default=None)


def _log_unmerge(session, project_id, alias: Entity, actor: User | None, now) -> None:
    last = session.scalar(
        select(MergeLogEntry).where(MergeLogEntry.alias_id == alias.id,
                                    MergeLogEntry.action == "merge",
                                    MergeLogEntry.undone_at.is_(None))
        .order_by(MergeLogEntry.id.desc()))
    if last is not None:
        last.undone_by, last.undone_at = (actor.id if actor else None), now
    session.add(MergeLogEntry(project_id=project_id, action="unmerge",
                              canonical_id=alias.canonical_id, alias_id=alias.id,
                              decided_by=actor.id if actor else None, decided_at=now))


def _refresh_canonical(session, canonical: Entity, result, rows_by_entity, now) -> None:
    """The canonical household gets a new version with properties merged across its cluster."""
    members = [canonical.id, *(a for a, c in result.aliases.items() if c == canonical.id)]
    snaps = dedupe.time_order([to_snapshot(r) for m in members for r in rows_by_entity.get(m, [])])
    if not snaps:
        return
    merged = dedupe.survivorship(snaps)
    props = dict(canonical.properties)
    for key in ("tdp", "street", "alley", "house_no", "landmark", "head_name", "phone_tail"):
        if merged.get(key) is not None:
            props[key] = merged[key]
    props["street_other"] = merged.get("street_other") or ""
    props["head_birth_year"] = "" if merged.get("head_birth_year") is None else str(
        merged["head_birth_year"])
    if merged.get("n_members") is not None:
        props["n_members"] = str(merged["n_members"])
    props["consent"] = "yes" if merged.get("consent") else "no"
    if merged.get("lat") is not None:
        props["geometry"] = f"{merged['lat']} {merged['lon']} 0 {merged.get('accuracy') or 0}"
    changed = {k: v for k, v in props.items() if canonical.properties.get(k, "") != v}
    canonical.properties = props
    canonical.tdp = props.get("tdp") or None
    canonical.version += 1
    canonical.updated_at = now
    session.flush()
    entities.record_version(session, canonical, "merge", changed, now)


def relink_members(project_id: int, canonical_id: str, rows: list[HouseholdSnapshot],
                   config: dedupe.DedupeConfig, taken: set[str],
                   snapshots: list[dedupe.Snapshot] | None = None) -> list[dict]:
    """Give every person of a household one member id across its (merged) snapshots; returns
    the household_members rows to insert (the caller removed the old ones). Ids in `taken`
    belong to another household already and are not reused."""
    rows = [r for r in rows if r.consent]
    if not rows:
        return []
    by_id = {str(r.id): r for r in rows}
    known = {s.snapshot_id: s for s in snapshots or ()}  # already built by the caller
    previous = {(str(r.id), i): mid for r in rows for i, mid in enumerate(r.member_ids or [])
                if mid and mid not in taken}
    links = dedupe.link_members(
        dedupe.time_order([known.get(str(r.id)) or to_snapshot(r) for r in rows]), previous,
        config)
    for r in rows:
        ids = [links.ids.get((str(r.id), i)) for i in range(len(r.data.get("members", [])))]
        if ids != (r.member_ids or []):
            r.member_ids = ids
    taken.update(p.member_id for p in links.persons)
    return [{"id": p.member_id, "project_id": project_id, "household_id": canonical_id,
             "name": p.name or "", "birth_year": p.birth_year, "sex": p.sex or None,
             "last_snapshot_id": int(by_id[p.last_snapshot_id].id),
             "present": p.left_snapshot_id is None} for p in links.persons]


# Full re-run -----------------------------------------------------------------------------------


def rerun(session: Session, project_id: int, config: dedupe.DedupeConfig) -> Summary:
    """Re-derive every pair and cluster from the snapshots; supervisors' decisions are kept."""
    _lock(session, project_id)
    now = utcnow()
    rows = list(session.scalars(select(HouseholdSnapshot).where(
        HouseholdSnapshot.project_id == project_id, HouseholdSnapshot.current.is_(True),
        _NOT_DELETED)))
    summary = Summary(snapshots=len(rows))
    session.execute(delete(HouseholdBlockKey).where(HouseholdBlockKey.project_id == project_id))
    keys = {str(r.id): dedupe.snapshot_keys(to_snapshot(r), config) for r in rows}
    by_id = {str(r.id): r for r in rows}
    key_rows = [k for r in rows for k in _key_rows(project_id, r, keys[str(r.id)])]
    for start in range(0, len(key_rows), 5000):
        session.execute(insert(HouseholdBlockKey), key_rows[start:start + 5000])
    found = dedupe.candidate_pairs([k for k in keys.values()], config)
    summary.skipped_blocks = len(found.skipped)
    kept: set[tuple[int, int]] = set()
    for a, b in found.pairs:
        if by_id[a].entity_id == by_id[b].entity_id:
            continue
        result = dedupe.compare(keys[a], keys[b], config)
        if result.outcome != dedupe.Outcome.NON_MATCH:
            _store_pair(session, project_id, result, now)
            kept.add(tuple(sorted((int(a), int(b)))))
    # Pairs no rule supports any more go, unless a person decided them.
    for p in session.scalars(select(DedupePair).where(DedupePair.project_id == project_id,
                                                      DedupePair.decision.is_(None))):
        if (p.snapshot_a, p.snapshot_b) not in kept and p.rule != "manual":
            session.delete(p)
    session.flush()
    recluster(session, project_id, config, None, summary, now=now)
    record_reasons(session, project_id, rows, config, now)
    summary.pairs = session.scalar(select(func.count()).select_from(DedupePair).where(
        DedupePair.project_id == project_id)) or 0
    summary.review = session.scalar(select(func.count()).select_from(DedupePair).where(
        DedupePair.project_id == project_id, DedupePair.status == "pending")) or 0
    return summary


# Supervisors' decisions --------------------------------------------------------------------


def may_decide(user: User, pair: DedupePair, tdp_a: str | None, tdp_b: str | None) -> bool:
    """A team leader inside its own tổ; the ward office (no team) and admins across tổ."""
    if user.role == "admin":
        return True
    if user.role != "supervisor" or user.project_id != pair.project_id:
        return False
    if not user.team or user.team == "ward":
        return True
    return tdp_a == tdp_b == user.team


def pending_pairs(session: Session, project_id: int) -> list[DedupePair]:
    return list(session.scalars(
        select(DedupePair).where(DedupePair.project_id == project_id,
                                 DedupePair.status == "pending")
        .order_by(DedupePair.score.desc(), DedupePair.id)))


def decide(session: Session, pair_id: int, decision: str, actor: User, config,
           note: str | None = None) -> DedupePair:
    if decision not in DECISIONS:
        raise DecisionError(f"decision must be one of {', '.join(DECISIONS)}")
    pair = session.get(DedupePair, pair_id)
    if pair is None:
        raise DecisionError(f"pair {pair_id} does not exist")
    tdp_a = session.get(HouseholdSnapshot, pair.snapshot_a).tdp
    tdp_b = session.get(HouseholdSnapshot, pair.snapshot_b).tdp
    if not may_decide(actor, pair, tdp_a, tdp_b):
        raise DecisionError("only the office decides pairs across tổ dân phố; a team leader "
                            "decides pairs inside its own tổ")
    _lock(session, pair.project_id)
    now = utcnow()
    pair.decision, pair.note = decision, note
    pair.decided_by, pair.decided_at = actor.id, now
    pair.status = "pending" if decision == "defer" else "decided"
    if decision == "keep_separate":
        session.add(MergeLogEntry(project_id=pair.project_id, action="keep_separate",
                                  canonical_id=pair.entity_a, alias_id=pair.entity_b,
                                  rule=pair.rule, score=pair.score, decided_by=actor.id,
                                  decided_at=now, reason=note))
    session.flush()
    if decision != "defer":
        recluster(session, pair.project_id, config, {pair.entity_a, pair.entity_b}, Summary(),
                  actor=actor, now=now)
    return pair


def _latest_snapshot(session, entity_id: str) -> HouseholdSnapshot | None:
    return session.scalar(select(HouseholdSnapshot).where(
        HouseholdSnapshot.entity_id == entity_id, HouseholdSnapshot.current.is_(True))
        .order_by(HouseholdSnapshot.id.desc()))


def _manual_pair(session, a: str, b: str) -> DedupePair:
    sa, sb = _latest_snapshot(session, a), _latest_snapshot(session, b)
    if sa is None or sb is None:
        raise DecisionError("both households need a survey before they can be merged")
    lo, hi = sorted((sa, sb), key=lambda s: s.id)
    pair = session.scalar(select(DedupePair).where(DedupePair.snapshot_a == lo.id,
                                                   DedupePair.snapshot_b == hi.id))
    if pair is None:
        pair = DedupePair(project_id=sa.project_id, snapshot_a=lo.id, snapshot_b=hi.id,
                          entity_a=lo.entity_id, entity_b=hi.entity_id, rule="manual",
                          outcome="review", score=0.0, features={}, status="pending")
        session.add(pair)
        session.flush()
    return pair


def merge(session: Session, a: str, b: str, actor: User, config) -> str:
    """A supervisor's direct merge; the household created first stays canonical."""
    ea, eb = session.get(Entity, a), session.get(Entity, b)
    if ea is None or eb is None or ea.project_id != eb.project_id or a == b:
        raise DecisionError("give two different households of the same project")
    pair = _manual_pair(session, a, b)
    decide(session, pair.id, "merge", actor, config, note="direct merge")
    return entities.resolve(session, a)[0].id


def unmerge(session: Session, alias_id: str, actor: User, config) -> None:
    """The office's undo: the alias is a household of its own again, kept apart from now on."""
    alias = session.get(Entity, alias_id)
    if alias is None or alias.canonical_id is None:
        raise DecisionError(f"{alias_id} is not a merged household")
    if actor.role != "admin" and (actor.role != "supervisor" or actor.team not in (None, "ward")):
        raise DecisionError("only the ward office undoes merges")
    pair = _manual_pair(session, alias.canonical_id, alias_id)
    now = utcnow()
    pair.decision, pair.status, pair.decided_by, pair.decided_at = (
        "keep_separate", "decided", actor.id, now)
    session.flush()
    recluster(session, alias.project_id, config, {alias_id, alias.canonical_id}, Summary(),
              actor=actor, now=now)
