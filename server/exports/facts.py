"""What the ward's reports read, loaded "as of" a cut-off (domain §6.1, §6.5) and kept for the
next report while the data is unchanged (facts_cache.py).

Why one loader: the indicators (E1/E2) and the registers (E3–E5) must agree household by
household, so both read the same facts: for every submission the latest version uploaded by the
cut-off, households after de-duplication as it stood at the cut-off (aliases mapped to their
canonical household), members with their linked ids, and one service event per visit × service
block × member. Rows are read by chunks and turned into small records at once, so no ORM
object or JSON document outlives its chunk and memory grows with the ward, not with the
history.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from zoneinfo import ZoneInfo

import orjson
from sqlalchemy import Select, Text, bindparam, cast, func, select
from sqlalchemy.orm import Session, aliased

from server.db.models import (
    DedupePair,
    Entity,
    Form,
    HouseholdSnapshot,
    HouseholdStatus,
    MergeLogEntry,
    ServiceCheck,
    Submission,
    SubmissionVersion,
    User,
    VolunteerTraining,
)
from server.domain import dedupe
from server.domain.entities import local_date
from server.domain.normalize import name_keys
from server.exports.collector import collector_paused

__all__ = [
    "DEFAULT_TIMEZONE",
    "HOUSEHOLD_SERVICES",
    "RECURRING_SERVICES",
    "Facts",
    "HouseholdFact",
    "MemberRecord",
    "PendingPair",
    "ServiceEvent",
    "SnapshotFact",
    "VisitFact",
    "Volunteer",
    "facts_for_ward",
    "load_facts",
    "parse_local_date",
]

DEFAULT_TIMEZONE = "Asia/Ho_Chi_Minh"
SURVEY_FORM = "household_survey"
VISIT_FORM = "support_visit"
DATASET = "households"
MEMBERS_REPEAT = "g_members/members"
SERVICES_REPEAT = "g_svc/svc"
#: Services whose block is about the household, not a person (§4.2 `level` column).
HOUSEHOLD_SERVICES = frozenset({"biz_qr", "ecommerce"})
#: Services that count once per (member, service, date) instead of once ever (§6.6).
RECURRING_SERVICES = frozenset({"dvc_procedure", "safety", "other"})
TEAM_ROLES = ("volunteer", "supervisor")
_CHUNK = 500  # submissions read per query


# --------------------------------------------------------------------------- records

# The records of every submission are read-only once loaded (one load serves several reports,
# facts_cache.py), but not `frozen`: a frozen dataclass sets each field through
# object.__setattr__, several times slower to build by the ten thousand. Hashable as before.


@dataclass(slots=True, unsafe_hash=True)
class MemberRecord:
    """One member of one snapshot, read from the effective fields (member 1 is the head)."""

    index: int  # 0 = the head
    key: str  # person id for matching events: member_id, or a per-snapshot stand-in
    member_id: str  # the linked person id ('' when the snapshot was never linked)
    name: str
    birth_year: int | None
    sex: str
    relation: str
    smartphone: str
    skills: str
    vneid: str
    dvc: str
    cashless: str
    digisig: str
    vssid: str
    ehealth: str
    bdhvs: str
    student: str
    student_trained: str
    needs: str


@dataclass(slots=True, unsafe_hash=True)
class SnapshotFact:
    """One household survey where someone was met (its latest version at the cut-off)."""

    submission_id: int
    instance_id: str
    entity_id: str  # as submitted
    household_id: str  # canonical household at the cut-off
    tdp: str
    survey_date: dt.date
    uploaded_at: dt.datetime  # first upload of the submission
    volunteer_id: str
    consent: bool
    new_household: bool  # hh_mode = new: this survey created an entity
    street: str
    street_other: str
    alley: str
    house_no: str
    landmark: str
    head_name: str
    head_birth_year: int | None
    head_sex: str
    phone: str
    phone_owner: str
    pid_hmac: str | None
    pid_last4: str | None
    lat: float | None
    lon: float | None
    accuracy: float | None
    informed: str
    channels: str
    internet: str
    pupils: str
    school_app: str
    business: str
    biz_registered: str
    biz_type: str
    biz_cashless: str
    biz_pay_methods: str
    ocop: str
    ocop_name: str
    biz_online: str
    helper: str
    members: tuple[MemberRecord, ...]

    def order_key(self) -> tuple:
        return (self.survey_date, self.uploaded_at, self.submission_id)


@dataclass(slots=True, unsafe_hash=True)
class VisitFact:
    """One support-visit submission (its latest version at the cut-off)."""

    submission_id: int
    instance_id: str
    submitted_at: dt.datetime  # first upload: when the visit reached the server
    visit_date: dt.date
    volunteer_id: str
    volunteer_tdp: str
    household_id: str  # canonical household at the cut-off
    entity_id_submitted: str
    tdp_submitted: str
    visit_mode: str
    minutes: int | None
    followup_date: dt.date | None
    satisfaction: str
    has_photo: bool
    needs_followup: bool  # some block is not done

    def order_key(self) -> tuple:
        return (self.visit_date, self.submitted_at, self.instance_id)


@dataclass(slots=True)
class ServiceEvent:
    """One row of E5: visit × service block × member (§6.1)."""

    visit: VisitFact
    row: int  # position within the visit's rows
    block: int
    service_code: str
    service_level: str  # person | household | '' (a visit without any block)
    member_key: str  # who, for status and uniqueness ('' for household-level services)
    member_id: str  # exported member id ('' when unknown or household-level)
    member_name_other: str
    outcome: str
    member_done: bool
    fail_reason: str
    dossier: str
    minutes_share: Decimal | None
    verified: bool | None = None
    is_unique_completion: bool = False

    @property
    def is_household_level(self) -> bool:
        return self.service_level == "household"

    @property
    def is_completion(self) -> bool:
        """§6.6: `member_done = 1`, or a household-level block that is done."""
        return self.member_done


@dataclass(frozen=True, slots=True)
class Volunteer:
    """A team member: the volunteers of every team and the leaders (supervisors) of a tổ."""

    user_id: int
    username: str
    display_name: str
    role: str
    team: str  # tdpNN, or "ward" for ward-level members
    joined: dt.date  # joined_on of the registry, else the local date the account was created
    active: bool
    trainings: tuple[dt.date, ...]
    left: dt.date | None = None  # left_on of the registry: no longer a member from that day

    def active_at(self, day: dt.date) -> bool:
        if self.left is not None:
            return self.joined <= day < self.left
        # an account switched off without a leaving date has no period of membership to keep
        return self.active and self.joined <= day

    def trained_between(self, start: dt.date, end: dt.date) -> bool:
        return any(start <= d <= end for d in self.trainings)


@dataclass(frozen=True, slots=True)
class PendingPair:
    """An unresolved dedupe review pair at the cut-off and the tổ of its two snapshots."""

    pair_id: int
    household_a: str
    household_b: str
    snapshot_tdps: tuple[str, str]


@dataclass(slots=True)
class HouseholdFact:
    """A canonical household: its snapshots, visits and office status records, oldest first."""

    household_id: str
    entity_ids: set[str] = field(default_factory=set)
    snapshots: list[SnapshotFact] = field(default_factory=list)
    visits: list[VisitFact] = field(default_factory=list)
    events: list[ServiceEvent] = field(default_factory=list)
    statuses: list[tuple[dt.date, int, str]] = field(default_factory=list)
    merged_by_review: bool = False
    pending_review: bool = False
    fallback_tdp: str = ""

    def snapshots_until(self, day: dt.date) -> list[SnapshotFact]:
        return [s for s in self.snapshots if s.survey_date <= day]

    def latest_until(self, day: dt.date) -> SnapshotFact | None:
        found = None
        for s in self.snapshots:
            if s.survey_date <= day:
                found = s
        return found

    def tdp_at(self, day: dt.date) -> str:
        """The tổ of the latest snapshot on or before `day` (§6.1); before the first survey,
        the first survey's tổ; without any survey, the tổ the visits or the entity name."""
        latest = self.latest_until(day)
        if latest is not None:
            return latest.tdp
        return self.snapshots[0].tdp if self.snapshots else self.fallback_tdp

    def status_at(self, day: dt.date) -> str:
        """active | moved_out | dissolved: the latest office record dated on or before `day`."""
        status = "active"
        for when, _, value in self.statuses:
            if when <= day:
                status = value
        return status

    @property
    def first_created(self) -> dt.date | None:
        """Event date of the first survey that created one of its entities (A02)."""
        dates = [s.survey_date for s in self.snapshots if s.new_household]
        dates = dates or [s.survey_date for s in self.snapshots]
        return min(dates) if dates else None


@dataclass
class Facts:
    """Everything one report needs, as of `as_of` (None: everything received so far)."""

    project_id: int
    as_of: dt.datetime | None
    timezone: str
    households: dict[str, HouseholdFact]
    visits: list[VisitFact]
    events: list[ServiceEvent]
    volunteers: list[Volunteer]
    pending_pairs: list[PendingPair]
    data_cutoff: dt.datetime | None  # latest upload among the submissions included
    # Figures derived from these facts, kept so that several reports built from one load
    # (12 months, 4 quarters, the year) compute each date only once.
    memo: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def local(self, moment: dt.datetime | None) -> dt.datetime | None:
        return None if moment is None else moment.astimezone(self.zone)


# --------------------------------------------------------------------------- helpers


def parse_local_date(value: str | None, zone: str) -> dt.date | None:
    """An ISO date as the forms store it; Collect's long form is read as its local date."""
    text = local_date((value or "").strip(), zone)[:10]
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        return None


def _year(value: str) -> int | None:
    value = (value or "").strip()
    return int(value) if value.isdigit() and 1880 <= int(value) <= 2100 else None


def _int(value: str) -> int | None:
    value = (value or "").strip()
    try:
        return int(value)
    except ValueError:
        try:
            return int(float(value))
        except ValueError:
            return None


def _geopoint(value: str) -> tuple[float | None, float | None, float | None]:
    parts = (value or "").split()
    try:
        lat, lon = float(parts[0]), float(parts[1])
    except (IndexError, ValueError):
        return None, None, None
    try:
        accuracy = float(parts[3]) if len(parts) >= 4 else None
    except ValueError:
        accuracy = None
    return lat, lon, accuracy


def _split(value: str) -> list[str]:
    return [v for v in (value or "").split() if v]


def minute_shares(minutes: int | None, n: int) -> list[Decimal | None]:
    """`minutes` split over `n` rows in hundredths, remainders to the first rows, so the
    shares of one visit add up exactly to its minutes."""
    if minutes is None or n <= 0:
        return [None] * n
    base, extra = divmod(minutes * 100, n)
    return [(Decimal(base + (i < extra)) / 100).quantize(Decimal("0.01")) for i in range(n)]


class _Canon:
    """Alias → canonical household at the cut-off, following chains defensively."""

    def __init__(self, parent: dict[str, str]) -> None:
        self.parent = parent
        self._memo: dict[str, str] = {}

    def __call__(self, entity_id: str) -> str:
        if entity_id in self._memo:
            return self._memo[entity_id]
        seen = {entity_id}
        current = entity_id
        while (nxt := self.parent.get(current)) and nxt not in seen:
            seen.add(nxt)
            current = nxt
        self._memo[entity_id] = current
        return current


# --------------------------------------------------------------------------- loading


@collector_paused()
def load_facts(
    session: Session,
    project_id: int,
    *,
    as_of: dt.datetime | None = None,
    timezone: str = DEFAULT_TIMEZONE,
    config: dedupe.DedupeConfig = dedupe.DEFAULT_CONFIG,
) -> Facts:
    """Load the facts of one project as of `as_of` (an aware datetime; None = now)."""
    if as_of is not None and as_of.tzinfo is None:
        raise ValueError("as_of must be timezone-aware")
    users = {u.id: u for u in session.scalars(select(User))}
    by_username = {u.username: u for u in users.values()}
    canon, reviewed_aliases, erased = _alias_map(session, project_id, as_of)
    forms = dict(session.execute(
        select(Form.xml_form_id, Form.id).where(
            Form.project_id == project_id, Form.xml_form_id.in_((SURVEY_FORM, VISIT_FORM)))
    ).all())

    households: dict[str, HouseholdFact] = {}

    def household(hid: str) -> HouseholdFact:
        h = households.get(hid)
        if h is None:
            h = households[hid] = HouseholdFact(hid)
        return h

    cutoff: dt.datetime | None = None
    raw_visits: list[tuple[VisitFact, list[dict[str, str]]]] = []
    for row in _current_versions(session, _latest_versions(forms, as_of)):
        cutoff = row.received_at if cutoff is None or row.received_at > cutoff else cutoff
        fields = _json(row.fields) or {}
        submitter = users.get(row.submitter_id) if row.submitter_id is not None else None
        if submitter is None:  # the form's username is only a fallback (§2.7)
            submitter = by_username.get((fields.get("root") or {}).get("username", ""))
        if row.form_id == forms.get(SURVEY_FORM):
            snap = _snapshot(row, fields, submitter, canon, timezone)
            if snap is not None and snap.household_id not in erased:
                h = household(snap.household_id)
                h.snapshots.append(snap)
                h.entity_ids.add(snap.entity_id)
        else:
            visit, blocks = _visit(row, fields, submitter, canon, timezone)
            if visit.household_id and visit.household_id not in erased:
                raw_visits.append((visit, blocks))

    for h in households.values():
        h.snapshots.sort(key=SnapshotFact.order_key)
    raw_visits.sort(key=lambda vb: vb[0].order_key())
    visits: list[VisitFact] = []
    events: list[ServiceEvent] = []
    matches: dict[tuple[str, int], tuple[str, str]] = {}
    for visit, blocks in raw_visits:
        h = household(visit.household_id)
        h.entity_ids.add(visit.entity_id_submitted)
        if not h.fallback_tdp:
            h.fallback_tdp = visit.tdp_submitted
        rows = _events(visit, blocks, h, config, matches)
        h.visits.append(visit)
        h.events.extend(rows)
        visits.append(visit)
        events.extend(rows)

    for entity_id, canonical in canon.parent.items():
        if canonical and (target := canon(entity_id)) in households:
            households[target].entity_ids.add(entity_id)
    for alias in reviewed_aliases:
        if (target := canon(alias)) != alias and target in households:
            households[target].merged_by_review = True
    for h in households.values():
        h.entity_ids.add(h.household_id)

    _mark_unique(events)
    _attach_checks(session, project_id, as_of, events)
    _attach_statuses(session, project_id, as_of, canon, households, timezone)
    pending = _pending_pairs(session, project_id, as_of, canon)
    for pair in pending:
        for hid in (pair.household_a, pair.household_b):
            if hid in households:
                households[hid].pending_review = True
    volunteers = _volunteers(session, project_id, as_of, timezone)
    return Facts(project_id=project_id, as_of=as_of, timezone=timezone, households=households,
                 visits=visits, events=events, volunteers=volunteers, pending_pairs=pending,
                 data_cutoff=cutoff)


def _alias_map(session: Session, project_id: int, as_of: dt.datetime | None
               ) -> tuple[_Canon, set[str], set[str]]:
    """Alias → canonical as it stood at the cut-off, the aliases a person merged, and the
    erased (or deleted) households. Without a cut-off the entities say it; with one, the merge
    log does (merges decided by then and not undone by then), so later decisions are ignored."""
    parent: dict[str, str] = {}
    erased: set[str] = set()
    for eid, canonical, is_erased, deleted_at in session.execute(
        select(Entity.id, Entity.canonical_id, Entity.erased, Entity.deleted_at).where(
            Entity.project_id == project_id, Entity.dataset == DATASET)
    ):
        if canonical and as_of is None:
            parent[eid] = canonical
        # A household deleted through the API stops counting from its deletion on.
        if is_erased or (deleted_at is not None and (as_of is None or deleted_at <= as_of)):
            erased.add(eid)
    reviewed: set[str] = set()
    query = (select(MergeLogEntry.alias_id, MergeLogEntry.canonical_id,
                    MergeLogEntry.decided_by, MergeLogEntry.undone_at)
             .where(MergeLogEntry.project_id == project_id, MergeLogEntry.action == "merge")
             .order_by(MergeLogEntry.decided_at, MergeLogEntry.id))
    if as_of is not None:
        query = query.where(MergeLogEntry.decided_at <= as_of)
    for alias, canonical, decided_by, undone_at in session.execute(query):
        live = undone_at is None or (as_of is not None and undone_at > as_of)
        if as_of is not None:
            if live:
                parent[alias] = canonical
            else:
                parent.pop(alias, None)
        if live and decided_by is not None:
            reviewed.add(alias)
        elif not live:
            reviewed.discard(alias)
    canon = _Canon(parent)
    return canon, reviewed, {canon(e) for e in erased}


def _latest_versions(forms: dict[str, int], as_of: dt.datetime | None) -> Select:
    """The id of the latest version of every survey and visit submission uploaded by the
    cut-off (none without the forms)."""
    latest = (select(func.max(SubmissionVersion.id))
              .where(SubmissionVersion.form_id.in_(forms.values()))
              .group_by(SubmissionVersion.submission_id))
    if as_of is not None:
        latest = latest.where(SubmissionVersion.received_at <= as_of)
    return latest


def _current_versions(session: Session, latest: Select) -> Iterator:
    """The `latest` versions, in submission order. The version ids come first, then the rows
    by chunks of ids: sorting the rows themselves (each carries its JSON document) cost more
    than reading them."""
    snap = aliased(HouseholdSnapshot)
    rows = (
        # JSON as text, parsed here by orjson: several times faster than the column type's json
        select(SubmissionVersion.id, SubmissionVersion.form_id, SubmissionVersion.submission_id,
               SubmissionVersion.instance_id, SubmissionVersion.received_at,
               cast(SubmissionVersion.fields, Text).label("fields"), SubmissionVersion.pid_hmac,
               SubmissionVersion.pid_last4, Submission.created_at.label("first_upload"),
               Submission.submitter_id, snap.entity_id.label("snapshot_entity"),
               cast(snap.member_ids, Text).label("member_ids"))
        .join(Submission, Submission.id == SubmissionVersion.submission_id)
        .outerjoin(snap, snap.submission_version_id == SubmissionVersion.id)
        .where(SubmissionVersion.id.in_(bindparam("ids", expanding=True)))
    )
    conn = session.connection()  # Core rows, no ORM layer: plain columns are all this needs
    ids = conn.execute(latest.order_by(SubmissionVersion.submission_id)).scalars().all()
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start:start + _CHUNK]
        by_id = {row.id: row for row in conn.execute(rows, {"ids": chunk}).all()}
        for version_id in chunk:
            if (row := by_id.get(version_id)) is not None:  # None: erased meanwhile
                yield row


def _json(text: str | None):
    """A stored JSON document; json accepts a few things orjson refuses (a lone surrogate)."""
    if text is None:
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def _snapshot(row, fields: dict, submitter: User | None, canon: _Canon,
              zone: str) -> SnapshotFact | None:
    root = fields.get("root") or {}
    if root.get("g_intro/contact_result") != "met":
        return None  # an absent attempt records activity, not a snapshot (§6.1)
    entity_id = (row.snapshot_entity or root.get("entity_id") or "").strip().lower()
    if not entity_id:
        return None
    survey_date = (parse_local_date(root.get("survey_date"), zone)
                   or parse_local_date(root.get("today"), zone)
                   or row.first_upload.astimezone(ZoneInfo(zone)).date())
    member_ids = list(_json(row.member_ids) or [])
    members = []
    for i, rep in enumerate((fields.get("repeats") or {}).get(MEMBERS_REPEAT, [])):
        v = rep.get("values") or {}
        mid = (member_ids[i] if i < len(member_ids) else None) or ""
        members.append(MemberRecord(
            index=i, key=mid or f"{row.instance_id}#{i}", member_id=mid,
            name=v.get("m_name_eff", ""), birth_year=_year(v.get("m_birth_year_eff", "")),
            sex=v.get("m_sex_eff", ""), relation=v.get("m_rel", ""),
            smartphone=v.get("m_smartphone", ""), skills=v.get("m_skills", ""),
            vneid=v.get("m_vneid", ""), dvc=v.get("m_dvc", ""), cashless=v.get("m_cashless", ""),
            digisig=v.get("m_digisig", ""), vssid=v.get("m_vssid", ""),
            ehealth=v.get("m_ehealth", ""), bdhvs=v.get("m_bdhvs", ""),
            student=v.get("m_student", ""), student_trained=v.get("m_student_trained", ""),
            needs=v.get("m_needs", "")))
    consent = root.get("g_intro/consent") == "yes"
    lat, lon, accuracy = _geopoint(root.get("g_end/location", ""))
    return SnapshotFact(
        submission_id=row.submission_id, instance_id=row.instance_id, entity_id=entity_id,
        household_id=canon(entity_id), tdp=root.get("g_intro/tdp", ""), survey_date=survey_date,
        uploaded_at=row.first_upload,
        volunteer_id=submitter.username if submitter else root.get("username", ""),
        consent=consent, new_household=root.get("g_intro/hh_mode") != "existing",
        street=root.get("g_addr/street", ""), street_other=root.get("g_addr/street_other", ""),
        alley=root.get("g_addr/alley", ""), house_no=root.get("g_addr/house_no", ""),
        landmark=root.get("g_addr/landmark", ""), head_name=root.get("g_head/head_name", ""),
        head_birth_year=_year(root.get("g_head/head_birth_year", "")),
        head_sex=root.get("g_head/head_sex", ""), phone=root.get("g_head/phone", ""),
        phone_owner=root.get("g_head/phone_owner", ""), pid_hmac=row.pid_hmac,
        pid_last4=row.pid_last4, lat=lat, lon=lon, accuracy=accuracy,
        informed=root.get("g_hh/hh_informed", ""), channels=root.get("g_hh/hh_channels", ""),
        internet=root.get("g_hh/hh_internet", ""), pupils=root.get("g_hh/hh_pupils", ""),
        school_app=root.get("g_hh/hh_school_app", ""),
        business=root.get("g_hh/hh_business", ""),
        biz_registered=root.get("g_hh/biz_registered", ""),
        biz_type=root.get("g_hh/biz_type", ""), biz_cashless=root.get("g_hh/biz_cashless", ""),
        biz_pay_methods=root.get("g_hh/biz_pay_methods", ""), ocop=root.get("g_hh/biz_ocop", ""),
        ocop_name=root.get("g_hh/biz_ocop_name", ""), biz_online=root.get("g_hh/biz_online", ""),
        helper=root.get("g_help/assigned_helper", "") if consent else "",
        members=tuple(members) if consent else (),
    )


def _visit(row, fields: dict, submitter: User | None, canon: _Canon,
           zone: str) -> tuple[VisitFact, list[dict[str, str]]]:
    root = fields.get("root") or {}
    entity_id = (root.get("g_hh/hh") or "").strip().lower()
    blocks = [rep.get("values") or {}
              for rep in (fields.get("repeats") or {}).get(SERVICES_REPEAT, [])]
    visit_date = (parse_local_date(root.get("g_hh/visit_date"), zone)
                  or parse_local_date(root.get("today"), zone)
                  or row.first_upload.astimezone(ZoneInfo(zone)).date())
    not_done = any(b.get("svc_outcome", "") not in ("done",) for b in blocks)
    followup = parse_local_date(root.get("g_close/followup_date"), zone) if not_done else None
    visit = VisitFact(
        submission_id=row.submission_id, instance_id=row.instance_id,
        submitted_at=row.first_upload, visit_date=visit_date,
        volunteer_id=submitter.username if submitter else root.get("username", ""),
        volunteer_tdp=(submitter.team or "") if submitter else "",
        household_id=canon(entity_id) if entity_id else "", entity_id_submitted=entity_id,
        tdp_submitted=root.get("g_hh/tdp", ""), visit_mode=root.get("g_hh/visit_mode", ""),
        minutes=_int(root.get("g_close/minutes", "")), followup_date=followup,
        satisfaction=root.get("g_close/satisfaction", ""),
        has_photo=bool((root.get("g_close/photo") or "").strip()), needs_followup=not_done)
    return visit, blocks


def _reference_snapshot(h: HouseholdFact, day: dt.date) -> SnapshotFact | None:
    """The consented snapshot a visit's free-text names are matched against: the latest one
    on or before the visit date, else the first one after it."""
    consented = [s for s in h.snapshots if s.consent and s.members]
    before = [s for s in consented if s.survey_date <= day]
    if before:
        return before[-1]
    return consented[0] if consented else None


def _match_member(name: str, reference: SnapshotFact | None, config: dedupe.DedupeConfig,
                  known: dict[tuple[str, int], tuple[str, str]]) -> tuple[str, str]:
    """(key, member id) of the member of `reference` a typed name refers to (§7.7), or blanks.
    Households are visited again and again with the same names: each name is matched against
    a snapshot once (`known`)."""
    if reference is None:
        return "", ""
    asked = (name, reference.submission_id)
    found = known.get(asked)
    if found is None:
        index = dedupe.find_member(
            name, [dedupe.Member(m.name, m.birth_year, m.sex) for m in reference.members],
            config=config)
        member = None if index is None else reference.members[index]
        found = known[asked] = ("", "") if member is None else (member.key, member.member_id)
    return found


def _events(visit: VisitFact, blocks: list[dict[str, str]], h: HouseholdFact,
            config: dedupe.DedupeConfig,
            matches: dict[tuple[str, int], tuple[str, str]]) -> list[ServiceEvent]:
    """The E5 rows of one visit; a visit without any block keeps one row for its minutes."""
    specs: list[tuple] = []
    references: list[SnapshotFact | None] = []  # looked up once, when a name is typed
    for b_index, b in enumerate(blocks):
        code = b.get("svc_code", "")
        level = b.get("svc_level", "")
        if level not in ("person", "household"):
            level = "household" if code in HOUSEHOLD_SERVICES else "person"
        outcome = b.get("svc_outcome", "")
        common = (b_index, code, level, outcome, b.get("svc_reason", ""),
                  b.get("svc_dossier", ""))
        if level == "household":
            specs.append((*common, "", "", "", outcome == "done"))
            continue
        ticked = _split(b.get("svc_members", ""))
        done = set(_split(b.get("svc_members_done", "")))
        for member_id in dict.fromkeys(ticked):
            member_done = outcome == "done" or (
                outcome == "partial" and len(ticked) > 1 and member_id in done)
            specs.append((*common, member_id, member_id, "", member_done))
        other = " ".join((b.get("svc_member_other") or "").split())
        if other:
            if not references:
                references.append(_reference_snapshot(h, visit.visit_date))
            key, member_id = _match_member(other, references[0], config, matches)
            specs.append((*common, key, member_id, other, outcome == "done"))
        if not ticked and not other:
            specs.append((*common, "", "", "", outcome == "done"))
    if not specs:
        specs.append((0, "", "", "", "", "", "", "", "", False))
    shares = minute_shares(visit.minutes, len(specs))
    return [
        ServiceEvent(visit=visit, row=i, block=s[0], service_code=s[1], service_level=s[2],
                     member_key=s[6], member_id=s[7], member_name_other=s[8], outcome=s[3],
                     member_done=s[9], fail_reason=s[4], dossier=s[5], minutes_share=share)
        for i, (s, share) in enumerate(zip(specs, shares, strict=True))
    ]


def completion_subject(event: ServiceEvent) -> tuple:
    """Who a completion is about: the household for household-level services, else the
    member (an unmatched free-text name by its tone key within its household)."""
    hid = event.visit.household_id
    if event.is_household_level:
        return ("household", hid)
    if event.member_key:
        return ("member", event.member_key)
    return ("text", hid, name_keys(event.member_name_other).k_tone)


def _mark_unique(events: Sequence[ServiceEvent]) -> None:
    """§6.6: the first ever completion of (member or household, service) by anyone; recurring
    services once per (member, service, date). Ties on a day go to the earliest upload."""
    seen: set[tuple] = set()
    ordered = sorted((e for e in events if e.is_completion and e.service_code),
                     key=lambda e: (*e.visit.order_key(), e.row))
    for e in ordered:
        key: tuple = (completion_subject(e), e.service_code)
        if e.service_code in RECURRING_SERVICES:
            key = (*key, e.visit.visit_date)
        if key not in seen:
            seen.add(key)
            e.is_unique_completion = True


def _attach_checks(session: Session, project_id: int, as_of: dt.datetime | None,
                   events: Iterable[ServiceEvent]) -> None:
    query = (select(ServiceCheck.submission_id, ServiceCheck.service_code,
                    ServiceCheck.member_id, ServiceCheck.verified)
             .where(ServiceCheck.project_id == project_id)
             .order_by(ServiceCheck.checked_at, ServiceCheck.id))
    if as_of is not None:
        query = query.where(ServiceCheck.checked_at <= as_of)
    checks = {(s, c, m or ""): v for s, c, m, v in session.execute(query)}
    if not checks:
        return
    for e in events:
        found = checks.get((e.visit.submission_id, e.service_code, e.member_id))
        if found is not None:
            e.verified = bool(found)


def _attach_statuses(session: Session, project_id: int, as_of: dt.datetime | None,
                     canon: _Canon, households: dict[str, HouseholdFact], zone: str) -> None:
    query = (select(HouseholdStatus.id, HouseholdStatus.entity_id, HouseholdStatus.status,
                    HouseholdStatus.date)
             .where(HouseholdStatus.project_id == project_id))
    if as_of is not None:
        query = query.where(HouseholdStatus.created_at <= as_of)
    for sid, entity_id, status, day in session.execute(query):
        h = households.get(canon((entity_id or "").strip().lower()))
        when = parse_local_date(day, zone)
        if h is not None and when is not None:
            h.statuses.append((when, sid, status))
    for h in households.values():
        h.statuses.sort()


def _pending_pairs(session: Session, project_id: int, as_of: dt.datetime | None,
                   canon: _Canon) -> list[PendingPair]:
    """Review pairs nobody had resolved at the cut-off (a deferred pair is still pending)."""
    snap_a, snap_b = aliased(HouseholdSnapshot), aliased(HouseholdSnapshot)
    query = (select(DedupePair.id, DedupePair.entity_a, DedupePair.entity_b, snap_a.tdp,
                    snap_b.tdp, DedupePair.decision, DedupePair.decided_at)
             .join(snap_a, snap_a.id == DedupePair.snapshot_a)
             .join(snap_b, snap_b.id == DedupePair.snapshot_b)
             .where(DedupePair.project_id == project_id)
             .order_by(DedupePair.id))
    if as_of is not None:
        query = query.where(DedupePair.created_at <= as_of, DedupePair.outcome == "review")
    else:
        query = query.where(DedupePair.status == "pending")
    out = []
    for pid, a, b, tdp_a, tdp_b, decision, decided_at in session.execute(query):
        if as_of is not None and decision not in (None, "defer") and (
                decided_at is not None and decided_at <= as_of):
            continue
        out.append(PendingPair(pid, canon(a), canon(b), (tdp_a or "", tdp_b or "")))
    return out


def _volunteers(session: Session, project_id: int, as_of: dt.datetime | None,
                zone: str) -> list[Volunteer]:
    trained: dict[int, list[dt.date]] = defaultdict(list)
    query = select(VolunteerTraining.user_id, VolunteerTraining.date).where(
        VolunteerTraining.project_id == project_id)
    if as_of is not None:
        query = query.where(VolunteerTraining.created_at <= as_of)
    for user_id, day in session.execute(query):
        if (when := parse_local_date(day, zone)) is not None:
            trained[user_id].append(when)
    users = select(User).where(User.project_id == project_id, User.role.in_(TEAM_ROLES))
    if as_of is not None:
        users = users.where(User.created_at <= as_of)
    local = ZoneInfo(zone)
    out = []
    for u in session.scalars(users.order_by(User.username)):
        # a supervisor is a team member when it leads a tổ; the ward office is not a team
        if u.role != "volunteer" and not (u.team and u.team != "ward"):
            continue
        joined = (parse_local_date(u.joined_on, zone)
                  or u.created_at.astimezone(local).date())
        # a departure entered after the cut-off did not exist yet as of it
        left_known = u.left_on is not None and (
            as_of is None or u.left_recorded_at is None or u.left_recorded_at <= as_of)
        out.append(Volunteer(
            user_id=u.id, username=u.username, display_name=u.display_name, role=u.role,
            team=u.team or "ward", joined=joined,
            active=u.active or (u.left_on is not None and not left_known),
            left=parse_local_date(u.left_on, zone) if left_known else None,
            trainings=tuple(sorted(trained.get(u.id, ())))))
    return out


def facts_for_ward(session: Session, project_id: int, ward, *, as_of: dt.datetime | None,
                   timezone: str, facts: Facts | None = None) -> Facts:
    """The facts a report of `ward` reads: those given (several reports built from one load),
    or those of the ward's de-duplication settings, reused while the data is unchanged."""
    if facts is not None:
        return facts
    from server.exports.facts_cache import cached_facts  # it builds on this module

    return cached_facts(session, project_id, as_of=as_of, timezone=timezone,
                        config=dedupe.DedupeConfig.for_ward(ward))
