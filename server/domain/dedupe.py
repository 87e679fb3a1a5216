"""Household de-duplication: blocking, pairwise rules, clustering, survivorship, member linkage.

Duplicates come from two volunteers surveying one household, re-surveys entered as new,
typos and Vietnamese spelling variants. A phone, a name or an address alone never merges:
shared phones, namesakes and multi-household houses are common. Pairs are therefore decided
by ordered rules with vetoes, auto-merges are clustered at entity level with cannot-links and
a consistency check against transitive chaining, and everything doubtful goes to a supervisor.

Pure Python, no I/O. Keys are computed once per snapshot (:class:`SnapshotKeys`), so a full
run over ~9 k snapshots and ~28 k candidate pairs takes a few seconds at most.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, NamedTuple

from server.domain.normalize import (
    NameKeys,
    StreetLike,
    address_rel,
    display_text,
    distance_m,
    name_cmp,
    name_keys,
    normalize_phone,
    number_tokens,
    street_key,
)

__all__ = [
    "DEFAULT_CONFIG",
    "Candidates",
    "Cluster",
    "ClusterResult",
    "DedupeConfig",
    "BlockIndex",
    "Member",
    "MemberKeys",
    "MemberLinks",
    "Outcome",
    "PairResult",
    "Person",
    "RejectedCluster",
    "ReviewEdge",
    "ReviewReason",
    "SkippedBlock",
    "Snapshot",
    "SnapshotKeys",
    "block_keys",
    "candidate_pairs",
    "cluster",
    "compare",
    "compare_all",
    "find_member",
    "link_members",
    "review_reasons",
    "same_person",
    "snapshot_keys",
    "survivorship",
    "time_order",
]

SHARED_PHONE_OWNER = "other_hh"


@dataclass(frozen=True)
class DedupeConfig:
    """§7.5 thresholds (to be re-tuned with the office on real data) and the ward's streets."""

    name_strong: float = 92.0  # NAME_STRONG
    name_weak: float = 85.0  # NAME_WEAK
    year_tol: int = 1  # YEAR_TOL: Δ ≤ 1 compatible
    year_weak: int = 2  # Δ = 2 weak (R5)
    year_veto: int = 3  # YEAR_VETO: Δ ≥ 3 means two different people
    member_shared_min: int = 2  # MEMBER_SHARED_MIN
    member_jaccard_min: float = 0.5  # MEMBER_JACCARD_MIN
    max_block: int = 200  # MAX_BLOCK: larger blocks are skipped and reported
    gps_accuracy_max: float = 30.0  # only fixes at least this good give a distance
    head_change_sim: float = 60.0  # §7.8: an update whose head is below this looks misplaced
    phone_households_max: int = 2  # §7.8: one phone on more households than this is reviewed
    streets: tuple[StreetLike, ...] = ()  # configured streets, for typed "other" street names

    @classmethod
    def for_ward(cls, ward: Any, **overrides: Any) -> DedupeConfig:
        """Defaults plus the streets of a ``WardConfig``."""
        return cls(streets=tuple(ward.streets), **overrides)


DEFAULT_CONFIG = DedupeConfig()


# --------------------------------------------------------------------------- snapshots


@dataclass(frozen=True)
class Member:
    """One member record, from the effective fields ``m_*_eff`` (member 1 = the head)."""

    name: str | None
    birth_year: int | None
    sex: str | None


@dataclass(frozen=True, kw_only=True)
class Snapshot:
    """One household-survey submission where someone was met (a snapshot of the household)."""

    snapshot_id: str
    entity_id: str  # household entity UUID it created or updated
    tdp: str
    uploaded_at: dt.datetime
    street: str = ""  # street code, or "other"
    street_other: str = ""
    alley: str = ""
    house_no: str = ""
    landmark: str = ""
    head_name: str = ""
    head_birth_year: int | None = None
    head_sex: str = ""
    phone: str = ""  # raw, normalised here
    phone_owner: str = ""  # "other_hh" = shared with another household
    pid_hmac: str | None = None
    pid_last4: str | None = None
    members: tuple[Member, ...] = ()
    lat: float | None = None
    lon: float | None = None
    accuracy: float | None = None
    updated_entity: bool = False  # hh_mode = existing (R0)
    consent: bool = True
    survey_date: dt.date | None = None  # event date; falls back to the upload date for ordering


def time_order(snapshots: Iterable[Snapshot]) -> list[Snapshot]:
    """Snapshots oldest first: by survey date, then upload time, then id (deterministic)."""
    return sorted(
        snapshots,
        key=lambda s: (s.survey_date or s.uploaded_at.date(), s.uploaded_at, s.snapshot_id),
    )


class MemberKeys(NamedTuple):
    name: NameKeys
    birth_year: int | None
    sex: str | None


@dataclass(frozen=True, slots=True)
class SnapshotKeys:
    """A snapshot with its matching keys, computed once instead of once per pair."""

    snapshot: Snapshot
    head: NameKeys
    phone: str | None  # normalised, None when missing or invalid
    phone_shared: bool
    street_key: str
    numbers: tuple[str, ...]
    members: tuple[MemberKeys, ...]

    @property
    def snapshot_id(self) -> str:
        return self.snapshot.snapshot_id

    @property
    def entity_id(self) -> str:
        return self.snapshot.entity_id


def snapshot_keys(
    snapshot: Snapshot | SnapshotKeys, config: DedupeConfig = DEFAULT_CONFIG
) -> SnapshotKeys:
    """The §7.3 keys of one snapshot."""
    if isinstance(snapshot, SnapshotKeys):
        return snapshot
    s = snapshot
    return SnapshotKeys(
        snapshot=s,
        head=name_keys(s.head_name),
        phone=normalize_phone(s.phone),
        phone_shared=s.phone_owner == SHARED_PHONE_OWNER,
        street_key=street_key(s.street, s.street_other, config.streets),
        numbers=number_tokens(s.house_no, s.alley),
        members=tuple(MemberKeys(name_keys(m.name), m.birth_year, m.sex) for m in s.members),
    )


# --------------------------------------------------------------------------- pairwise rules


class Outcome(StrEnum):
    MATCH = "MATCH"
    REVIEW = "REVIEW"
    NON_MATCH = "NON_MATCH"


@dataclass(frozen=True)
class PairResult:
    """Decision on one snapshot pair with the E8 features (``snapshot_a`` < ``snapshot_b``).

    ``rule`` is the §7.5 rule that decided (R0 = same entity by construction, reported as
    MATCH), the first veto for a vetoed non-match, or None when nothing applied.
    """

    snapshot_a: str
    snapshot_b: str
    entity_a: str
    entity_b: str
    outcome: Outcome
    rule: str | None
    vetoes: tuple[str, ...]
    name_similarity: float
    diacritic_conflict: bool
    address_relation: str
    phone_match: bool
    pid_match: bool | None  # None when either side has no pid_hmac
    members_shared: int
    members_jaccard: float
    distance_m: float | None
    year_delta: int | None
    same_tdp: bool
    score: float  # §7.8 review-queue order


def _year_delta(a: int | None, b: int | None) -> int | None:
    return None if a is None or b is None else abs(a - b)


def _member_overlap(
    a: tuple[MemberKeys, ...], b: tuple[MemberKeys, ...], tol: int
) -> tuple[int, float]:
    """Shared members (K_ascii name + birth year ± tol, one-to-one) and their Jaccard index."""
    pool: dict[str, list[int | None]] = defaultdict(list)
    nb = 0
    for m in b:
        if m.name.k_ascii:
            pool[m.name.k_ascii].append(m.birth_year)
            nb += 1
    na = shared = 0
    for m in a:
        if not m.name.k_ascii:
            continue
        na += 1
        years = pool.get(m.name.k_ascii)
        if not years:
            continue
        best = None
        for i, y in enumerate(years):
            d = _year_delta(m.birth_year, y)
            d = 0 if d is None else d
            if d <= tol and (best is None or d < best[1]):
                best = (i, d)
        if best is not None:
            years.pop(best[0])
            shared += 1
    union = na + nb - shared
    return shared, (shared / union if union else 0.0)


def _distance(a: Snapshot, b: Snapshot, max_acc: float) -> float | None:
    for s in (a, b):
        if s.lat is None or s.lon is None or s.accuracy is None or s.accuracy > max_acc:
            return None
    return distance_m(a.lat, a.lon, b.lat, b.lon)  # type: ignore[arg-type]


_ADDRESS_SCORE = {"same": 1.0, "unknown": 0.5}


def compare(
    a: Snapshot | SnapshotKeys,
    b: Snapshot | SnapshotKeys,
    config: DedupeConfig = DEFAULT_CONFIG,
) -> PairResult:
    """Apply R0, R1, R1x, V1, V2, R3/R3x, R4/R4c, R5, R6 in order; the first rule decides."""
    ka, kb = snapshot_keys(a, config), snapshot_keys(b, config)
    if kb.snapshot_id < ka.snapshot_id:
        ka, kb = kb, ka
    sa, sb = ka.snapshot, kb.snapshot
    sim, conflict = name_cmp(ka.head, kb.head)
    delta = _year_delta(sa.head_birth_year, sb.head_birth_year)
    same_tdp = sa.tdp == sb.tdp
    rel = address_rel(ka.street_key, ka.numbers, kb.street_key, kb.numbers)
    phone_match = ka.phone is not None and ka.phone == kb.phone
    pid_match = None if not sa.pid_hmac or not sb.pid_hmac else sa.pid_hmac == sb.pid_hmac
    shared, jaccard = _member_overlap(ka.members, kb.members, config.year_tol)
    score = 0.4 * sim / 100 + 0.2 * _ADDRESS_SCORE.get(rel, 0.0) + 0.2 * phone_match + 0.2 * jaccard

    outcome, rule, vetoes = _decide(
        config, ka, kb, sim, conflict, delta, same_tdp, rel, phone_match, pid_match, shared,
        jaccard,
    )  # fmt: skip
    return PairResult(
        snapshot_a=sa.snapshot_id,
        snapshot_b=sb.snapshot_id,
        entity_a=sa.entity_id,
        entity_b=sb.entity_id,
        outcome=outcome,
        rule=rule,
        vetoes=vetoes,
        name_similarity=round(sim, 2),
        diacritic_conflict=conflict,
        address_relation=rel,
        phone_match=phone_match,
        pid_match=pid_match,
        members_shared=shared,
        members_jaccard=round(jaccard, 4),
        distance_m=_distance(sa, sb, config.gps_accuracy_max),
        year_delta=delta,
        same_tdp=same_tdp,
        score=round(score, 4),
    )


def _decide(
    c: DedupeConfig,
    ka: SnapshotKeys,
    kb: SnapshotKeys,
    sim: float,
    conflict: bool,
    delta: int | None,
    same_tdp: bool,
    rel: str,
    phone_match: bool,
    pid_match: bool | None,
    shared: int,
    jaccard: float,
) -> tuple[Outcome, str | None, tuple[str, ...]]:
    if ka.entity_id == kb.entity_id:
        return Outcome.MATCH, "R0", ()
    if pid_match:
        return (Outcome.MATCH, "R1", ()) if same_tdp else (Outcome.REVIEW, "R1x", ())
    vetoes = []
    if pid_match is False:
        vetoes.append("V1")
    if delta is not None and delta >= c.year_veto:
        vetoes.append("V2")
    if not vetoes:
        years_ok = delta is None or delta <= c.year_tol
        strong = sim >= c.name_strong
        if (
            phone_match
            and not ka.phone_shared
            and not kb.phone_shared
            and strong
            and not conflict
            and years_ok
        ):
            return (Outcome.MATCH, "R3", ()) if same_tdp else (Outcome.REVIEW, "R3x", ())
        if same_tdp and rel == "same" and strong and years_ok:
            return (Outcome.REVIEW, "R4c", ()) if conflict else (Outcome.MATCH, "R4", ())
        if (
            same_tdp
            and sim >= c.name_weak
            and (delta is None or delta <= c.year_weak)
            and (rel in ("same", "unknown") or phone_match)
        ):
            return Outcome.REVIEW, "R5", ()
    if shared >= c.member_shared_min and jaccard >= c.member_jaccard_min:
        return Outcome.REVIEW, "R6", tuple(vetoes)
    return Outcome.NON_MATCH, (vetoes[0] if vetoes else None), tuple(vetoes)


# --------------------------------------------------------------------------- blocking


BlockKey = tuple[Any, ...]


def block_keys(k: SnapshotKeys) -> tuple[BlockKey, ...]:
    """§7.4 keys B1–B6 of one snapshot. B3 needs a number (a landmark alone is not a house)."""
    s = k.snapshot
    keys: list[BlockKey] = []
    if s.pid_hmac:
        keys.append(("B1", s.pid_hmac))
    if k.phone:
        keys.append(("B2", k.phone))
    if k.numbers:
        keys.append(("B3", s.tdp, k.street_key, k.numbers))
    tokens = k.head.k_ascii.split()
    if tokens:
        year = s.head_birth_year
        keys.append(("B4", s.tdp, tokens[-1], tokens[0]))
        keys.append(("B5", tuple(sorted(tokens)), year))
        longest = max(tokens, key=lambda t: (len(t), t))
        keys.append(("B6", s.tdp, longest, None if year is None else year // 5))
    return tuple(keys)


@dataclass(frozen=True)
class SkippedBlock:
    """A block over MAX_BLOCK that was not expanded into pairs (phones and pids masked)."""

    kind: str
    key: str
    size: int


def _describe(key: BlockKey) -> str:
    kind = key[0]
    if kind == "B1":
        return f"pid:{str(key[1])[:8]}…"
    if kind == "B2":
        return f"phone:…{str(key[1])[-3:]}"
    return "|".join(" ".join(p) if isinstance(p, tuple) else str(p) for p in key[1:])


class BlockIndex:
    """Incremental blocking: ``add`` returns the candidates of a new snapshot at a cost
    proportional to its blocks. Once a block exceeds MAX_BLOCK it yields no further pairs
    (candidates already returned from it stay with the caller; a full run skips it entirely)."""

    def __init__(self, config: DedupeConfig = DEFAULT_CONFIG) -> None:
        self.config = config
        self._blocks: dict[BlockKey, dict[str, str]] = {}
        self._keys: dict[str, SnapshotKeys] = {}
        self._block_keys: dict[str, tuple[BlockKey, ...]] = {}

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, snapshot_id: object) -> bool:
        return snapshot_id in self._keys

    def keys(self, snapshot_id: str) -> SnapshotKeys:
        return self._keys[snapshot_id]

    @property
    def all_keys(self) -> Mapping[str, SnapshotKeys]:
        return self._keys

    def add(self, snapshot: Snapshot | SnapshotKeys) -> set[str]:
        """Index a snapshot (replacing one with the same id); return the ids it must be
        compared with: snapshots of other entities sharing a block of at most MAX_BLOCK."""
        k = snapshot_keys(snapshot, self.config)
        sid, eid = k.snapshot_id, k.entity_id
        if sid in self._keys:
            self.remove(sid)
        candidates: set[str] = set()
        bkeys = block_keys(k)
        for key in bkeys:
            block = self._blocks.setdefault(key, {})
            if len(block) < self.config.max_block:
                candidates.update(other for other, ent in block.items() if ent != eid)
            block[sid] = eid
        self._keys[sid] = k
        self._block_keys[sid] = bkeys
        return candidates

    def load(self, snapshots: Iterable[Snapshot | SnapshotKeys]) -> None:
        """Index many snapshots without looking up candidates (for a full run)."""
        for s in snapshots:
            k = snapshot_keys(s, self.config)
            sid = k.snapshot_id
            if sid in self._keys:
                self.remove(sid)
            bkeys = block_keys(k)
            for key in bkeys:
                self._blocks.setdefault(key, {})[sid] = k.entity_id
            self._keys[sid] = k
            self._block_keys[sid] = bkeys

    def remove(self, snapshot: Snapshot | SnapshotKeys | str) -> None:
        """Take a snapshot out of the index (no error when it is not there)."""
        sid = snapshot if isinstance(snapshot, str) else snapshot.snapshot_id
        for key in self._block_keys.pop(sid, ()):
            block = self._blocks[key]
            block.pop(sid, None)
            if not block:
                del self._blocks[key]
        self._keys.pop(sid, None)

    def pairs(self) -> set[tuple[str, str]]:
        """Every candidate pair (ids sorted) from the blocks of at most MAX_BLOCK."""
        out: set[tuple[str, str]] = set()
        for block in self._blocks.values():
            if len(block) < 2 or len(block) > self.config.max_block:
                continue
            items = sorted(block.items())
            for i, (a, ea) in enumerate(items):
                for b, eb in items[i + 1 :]:
                    if ea != eb:
                        out.add((a, b))
        return out

    def skipped_blocks(self) -> tuple[SkippedBlock, ...]:
        big = [
            SkippedBlock(key[0], _describe(key), len(block))
            for key, block in self._blocks.items()
            if len(block) > self.config.max_block
        ]
        return tuple(sorted(big, key=lambda s: (s.kind, -s.size, s.key)))


@dataclass(frozen=True)
class Candidates:
    pairs: tuple[tuple[str, str], ...]  # sorted snapshot-id pairs
    skipped: tuple[SkippedBlock, ...]
    keys: Mapping[str, SnapshotKeys]


def candidate_pairs(
    snapshots: Iterable[Snapshot | SnapshotKeys], config: DedupeConfig = DEFAULT_CONFIG
) -> Candidates:
    """Full blocking run over all snapshots."""
    index = BlockIndex(config)
    index.load(snapshots)
    return Candidates(tuple(sorted(index.pairs())), index.skipped_blocks(), index.all_keys)


def compare_all(
    snapshots: Iterable[Snapshot | SnapshotKeys], config: DedupeConfig = DEFAULT_CONFIG
) -> tuple[list[PairResult], tuple[SkippedBlock, ...]]:
    """Block and compare everything: the full re-run."""
    cands = candidate_pairs(snapshots, config)
    keys = cands.keys
    return [compare(keys[a], keys[b], config) for a, b in cands.pairs], cands.skipped


# --------------------------------------------------------------------------- clustering

Edge = tuple[str, str]


@dataclass(frozen=True)
class Cluster:
    canonical_id: str
    entity_ids: tuple[str, ...]  # canonical first, then by creation


@dataclass(frozen=True)
class RejectedCluster:
    entity_ids: tuple[str, ...]
    reasons: tuple[str, ...]  # pid_conflict, namesake_heads, cross_tdp
    auto_edges: tuple[Edge, ...]


@dataclass(frozen=True)
class ReviewEdge:
    entity_a: str
    entity_b: str
    reason: str  # cannot_link, or rejected_cluster:<reasons>
    pair: PairResult | None = None


@dataclass(frozen=True)
class ClusterResult:
    clusters: tuple[Cluster, ...]  # clusters of two or more entities, by canonical id
    aliases: Mapping[str, str]  # alias entity id → canonical entity id
    rejected: tuple[RejectedCluster, ...]
    review_edges: tuple[ReviewEdge, ...]

    def canonical_of(self, entity_id: str) -> str:
        return self.aliases.get(entity_id, entity_id)


def _edge_map(
    edges: Iterable[Edge | PairResult], *, matches_only: bool = False
) -> dict[Edge, PairResult | None]:
    """Entity-level edges, one per entity pair (the best-scoring pair result kept)."""
    out: dict[Edge, PairResult | None] = {}
    for e in edges:
        pair = e if isinstance(e, PairResult) else None
        if matches_only and pair is not None and pair.outcome is not Outcome.MATCH:
            continue  # a REVIEW or NON_MATCH result is never an automatic edge
        a, b = (e.entity_a, e.entity_b) if pair is not None else e  # type: ignore[misc]
        if a == b:
            continue
        key = (a, b) if a < b else (b, a)
        old = out.get(key)
        if key not in out or (
            pair is not None
            and (old is None or (-pair.score, pair.snapshot_a) < (-old.score, old.snapshot_a))
        ):
            out[key] = pair
    return out


class _UnionFind:
    def __init__(self, items: Iterable[str]) -> None:
        self.parent = {x: x for x in items}
        self.members = {x: [x] for x in self.parent}

    def find(self, x: str) -> str:
        root = x
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[x] != root:
            self.parent[x], x = root, self.parent[x]
        return root

    def blocked(self, a: str, b: str, cannot: Mapping[str, set[str]]) -> bool:
        ra, rb = self.find(a), self.find(b)
        small, other = (ra, rb) if len(self.members[ra]) <= len(self.members[rb]) else (rb, ra)
        return any(self.find(p) == other for m in self.members[small] for p in cannot.get(m, ()))

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return
        if len(self.members[ra]) < len(self.members[rb]):
            ra, rb = rb, ra
        self.parent[rb] = ra
        self.members[ra].extend(self.members.pop(rb))


def cluster(
    entity_created: Mapping[str, dt.datetime],
    match_edges: Iterable[Edge | PairResult],
    accepted_edges: Iterable[Edge | PairResult],
    cannot_links: Iterable[Edge],
    snapshots_by_entity: Mapping[str, Sequence[Snapshot | SnapshotKeys]],
    config: DedupeConfig = DEFAULT_CONFIG,
) -> ClusterResult:
    """Union-find over entities: supervisor-accepted edges first, then automatic MATCH edges.

    An edge that would join a ``keep_separate`` pair is not applied and goes to review. Each
    resulting cluster with automatic edges is checked (§7.6); an inconsistent one falls back
    to its supervisor-accepted parts and its automatic edges go to review. The canonical id
    is the entity created first.
    """
    accepted = _edge_map(accepted_edges)
    auto = {k: v for k, v in _edge_map(match_edges, matches_only=True).items() if k not in accepted}
    cannot: dict[str, set[str]] = defaultdict(set)
    for a, b in cannot_links:
        if a != b:
            cannot[a].add(b)
            cannot[b].add(a)
    entities = set(entity_created) | set(snapshots_by_entity) | set(cannot)
    for a, b in (*accepted, *auto):
        entities.update((a, b))

    uf = _UnionFind(sorted(entities))
    review: list[ReviewEdge] = []

    def apply(edges: Mapping[Edge, PairResult | None], applied: list[Edge] | None) -> None:
        for (a, b), pair in sorted(edges.items(), key=lambda kv: kv[0]):
            if uf.find(a) != uf.find(b) and uf.blocked(a, b, cannot):
                review.append(ReviewEdge(a, b, "cannot_link", pair))
                continue
            uf.union(a, b)
            if applied is not None:
                applied.append((a, b))

    apply(accepted, None)
    accepted_root = {e: uf.find(e) for e in entities}
    applied_auto: list[Edge] = []
    apply(auto, applied_auto)

    auto_by_root: dict[str, list[Edge]] = defaultdict(list)
    for a, b in applied_auto:
        auto_by_root[uf.find(a)].append((a, b))

    created = _creation_keys(entities, entity_created, snapshots_by_entity)
    groups: list[list[str]] = []
    rejected: list[RejectedCluster] = []
    for root, members in sorted(uf.members.items()):
        if len(members) < 2:
            continue
        reasons = _inconsistencies(members, accepted_root, snapshots_by_entity, config)
        if reasons and auto_by_root.get(root):
            edges = tuple(sorted(auto_by_root[root]))
            rejected.append(RejectedCluster(tuple(sorted(members)), reasons, edges))
            label = "rejected_cluster:" + ",".join(reasons)
            review.extend(ReviewEdge(a, b, label, auto[(a, b)]) for a, b in edges)
            parts: dict[str, list[str]] = defaultdict(list)
            for e in members:
                parts[accepted_root[e]].append(e)
            groups.extend(p for p in parts.values() if len(p) > 1)
        else:
            groups.append(members)

    clusters = []
    aliases: dict[str, str] = {}
    for g in groups:
        ordered = tuple(sorted(g, key=created.__getitem__))
        clusters.append(Cluster(ordered[0], ordered))
        aliases.update((e, ordered[0]) for e in ordered[1:])
    return ClusterResult(
        clusters=tuple(sorted(clusters, key=lambda c: c.canonical_id)),
        aliases=dict(sorted(aliases.items())),
        rejected=tuple(sorted(rejected, key=lambda r: r.entity_ids)),
        review_edges=tuple(sorted(review, key=lambda r: (r.entity_a, r.entity_b, r.reason))),
    )


def _creation_keys(
    entities: Iterable[str],
    entity_created: Mapping[str, dt.datetime],
    snapshots_by_entity: Mapping[str, Sequence[Snapshot | SnapshotKeys]],
) -> dict[str, tuple[Any, ...]]:
    """Sort key of an entity's creation; unknown creation falls back to its first upload."""
    out: dict[str, tuple[Any, ...]] = {}
    for e in entities:
        when = entity_created.get(e)
        if when is None:
            uploads = [_snap(s).uploaded_at for s in snapshots_by_entity.get(e, ())]
            when = min(uploads) if uploads else None
        out[e] = (0, when, e) if when is not None else (1, e)
    return out


def _snap(s: Snapshot | SnapshotKeys) -> Snapshot:
    return s.snapshot if isinstance(s, SnapshotKeys) else s


def _inconsistencies(
    members: Sequence[str],
    accepted_root: Mapping[str, str],
    snapshots_by_entity: Mapping[str, Sequence[Snapshot | SnapshotKeys]],
    config: DedupeConfig,
) -> tuple[str, ...]:
    """§7.6 check against transitive chaining (A≈B, B≈C, A≠C)."""
    pids: set[str] = set()
    tdps: set[str] = set()
    heads: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for e in members:
        for s in map(_snap, snapshots_by_entity.get(e, ())):
            if s.pid_hmac:
                pids.add(s.pid_hmac)
            tdps.add(s.tdp)
            k = name_keys(s.head_name).k_ascii
            if k and s.head_birth_year is not None:
                heads[k].append((e, s.head_birth_year))
    reasons = []
    if len(pids) > 1:
        reasons.append("pid_conflict")
    if any(
        ea != eb and abs(ya - yb) >= config.year_veto
        for entries in heads.values()
        for i, (ea, ya) in enumerate(entries)
        for eb, yb in entries[i + 1 :]
    ):
        reasons.append("namesake_heads")
    if len(tdps) > 1 and len({accepted_root[e] for e in members}) > 1:
        reasons.append("cross_tdp")  # different tổ joined (at least partly) by auto edges
    return tuple(reasons)


# --------------------------------------------------------------------------- survivorship


def _latest(pool: Sequence[Snapshot], attr: str) -> tuple[Any, Snapshot | None]:
    for s in reversed(pool):
        value = getattr(s, attr)
        if value is not None and value != "":
            return value, s
    return None, None


def survivorship(snapshots: Sequence[Snapshot]) -> dict[str, Any]:
    """Merged household properties of a cluster's snapshots (oldest first, newest last).

    Status fields are never mixed: the caller reads them from ``latest_snapshot_id`` as a
    whole. Identity and address fields take the latest non-empty value among consented
    snapshots (address falls back to any snapshot). A newest snapshot without consent is a
    withdrawal: the personal fields are blank and only the address survives.
    """
    if not snapshots:
        raise ValueError("survivorship needs at least one snapshot")
    latest = snapshots[-1]
    consented = [s for s in snapshots if s.consent]
    withdrawn = not latest.consent

    def address(attr: str) -> tuple[Any, Snapshot | None]:
        value, src = _latest(consented, attr)
        return (value, src) if src is not None else _latest(snapshots, attr)

    street, street_src = address("street")
    out: dict[str, Any] = {
        "tdp": latest.tdp,
        "consent": latest.consent,
        "latest_snapshot_id": latest.snapshot_id,
        "latest_consented_snapshot_id": None if withdrawn else consented[-1].snapshot_id,
        "street": street,
        "street_other": (
            display_text(street_src.street_other) or None
            if street == "other" and street_src is not None
            else None
        ),
        "alley": address("alley")[0],
        "house_no": address("house_no")[0],
        "landmark": address("landmark")[0],
        "n_members": None if withdrawn else len(latest.members),
    }
    personal = dict.fromkeys(
        ("head_name", "head_birth_year", "head_sex", "phone", "phone_tail", "phone_owner",
         "pid_hmac", "pid_last4", "lat", "lon", "accuracy"),
    )  # fmt: skip
    personal["pid_conflict"] = False
    if not withdrawn:
        personal.update(_personal_fields(consented, snapshots))
    out.update(personal)
    return out


def _personal_fields(consented: Sequence[Snapshot], all_snaps: Sequence[Snapshot]) -> dict:
    out: dict[str, Any] = {}
    head, _ = _latest(consented, "head_name")
    if head is not None:
        keys = name_keys(head)
        if not keys.has_marks:
            # An ASCII-only spelling is missing information: keep an earlier diacritic one.
            for s in reversed(consented):
                earlier = name_keys(s.head_name)
                if earlier.has_marks and earlier.k_ascii == keys.k_ascii:
                    head = s.head_name
                    break
        out["head_name"] = display_text(head)
    out["head_birth_year"] = _latest(consented, "head_birth_year")[0]
    out["head_sex"] = _latest(consented, "head_sex")[0]
    for s in reversed(consented):
        phone = normalize_phone(s.phone)
        if phone:  # the owner goes with the number it describes
            out.update(phone=phone, phone_tail=phone[-3:], phone_owner=s.phone_owner or None)
            break
    pids = {s.pid_hmac for s in consented if s.pid_hmac}
    if len(pids) == 1:
        pid = pids.pop()
        out["pid_hmac"] = pid
        out["pid_last4"] = _latest([s for s in consented if s.pid_hmac == pid], "pid_last4")[0]
    out["pid_conflict"] = len(pids) > 1
    fixes = [s for s in all_snaps[-3:] if s.consent and s.lat is not None and s.lon is not None]
    if fixes:
        # Best accuracy; on a tie the newer fix wins.
        best = min(
            reversed(fixes), key=lambda s: s.accuracy if s.accuracy is not None else float("inf")
        )
        out.update(lat=best.lat, lon=best.lon, accuracy=best.accuracy)
    return out


# --------------------------------------------------------------------------- members


def same_person(a: MemberKeys, b: MemberKeys, config: DedupeConfig = DEFAULT_CONFIG) -> bool:
    """§7.7: equal K_tone, or sim ≥ NAME_STRONG without a diacritic conflict; and birth years
    within YEAR_TOL and the same sex (a missing year or sex does not contradict)."""
    return _person_sim(a, b, config) is not None


def _person_sim(a: MemberKeys, b: MemberKeys, config: DedupeConfig) -> tuple[float, int] | None:
    if not a.name.k_ascii or not b.name.k_ascii:
        return None
    delta = _year_delta(a.birth_year, b.birth_year)
    if delta is not None and delta > config.year_tol:
        return None
    if a.sex and b.sex and a.sex != b.sex:
        return None
    sim, conflict = name_cmp(a.name, b.name)  # equal K_tone gives (100, no conflict)
    if sim >= config.name_strong and not conflict:
        return sim, delta or 0
    return None


@dataclass(frozen=True)
class Person:
    """One person across the snapshots of a household (or a merged cluster)."""

    member_id: str
    records: tuple[tuple[str, int], ...]  # (snapshot_id, member index), oldest first
    name: str  # from the newest record
    birth_year: int | None
    sex: str | None
    last_snapshot_id: str
    left_snapshot_id: str | None  # first later snapshot without them: they left from its date


@dataclass(frozen=True)
class MemberLinks:
    persons: tuple[Person, ...]
    ids: Mapping[tuple[str, int], str]  # (snapshot_id, member index) → member_id
    replaced_ids: Mapping[str, str] = field(default_factory=dict)  # old id → kept id


def link_members(
    snapshots: Sequence[Snapshot],
    previous_ids: Mapping[tuple[str, int], str] | None = None,
    config: DedupeConfig = DEFAULT_CONFIG,
    new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
) -> MemberLinks:
    """Link member records across snapshots in time order (oldest first).

    Each record is matched one-to-one, best similarity first, to a person seen earlier;
    otherwise it starts a new person. ``previous_ids`` (from an earlier run) keeps member ids
    stable: a person keeps the oldest previous id among its records; other previous ids of
    the same person are reported in ``replaced_ids``. Snapshots without members (refusals)
    do not count as members leaving.
    """
    people: list[list[tuple[str, int, MemberKeys, Member]]] = []
    with_members = [s for s in snapshots if s.members]
    for s in with_members:
        keyed = [(i, m, MemberKeys(name_keys(m.name), m.birth_year, m.sex))
                 for i, m in enumerate(s.members)]  # fmt: skip
        options = []
        for i, _m, mk in keyed:
            for p, recs in enumerate(people):
                sims = [r for r in (_person_sim(mk, rk, config) for _, _, rk, _ in recs) if r]
                if sims:
                    best_sim, best_delta = max(sims, key=lambda x: (x[0], -x[1]))
                    options.append((-best_sim, best_delta, -len(recs), p, i))
        options.sort()
        taken_people: set[int] = set()
        placed: dict[int, int] = {}
        for _, _, _, p, i in options:
            if p not in taken_people and i not in placed:
                taken_people.add(p)
                placed[i] = p
        for i, m, mk in keyed:
            record = (s.snapshot_id, i, mk, m)
            if i in placed:
                people[placed[i]].append(record)
            else:
                people.append([record])

    order = [s.snapshot_id for s in with_members]
    position = {sid: n for n, sid in enumerate(order)}
    previous = previous_ids or {}
    used: set[str] = set()
    chosen: list[str | None] = []
    for recs in people:  # oldest person first keeps a contested previous id
        olds = [previous[(sid, i)] for sid, i, _, _ in recs if (sid, i) in previous]
        kept = next((o for o in olds if o not in used), None)
        if kept is not None:
            used.add(kept)
        chosen.append(kept)
    replaced: dict[str, str] = {}
    persons: list[Person] = []
    ids: dict[tuple[str, int], str] = {}
    for recs, kept in zip(people, chosen, strict=True):
        member_id = kept if kept is not None else new_id()
        for sid, i, _, _ in recs:
            old = previous.get((sid, i))
            if old is not None and old not in used:
                replaced[old] = member_id
        last_sid, _, _, last_member = recs[-1]
        nxt = position[last_sid] + 1
        persons.append(
            Person(
                member_id=member_id,
                records=tuple((sid, i) for sid, i, _, _ in recs),
                name=display_text(last_member.name),
                birth_year=last_member.birth_year,
                sex=last_member.sex,
                last_snapshot_id=last_sid,
                left_snapshot_id=order[nxt] if nxt < len(order) else None,
            )
        )
        ids.update(((sid, i), member_id) for sid, i, _, _ in recs)
    return MemberLinks(tuple(persons), ids, replaced)


def find_member(
    name: str,
    members: Sequence[Member],
    birth_year: int | None = None,
    sex: str | None = None,
    config: DedupeConfig = DEFAULT_CONFIG,
) -> int | None:
    """Index of the member a free-text name (``svc_member_other``) refers to, by the §7.7 rule;
    None when nobody matches or two members match equally well."""
    probe = MemberKeys(name_keys(name), birth_year, sex)
    scored = []
    for i, m in enumerate(members):
        r = _person_sim(probe, MemberKeys(name_keys(m.name), m.birth_year, m.sex), config)
        if r is not None:
            scored.append((-r[0], r[1], i))
    scored.sort()
    if not scored or (len(scored) > 1 and scored[0][:2] == scored[1][:2]):
        return None
    return scored[0][2]


# --------------------------------------------------------------------------- review triggers


@dataclass(frozen=True)
class ReviewReason:
    kind: str  # head_changed | shared_phone | tdp_changed
    household_ids: tuple[str, ...]
    snapshot_ids: tuple[str, ...]
    detail: str


def review_reasons(
    snapshots: Iterable[Snapshot],
    config: DedupeConfig = DEFAULT_CONFIG,
    canonical_of: Mapping[str, str] | None = None,
) -> list[ReviewReason]:
    """§7.8 triggers computable from snapshots alone. Households are canonical ids when
    ``canonical_of`` (alias → canonical) is given, else entity ids."""
    canon = canonical_of or {}
    ordered = time_order(snapshots)
    by_entity: dict[str, list[Snapshot]] = defaultdict(list)
    by_household: dict[str, list[Snapshot]] = defaultdict(list)
    for s in ordered:
        by_entity[s.entity_id].append(s)
        by_household[canon.get(s.entity_id, s.entity_id)].append(s)
    out: list[ReviewReason] = []

    for entity, snaps in by_entity.items():
        household = canon.get(entity, entity)
        for n, s in enumerate(snaps):
            if not (s.updated_entity and s.consent and s.head_name.strip()):
                continue
            prev = next((p for p in reversed(snaps[:n]) if p.consent and p.head_name.strip()), None)
            if prev is None:
                continue
            kp, ks = snapshot_keys(prev, config), snapshot_keys(s, config)
            sim, _ = name_cmp(kp.head, ks.head)
            rel = address_rel(kp.street_key, kp.numbers, ks.street_key, ks.numbers)
            if sim < config.head_change_sim and rel != "same":
                detail = f"head similarity {sim:.0f}, address {rel}"
                out.append(
                    ReviewReason(
                        "head_changed", (household,), (prev.snapshot_id, s.snapshot_id), detail
                    )
                )

    phone_households: dict[str, dict[str, str]] = defaultdict(dict)
    for household, snaps in by_household.items():
        if len(snaps) > 1 and snaps[-1].tdp != snaps[-2].tdp:
            detail = f"{snaps[-2].tdp} → {snaps[-1].tdp}"
            out.append(
                ReviewReason(
                    "tdp_changed",
                    (household,),
                    (snaps[-2].snapshot_id, snaps[-1].snapshot_id),
                    detail,
                )
            )
        for s in reversed(snaps):
            phone = normalize_phone(s.phone) if s.consent else None
            if phone:
                phone_households[phone][household] = s.snapshot_id
                break
    for phone, households in phone_households.items():
        if len(households) > config.phone_households_max:
            hh = tuple(sorted(households))
            detail = f"phone …{phone[-3:]} on {len(hh)} households"
            out.append(ReviewReason("shared_phone", hh, tuple(households[h] for h in hh), detail))
    return sorted(out, key=lambda r: (r.kind, r.household_ids, r.snapshot_ids))
