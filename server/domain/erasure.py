"""Erasing a person's personal data on request (Law 91/2025/QH15, domain §2.8).

The one exception to "never change a submission": an administrator blanks the personal fields
of the submissions that concern the person, in every stored version, in the XML bytes and in
the parsed fields alike, and in everything derived from them (household snapshots, their
blocking keys, the household's members and entity list), then writes an audit entry saying
who, when, why and which fields, never the erased values.

What is blanked, and why:
- names (`head_name`, `m_name`, `m_name_eff`): they name the person. A member's name becomes
  `(đã xoá 1a2b3c)`, a piece of their random member id, and so does a visit's typed name for
  them (`svc_member_other`): the support they got still counts for them in E4/E5, and a re-run
  of matching still links their records; the automatic merges of the household, found with
  the erased values, become decisions so that it stays one household;
- birth years and the age computed from them (`head_birth_year`, `m_birth_year`,
  `m_birth_year_eff`, `m_age`): with the address they single a person out, and an age gives
  the year back;
- the phone (`phone`, `phone_tail`, `phone_owner`): it reaches the person;
- identity remnants: `head_id` (empty since ingest), `pid_hmac` and `pid_last4` (a keyed hash
  still confirms a guessed number);
- copies of the head's name: `hh_label`, `meta/instanceName`, `meta/entity/label` and the
  household's entity label and properties (the label becomes the address-only one, as after a
  withdrawal of consent, §3.1);
- when the household or its head is erased, the house position and the photos: they locate the
  person's home as precisely as a name, and a withdrawal of consent blanks the position too;
  client audit logs (`meta/audit`) always, as they may record typed answers;
- free text in the submissions concerned (`notes`, `services_other`, `svc_dossier`, whose
  dossier code identifies one of the person's procedures); a typed name that is nobody's in
  the household becomes "(đã xoá)", so that the support event keeps its E5 row;
- the person's names and phone inside staff's free text about those submissions and households
  (review comments, decision notes, office notes): replaced by "[đã xoá]".
- the same names and phone in the reports already issued (their CSV cells and workbook cells,
  and their notes): replaced by "[đã xoá]", so that no archived copy keeps them; the reports'
  rows and figures stay as issued.

What stays: the address (the dwelling, kept as on a withdrawal so that the tổ knows it was
surveyed), sex, relationships and every digital-status answer (the ward's counts; without a
name, a birth year or a phone they single nobody out), instanceIDs, member ids and the XML
structure (exports, Collect edits and resends keep working). Reports therefore keep the same
households, members, visits and events; an erased person counts with an unknown age, like a
member whose birth year was never given.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from lxml import etree
from sqlalchemy import delete, func, insert, or_, select, text
from sqlalchemy.orm import Session

from server.db.models import (
    Attachment,
    AuditEntry,
    Blob,
    BlobContent,
    DedupePair,
    Entity,
    EntityProblem,
    EntityVersion,
    Form,
    FormMedia,
    FormVersion,
    HouseholdBlockKey,
    HouseholdMember,
    HouseholdSnapshot,
    HouseholdStatus,
    IssuedReportFile,
    MergeLogEntry,
    ReviewComment,
    ServiceCheck,
    SubmissionVersion,
    User,
    utcnow,
)
from server.domain import dedupe, entities, households, matching
from server.domain.forms import schema_of
from server.domain.instance import parse_fields
from server.domain.normalize import clean_text, name_keys, normalize_phone
from server.xml import children, parse_xml

ACTION = "personal_data.erase"
DATASET = "households"
TYPED_PLACEHOLDER = "(đã xoá)"
TEXT_PLACEHOLDER = "[đã xoá]"
NO_HEAD_LABEL = "(chưa có thông tin chủ hộ)"  # the form's address-only label ending

HOUSEHOLD_FIELDS = frozenset({"head_name", "head_birth_year", "phone", "phone_tail",
                              "phone_owner", "head_id", "hh_label", "instanceName", "label"})
MEMBER_FIELDS = frozenset({"m_name", "m_name_eff", "m_birth_year", "m_birth_year_eff", "m_age"})
SERVICE_FIELDS = frozenset({"svc_member_other", "svc_dossier", "services_other"})
FREE_TEXT_FIELDS = frozenset({"notes"})
NAME_FIELDS = frozenset({"head_name", "m_name", "m_name_eff", "svc_member_other"})
GEO_TYPES = frozenset({"geopoint", "geotrace", "geoshape"})
ENTITY_PERSONAL = ("head_name", "head_birth_year", "phone_tail", "geometry")
REASON_MAX = 500
# The tables erasure writes to: on PostgreSQL their dead row versions are vacuumed afterwards.
VACUUMED = ("submission_versions", "attachments", "blobs", "blob_contents",
            "household_snapshots", "household_block_keys", "household_members", "entities",
            "entity_versions", "dedupe_pairs", "merge_log", "household_statuses",
            "service_checks", "review_comments", "entity_problems", "audit_log")

log = logging.getLogger(__name__)


class ErasureError(ValueError):
    """The request cannot be carried out; nothing was changed."""


@dataclass
class Result:
    audit_id: int
    target: str
    submissions: list[str]  # logical instance ids
    versions: int
    fields: list[str]  # paths that were blanked somewhere
    members: int  # household member records blanked
    files: list[str]  # sha256 of removed files: `release` deletes their bytes after the commit
    encrypted: int = 0  # versions the server cannot read, left as they are


@dataclass
class _Cut:
    """What to blank in one submission version."""

    household: bool = False  # head, phone, identity, labels, position, files
    members: dict[int, str] = field(default_factory=dict)  # member item → its neutral name
    services: set[int] | None = field(default_factory=set)  # service blocks; None = all
    typed: Callable[[str], str | None] = lambda _value: None  # typed name → new text (None: kept)


@dataclass
class _Found:
    """What the blanking met: values for redacting free text, and what it touched."""

    names: set[str] = field(default_factory=set)
    people: set[str] = field(default_factory=set)  # names met in member and head fields
    phones: set[str] = field(default_factory=set)
    paths: set[str] = field(default_factory=set)
    files: set[str] = field(default_factory=set)
    versions: int = 0
    encrypted: int = 0
    reports: int = 0  # issued report files rewritten
    old_reports: set[str] = field(default_factory=set)  # the bytes they replaced


def neutral_name(member_id: str | None, fallback: int | None = None) -> str:
    """What an erased person is called from now on: no name, only a piece of the random member
    id, so that their records still link to each other (a visit that typed their name still
    counts for them, and a re-run of matching keeps them one person)."""
    if member_id:
        return f"(đã xoá {member_id[:6]})"
    return TYPED_PLACEHOLDER if fallback is None else f"(đã xoá #{fallback})"


class _People:
    """The persons of a household: their member records across its snapshots."""

    def __init__(self, session: Session, cluster: set[str], snaps: list[HouseholdSnapshot]):
        self.rows = list(session.scalars(select(HouseholdMember).where(
            HouseholdMember.household_id.in_(sorted(cluster)))))
        self.records = {m.id: [dedupe.Member(m.name, m.birth_year, m.sex)] for m in self.rows}
        self.ids = {s.submission_version_id: list(s.member_ids or []) for s in snaps}
        for s in snaps:
            listed = (s.data or {}).get("members") or []
            for i, mid in enumerate(s.member_ids or []):
                if mid in self.records and i < len(listed):
                    m = listed[i]
                    self.records[mid].append(
                        dedupe.Member(m.get("name"), m.get("birth_year"), m.get("sex")))

    def match(self, name: str, year: int | None = None) -> str | None:
        """The one person this name (and birth year) is, if exactly one."""
        hits = {mid for mid, recs in self.records.items() if _same_person(name, year, recs)}
        return hits.pop() if len(hits) == 1 else None

    def items(self, version: SubmissionVersion) -> dict[int, str]:
        """Every member item of a version, with the neutral name of the person it is."""
        ids = self.ids.get(version.id, [])
        out = {}
        for i, row in enumerate(_rows_with(version.fields, "m_name_eff")):
            values = row.get("values") or {}
            mid = (ids[i] if i < len(ids) and ids[i] else
                   self.match(values.get("m_name_eff", ""),
                              _year(values.get("m_birth_year_eff", ""))))
            out[i] = neutral_name(mid, i + 1)
        return out

    def typed(self, value: str) -> str:
        return neutral_name(self.match(value))


# Entry points --------------------------------------------------------------------------------


def erase_household(session: Session, store, *, household_id: str, actor: User, reason: str,
                    member: str | None = None, member_id: str | None = None,
                    streets: dict[str, str] | None = None) -> Result:
    """Erase a whole household (head and members), or one member of it (`member` = the name as
    it is written, case and diacritics aside, or `member_id`). `store`: the blob store, where
    issued reports naming the person are rewritten."""
    reason = _check(actor, reason)
    _secure_delete(session)
    hid = (household_id or "").strip().lower()
    entity = session.get(Entity, hid) if 0 < len(hid) <= 36 else None
    if entity is None or entity.dataset != DATASET:
        raise ErasureError(f"household {household_id!r} does not exist")
    canonical = entities.resolve(session, entity.id)[0] or entity
    cluster = _cluster(session, canonical.id)
    snaps = list(session.scalars(select(HouseholdSnapshot).where(
        HouseholdSnapshot.entity_id.in_(sorted(cluster)))))
    surveys = _versions_of(session, {s.submission_version_id for s in snaps})
    visits = _visits(session, canonical.project_id, cluster)
    people = _People(session, cluster, snaps)
    found = _Found()
    whole = member is None and member_id is None
    if whole:
        person = None
        plan = [(v, _Cut(True, people.items(v), None, people.typed)) for v in surveys]
        plan += [(v, _Cut(True, {}, None, people.typed)) for v in visits]
        member_rows = people.rows
        found.names |= {(e.properties or {}).get("head_name") or ""
                        for e in _entities(session, cluster)}
    else:
        person = _person(people.rows, member, member_id)
        plan = _person_plan(person, people, surveys, visits)
        member_rows = [person]
    found.names |= {m.name for m in member_rows if m.name}
    for version, cut in plan:
        _scrub_version(session, version, cut, found)
    _neutral_members(member_rows)
    _derived(session, store, canonical.project_id, cluster, [v for v, _c in plan], found,
             whole, streets or {})
    details = {"mode": "household" if person is None else "member",
               "household_id": canonical.id}
    if person is not None:
        details["member_id"] = person.id
    return _finish(session, actor, reason, canonical.id, [v for v, _c in plan], found,
                   len(member_rows), details)


def erase_submission(session: Session, store, *, project_id: int, instance_id: str,
                     actor: User, reason: str, streets: dict[str, str] | None = None) -> Result:
    """Erase every personal field of one submission (all its versions), whatever its form."""
    reason = _check(actor, reason)
    _secure_delete(session)
    iid = (instance_id or "").strip()
    hit = session.scalar(
        select(SubmissionVersion).join(Form, Form.id == SubmissionVersion.form_id)
        .where(Form.project_id == project_id, SubmissionVersion.instance_id == iid)
    ) if 0 < len(iid) <= 255 else None
    if hit is None:
        raise ErasureError(f"submission {instance_id!r} does not exist in project {project_id}")
    versions = list(hit.submission.versions)
    cluster: set[str] = set()
    for version in versions:
        snap = households.snapshot_of(session, version)
        hh = snap.entity_id if snap is not None else _root_value(version, "hh")
        if hh and (canonical := entities.resolve(session, hh)[0]) is not None:
            cluster |= _cluster(session, canonical.id)
    snaps = list(session.scalars(select(HouseholdSnapshot).where(
        HouseholdSnapshot.entity_id.in_(sorted(cluster)))))
    people = _People(session, cluster, snaps)
    found = _Found()
    for version in versions:
        _scrub_version(session, version, _Cut(True, people.items(version), None, people.typed),
                       found)
    keys = {name_keys(n).k_ascii for n in found.people} - {""}
    member_rows = [m for m in people.rows if name_keys(m.name).k_ascii in keys]
    _neutral_members(member_rows)
    _derived(session, store, project_id, cluster, versions, found, False, streets or {})
    return _finish(session, actor, reason, hit.submission.instance_id, versions, found,
                   len(member_rows), {"mode": "submission"})


def release(engine, store, result: Result) -> None:
    """After the commit: delete the bytes of removed files that nothing references any more,
    and rewrite the database so that old copies of the erased rows leave its files too
    (SQLite: VACUUM and a WAL checkpoint; PostgreSQL: VACUUM of the tables erasure touches,
    which frees dead row versions for reuse). The erasure itself is already committed, so a
    failure here (a busy database) is logged for the operator, not raised."""
    from server.storage import FileBlobStore

    try:
        with engine.connect() as conn:
            kept = set(conn.scalars(select(Blob.sha256).where(Blob.sha256.in_(result.files))))
            conn.rollback()
        if isinstance(store, FileBlobStore):
            for sha256 in set(result.files) - kept:
                store.path(sha256).unlink(missing_ok=True)
        if engine.dialect.name == "sqlite":
            raw = engine.raw_connection()
            try:
                cur = raw.cursor()
                cur.execute("VACUUM")
                cur.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                cur.close()
            finally:
                raw.close()
        elif engine.dialect.name == "postgresql":
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("VACUUM " + ", ".join(VACUUMED))
    except Exception:  # noqa: BLE001
        log.warning("erasure %s is committed, but old copies may remain until the database is "
                    "vacuumed and the files %s are deleted", result.audit_id, result.files,
                    exc_info=True)


# Who and what ---------------------------------------------------------------------------------


def _check(actor: User | None, reason: str | None) -> str:
    if actor is None or actor.role != "admin":
        raise ErasureError("only an administrator erases personal data")
    reason = " ".join(unicodedata.normalize("NFC", reason or "").split())
    if not reason:
        raise ErasureError("give the reason or the reference of the request")
    if len(reason) > REASON_MAX:
        raise ErasureError(f"the reason is at most {REASON_MAX} characters")
    return reason


def _secure_delete(session: Session) -> None:
    """SQLite overwrites what it frees with zeros, so old values do not linger in free pages."""
    if session.get_bind().dialect.name == "sqlite":
        session.execute(text("PRAGMA secure_delete=ON"))


def _cluster(session: Session, canonical_id: str) -> set[str]:
    """The household and every entity merged into it."""
    seen, frontier = {canonical_id}, {canonical_id}
    while frontier:
        found = set(session.scalars(select(Entity.id).where(Entity.canonical_id.in_(frontier))))
        frontier = found - seen
        seen |= frontier
    return seen


def _entities(session: Session, cluster: Iterable[str]) -> list[Entity]:
    return list(session.scalars(select(Entity).where(Entity.id.in_(list(cluster)))))


def _versions_of(session: Session, version_ids: set[int]) -> list[SubmissionVersion]:
    """Every version of the submissions these versions belong to."""
    if not version_ids:
        return []
    subs = select(SubmissionVersion.submission_id).where(SubmissionVersion.id.in_(version_ids))
    return list(session.scalars(select(SubmissionVersion).where(
        SubmissionVersion.submission_id.in_(subs)).order_by(SubmissionVersion.id)))


def _visits(session: Session, project_id: int, cluster: set[str]) -> list[SubmissionVersion]:
    """Every version of the submissions whose root `hh` answer names the household."""
    found: set[int] = set()
    for form_id, xml in session.execute(
            select(FormVersion.form_id, FormVersion.xml).join(Form, Form.id == FormVersion.form_id)
            .where(Form.project_id == project_id)):
        for f in schema_of(xml).fields:
            if f.kind == "field" and f.repeat is None and f.name == "hh":
                found |= set(session.scalars(select(SubmissionVersion.id).where(
                    SubmissionVersion.form_id == form_id,
                    SubmissionVersion.fields[("root", f.rel_path)].as_string().in_(cluster))))
    return _versions_of(session, found)


def _root_value(version: SubmissionVersion, name: str) -> str:
    root = (version.fields or {}).get("root") or {}
    return next((v for k, v in root.items() if k.split("/")[-1] == name and v), "").lower()


def _person(rows: list[HouseholdMember], name: str | None,
            member_id: str | None) -> HouseholdMember:
    if member_id:
        hit = [m for m in rows if m.id == member_id.strip().lower()]
    else:
        wanted = name_keys(name)
        hit = [m for m in rows if wanted.k_ascii and name_keys(m.name).k_ascii == wanted.k_ascii]
        exact = [m for m in hit if name_keys(m.name).k_tone == wanted.k_tone]
        hit = exact if len(hit) > 1 and exact else hit
    if not hit:
        raise ErasureError("no member of this household has that name or id")
    if len(hit) > 1:
        listed = ", ".join(f"{m.id} ({m.birth_year or '?'})" for m in hit)
        raise ErasureError(f"several members have that name; give the member id: {listed}")
    return hit[0]


def _person_plan(person: HouseholdMember, people: _People, surveys: list[SubmissionVersion],
                 visits: list[SubmissionVersion]) -> list[tuple[SubmissionVersion, _Cut]]:
    """The member items that are this person (by linked id, else by name and birth year) and
    the service blocks about them (ticked, or their name typed). Where the person is member 1,
    the head, the household's identifiers go too: they are the head's."""
    records = people.records[person.id]
    name = neutral_name(person.id)
    plan: list[tuple[SubmissionVersion, _Cut]] = []
    head = False
    for v in surveys:
        ids = people.ids.get(v.id, [])
        mine = {i for i, mid in enumerate(ids) if mid == person.id}
        for i, row in enumerate(_rows_with(v.fields, "m_name_eff")):
            values = row.get("values") or {}
            year = _year(values.get("m_birth_year_eff", ""))
            if _same_person(values.get("m_name_eff", ""), year, records):
                mine.add(i)  # an older version whose link was not kept
        if mine:
            head = head or 0 in mine
            plan.append((v, _Cut(0 in mine, dict.fromkeys(mine, name))))

    def typed(value: str) -> str | None:
        return name if _same_person(value, None, records) else None

    for v in visits:
        about = set()
        for i, block in enumerate(_rows_with(v.fields, "svc_member_other")):
            values = block.get("values") or {}
            ticked = (values.get("svc_members", "") + " " + values.get("svc_members_done", ""))
            if person.id in ticked.split() or typed(values.get("svc_member_other", "")):
                about.add(i)
        if about or head:
            plan.append((v, _Cut(head, {}, about, typed)))
    return plan


def _rows_with(fields: dict | None, column: str) -> list[dict]:
    """The items of the repeat that has this column (members, service blocks)."""
    for rows in ((fields or {}).get("repeats") or {}).values():
        if rows and column in (rows[0].get("values") or {}):
            return rows
    return []


def _year(value: str) -> int | None:
    value = (value or "").strip()
    return int(value) if value.isdigit() else None


def _same_person(name: str, year: int | None, records: list[dedupe.Member]) -> bool:
    if not clean_text(name):
        return False
    return any(dedupe.find_member(name, [r], birth_year=year) is not None
               for r in records if r.name)


# Blanking one version ------------------------------------------------------------------------


def _elements(el: etree._Element, rel_path: str) -> list[etree._Element]:
    found = [el]
    for step in rel_path.split("/"):
        found = [c for e in found for c in children(e, step)]
    return found


def _scrub_version(session: Session, version: SubmissionVersion, cut: _Cut,
                   found: _Found) -> None:
    found.versions += 1
    if version.encrypted:
        found.encrypted += 1  # only the device's key reads it; nothing here to blank
        return
    schema = schema_of(version.form_version.xml)
    root = parse_xml(version.xml)
    files: set[str] = set()

    def blank(el: etree._Element, f, placeholder: str | None = None) -> None:
        value = "".join(el.itertext())
        if not value.strip() or value == placeholder:
            return
        if f.name in NAME_FIELDS:
            found.names.add(value)
            if f.name != "svc_member_other":
                found.people.add(value)
        if f.name == "phone":
            found.phones.add(value)
        if f.is_binary:
            files.add(value.strip())
        for child in list(el):
            el.remove(child)
        el.text = placeholder
        found.paths.add(f.rel_path)

    for f in schema.fields:
        if f.kind != "field":
            continue
        if f.repeat is None:
            wanted = (f.name in FREE_TEXT_FIELDS or f.rel_path == "meta/audit" or (
                cut.household and (f.name in HOUSEHOLD_FIELDS or f.type in GEO_TYPES
                                   or f.is_binary)))
            for el in _elements(root, f.rel_path) if wanted else ():
                blank(el, f)
            continue
        repeat = schema.field(f.repeat)
        if f.name in MEMBER_FIELDS:
            chosen = set(cut.members)
        elif f.name in SERVICE_FIELDS:
            chosen = cut.services
        elif cut.household and (f.is_binary or f.type in GEO_TYPES):
            chosen = None
        else:
            continue
        for i, item in enumerate(_elements(root, repeat.rel_path)):
            if chosen is not None and i not in chosen:
                continue
            for el in _elements(item, f.table_path):
                if f.name == "svc_member_other":
                    new = cut.typed("".join(el.itertext()))
                    if new is not None:
                        blank(el, f, new)
                else:  # a member keeps a neutral name, so that what counted for them still does
                    blank(el, f, cut.members[i] if f.name in NAME_FIELDS else None)
    version.xml = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    version.fields = parse_fields(schema, parse_xml(version.xml), version.instance_id)
    if cut.household:
        if version.pid_hmac or version.pid_last4:
            found.paths.add("pid_hmac")
        version.pid_hmac = version.pid_last4 = None
    if "meta/instanceName" in found.paths and not _root_value(version, "instanceName"):
        version.instance_name = None
    for att in list(version.attachments):
        if att.name in files:
            if att.blob_sha256:
                found.files.add(att.blob_sha256)
            session.delete(att)
    snap = households.snapshot_of(session, version)
    if snap is not None:
        snap.data = households.snapshot_data(version.fields, version) or snap.data
        if snap.current:
            _rekey(session, snap)


def _rekey(session: Session, snap: HouseholdSnapshot) -> None:
    """The blocking keys follow the snapshot (a name key is personal data too)."""
    session.execute(delete(HouseholdBlockKey).where(HouseholdBlockKey.snapshot_id == snap.id))
    keys = dedupe.snapshot_keys(matching.to_snapshot(snap))
    rows = [{"project_id": snap.project_id, "key": h, "snapshot_id": snap.id}
            for h in sorted({matching.key_hash(k) for k in dedupe.block_keys(keys)})]
    if rows:
        session.execute(insert(HouseholdBlockKey), rows)


def _neutral_members(rows: Iterable[HouseholdMember]) -> None:
    for m in rows:
        m.name, m.birth_year = neutral_name(m.id), None


# What was derived from the submissions -----------------------------------------------------


def _derived(session: Session, store, project_id: int, cluster: set[str],
             versions: list[SubmissionVersion], found: _Found, whole: bool,
             streets: dict[str, str]) -> None:
    """Entity, history, staff's free text and issued reports of the household(s): with
    `whole`, the head's properties go whoever the head is; otherwise only where they hold an
    erased name."""
    from server.exports import issued  # the issued files' formats are the exports' business

    redact = redactor(found.names, found.phones)
    in_label = redactor(found.people, ())  # a name typed in a visit is not the household's
    head_keys = {name_keys(n).k_ascii for n in found.people} - {""}
    ents = _entities(session, cluster)
    for e in ents:
        e.properties, e.label = _scrub_entity(e.properties or {}, e.label, whole, head_keys,
                                              in_label, streets)
    history = session.scalars(select(EntityVersion).where(
        EntityVersion.entity_id.in_(sorted(cluster))))
    for ev in history:
        props, label = _scrub_entity(ev.properties or {}, ev.label, whole, head_keys, in_label,
                                     streets)
        changed = dict(ev.changed_properties or {})
        for key in changed:
            if key in props:
                changed[key] = props[key]
            elif key == "label":
                changed[key] = label
        ev.properties, ev.label, ev.changed_properties = props, label, changed
    if ents:
        entities.bump_revision(session, project_id, DATASET)
    subs = {v.submission_id for v in versions}
    vids = {v.id for v in versions}
    ids = sorted(cluster)
    texts = [
        (ReviewComment, "body", ReviewComment.submission_id.in_(subs)),
        (ServiceCheck, "note", ServiceCheck.submission_id.in_(subs)),
        (DedupePair, "note", or_(DedupePair.entity_a.in_(ids), DedupePair.entity_b.in_(ids))),
        (MergeLogEntry, "reason", or_(MergeLogEntry.canonical_id.in_(ids),
                                      MergeLogEntry.alias_id.in_(ids))),
        (HouseholdStatus, "note", HouseholdStatus.entity_id.in_(ids)),
        (EntityProblem, "message", or_(EntityProblem.entity_id.in_(ids),
                                       EntityProblem.submission_version_id.in_(vids))),
    ]
    for model, column, where in texts:
        for row in session.scalars(select(model).where(where)):
            value = getattr(row, column)
            if value and (new := redact(value)) != value:
                setattr(row, column, new)
    _keep_merges(session, ids)
    pairs = {str(p) for p in session.scalars(select(DedupePair.id).where(
        or_(DedupePair.entity_a.in_(ids), DedupePair.entity_b.in_(ids))))}
    targets = pairs | set(ids) | {str(s) for s in subs}
    for entry in session.scalars(select(AuditEntry).where(AuditEntry.target.in_(targets))):
        if entry.details:
            entry.details = _redact_json(entry.details, redact)
    replaced = issued.redact_files(session, store, project_id, redact)
    found.reports += len(replaced)
    found.old_reports |= set(replaced)  # their old bytes go as the erased photos' do


def _keep_merges(session: Session, ids: list[str]) -> None:
    """Automatic merges inside the household were found with the values now erased; a later
    re-run could no longer find them, so they become decisions and the household stays one."""
    for pair in session.scalars(select(DedupePair).where(
            DedupePair.entity_a.in_(ids), DedupePair.entity_b.in_(ids),
            DedupePair.status == "auto", DedupePair.decision.is_(None))):
        pair.decision, pair.status, pair.decided_at = "merge", "decided", utcnow()
        pair.note = "kept when personal data was erased"


def _scrub_entity(props: dict, label: str, whole: bool, head_keys: set[str],
                  redact: Callable[[str], str], streets: dict[str, str]) -> tuple[dict, str]:
    props = dict(props)
    if whole or name_keys(props.get("head_name")).k_ascii in head_keys - {""}:
        for key in ENTITY_PERSONAL:
            if key in props:
                props[key] = ""
        label = address_label(props, streets)
    elif redact(label or "") != (label or ""):
        label = address_label(props, streets)
    return props, label


def address_label(props: dict, streets: dict[str, str]) -> str:
    """The form's `hh_label` when no head is known: `Số 12 ngõ 5 Đường … – (chưa có …)`."""
    street = props.get("street") or ""
    street_text = props.get("street_other") or "" if street == "other" else streets.get(
        street, street)
    house_no, landmark, alley = (props.get(k) or "" for k in ("house_no", "landmark", "alley"))
    start = f"Số {house_no} " if house_no else (f"{landmark}, " if landmark else "")
    lane = f"ngõ {alley} " if alley else ""
    return f"{start}{lane}{street_text} – {NO_HEAD_LABEL}"


def _redact_json(value, redact: Callable[[str], str]):
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, list):
        return [_redact_json(v, redact) for v in value]
    if isinstance(value, dict):
        return {k: _redact_json(v, redact) for k, v in value.items()}
    return value


def _finish(session: Session, actor: User, reason: str, target: str,
            versions: list[SubmissionVersion], found: _Found, members: int,
            details: dict) -> Result:
    reason = redactor(found.names, found.phones)(reason)  # a reason may quote the name
    submissions = sorted({v.submission.instance_id for v in versions})
    entry = AuditEntry(action=ACTION, actor_id=actor.id, target=target[:255], at=utcnow(),
                       details={**details, "reason": reason, "submissions": submissions[:500],
                                "n_submissions": len(submissions), "versions": found.versions,
                                "fields": sorted(found.paths), "members": members,
                                "files": len(found.files),
                                "issued_report_files": found.reports,
                                "encrypted": found.encrypted})
    session.add(entry)
    session.flush()
    for sha256 in found.files | found.old_reports:
        _drop_blob_if_unused(session, sha256)
    return Result(entry.id, target, submissions, found.versions, sorted(found.paths), members,
                  sorted(found.files | found.old_reports), found.encrypted)


def _drop_blob_if_unused(session: Session, sha256: str) -> None:
    used = session.scalar(select(func.count()).select_from(Attachment).where(
        Attachment.blob_sha256 == sha256)) or 0
    used += session.scalar(select(func.count()).select_from(FormMedia).where(
        FormMedia.blob_sha256 == sha256)) or 0
    used += session.scalar(select(func.count()).select_from(IssuedReportFile).where(
        IssuedReportFile.sha256 == sha256)) or 0
    if not used:
        session.execute(delete(BlobContent).where(BlobContent.sha256 == sha256))
        session.execute(delete(Blob).where(Blob.sha256 == sha256))


# Redacting names inside free text --------------------------------------------------------------


def _fold_char(c: str) -> str:
    """One character → one lowercase character without marks, so positions stay aligned."""
    if c in "đĐ":
        return "d"
    base = unicodedata.normalize("NFD", c)[:1] or c
    low = base.lower()
    return low if len(low) == 1 else base


def _fold(text_: str) -> str:
    return "".join(_fold_char(c) for c in text_)


def redactor(names: Iterable[str], phones: Iterable[str]) -> Callable[[str], str]:
    """Replace every occurrence of these names (case and diacritics aside, any spacing) and
    phone numbers (any separators, +84 or 0) with "[đã xoá]"."""
    patterns = []
    for name in {clean_text(n) for n in names}:
        tokens = [re.escape(_fold(t)) for t in name.split()]
        if tokens and len("".join(tokens)) >= 3:
            patterns.append(r"(?<!\w)" + r"\s+".join(tokens) + r"(?!\w)")
    for phone in {normalize_phone(p) or "".join(c for c in p if c.isdigit()) for p in phones}:
        if len(phone) >= 7:
            digits = [re.escape(d) for d in phone[1:]]
            patterns.append(r"(?<!\d)(?:0|\+?84[\s.-]?)" + r"[\s.-]?".join(digits) + r"(?!\d)")
    if not patterns:
        return lambda value: value
    pattern = re.compile("|".join(f"(?:{p})" for p in patterns))

    def redact(value: str) -> str:
        if not value:
            return value
        value = unicodedata.normalize("NFC", value)
        spans = [m.span() for m in pattern.finditer(_fold(value))]
        for start, end in reversed(spans):
            value = value[:start] + TEXT_PLACEHOLDER + value[end:]
        return value

    return redact


__all__ = ["ACTION", "ErasureError", "Result", "address_label", "erase_household",
           "erase_submission", "redactor", "release"]
