"""ODK entities: applied from a submission's meta/entity in the same transaction as the
submission (domain §5, openrosa.md §7), served back as per-user entity-list CSVs.

A failure never loses the submission: the caller runs `apply_submission` inside a savepoint and
an EntityProblem row tells a supervisor what could not be applied.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.orm import Session

from server.db.models import (
    AuditEntry,
    Entity,
    EntityProblem,
    EntityVersion,
    ListRevision,
    SubmissionVersion,
    utcnow,
)
from server.domain.instance import EntityAction
from server.domain.xform_schema import FormSchema

DATE_PROPERTIES = {"survey_date", "followup_date", "last_visit_date"}
UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


class EntityRejected(Exception):
    def __init__(self, kind: str, message: str, entity_id: str | None = None):
        super().__init__(message)
        self.kind, self.message, self.entity_id = kind, message, entity_id


@dataclass(frozen=True)
class Applied:
    entity_id: str
    version: int
    created: bool
    conflict: str | None
    via_alias: str | None = None  # the alias the submission named, when remapped


def local_date(value: str, zone: str) -> str:
    """`2026-11-26T00:00:00.000+07:00` (Collect's date in a calculation) → `2026-11-26`."""
    value = value.strip()
    if len(value) <= 10 or "T" not in value:
        return value
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    if moment.tzinfo is None:
        return moment.date().isoformat()
    return moment.astimezone(ZoneInfo(zone)).date().isoformat()


def submitted_properties(schema: FormSchema, fields: dict, zone: str) -> dict[str, str]:
    """Every saveto property of the form; a field absent from the submission counts as empty."""
    root = fields.get("root", {})
    props = {}
    for field in schema.fields:
        if field.saveto and field.repeat is None:
            value = root.get(field.rel_path, "") or ""
            if field.saveto in DATE_PROPERTIES:
                value = local_date(value, zone)
            props[field.saveto] = value
    return props


# Statements run at every ingest, built once: SQLAlchemy then reuses their compiled form.
_REVISIONS = ListRevision.__table__
_BUMP = (update(_REVISIONS)
         .where(_REVISIONS.c.project_id == bindparam("p"), _REVISIONS.c.dataset == bindparam("d"))
         .values(revision=_REVISIONS.c.revision + 1))
_ENTITY_EXISTS = select(Entity.id).where(Entity.id == bindparam("id"))
_INSERT_ENTITY = insert(Entity.__table__)
_INSERT_HISTORY = insert(EntityVersion.__table__)
_INSERT_PROBLEM = insert(EntityProblem.__table__)


def bump_revision(session: Session, project_id: int, dataset: str) -> None:
    """Invalidate cached lists of this dataset (same transaction as the change)."""
    updated = session.execute(_BUMP, {"p": project_id, "d": dataset}).rowcount
    if not updated:
        session.add(ListRevision(project_id=project_id, dataset=dataset, revision=1))
        session.flush()


def revision(session: Session, project_id: int, dataset: str) -> int:
    return session.scalar(
        select(ListRevision.revision).where(ListRevision.project_id == project_id,
                                            ListRevision.dataset == dataset)
    ) or 0


def resolve(session: Session, entity_id: str) -> tuple[Entity | None, str | None]:
    """The live entity for an id, following alias chains; also the alias that was named."""
    entity = session.get(Entity, entity_id)
    alias = None
    seen = set()
    while entity is not None and entity.canonical_id and entity.id not in seen:
        seen.add(entity.id)
        alias = alias or entity.id
        entity = session.get(Entity, entity.canonical_id)
    return entity, alias


def apply_submission(session: Session, *, project_id: int, schema: FormSchema,
                     action: EntityAction, version: SubmissionVersion, zone: str,
                     now: datetime | None = None) -> Applied | None:
    """Create or update the entity a submission declares; None when it declares no action."""
    if not (action.create or action.update):
        return None
    now = now or utcnow()
    if schema.entity is None or action.dataset != schema.entity.dataset:
        raise EntityRejected("unknown_dataset",
                             f"dataset {action.dataset!r} is not declared by this form")
    entity_id = (action.id or "").strip().lower()
    props = submitted_properties(schema, version.fields or {}, zone)
    label = (action.label or "").strip()
    if action.update:
        entity, alias = resolve(session, entity_id) if entity_id else (None, None)
        if entity is not None and entity.deleted_at is not None:
            # Deleted through the API: kept for the record, never changed again.
            raise EntityRejected("deleted_entity", f"entity {entity.id} was deleted", entity_id)
        if entity is not None and entity.project_id == project_id and not entity.erased:
            return _update(session, entity, alias, action, props, label, version, now)
        if not action.create:
            raise EntityRejected("unknown_entity",
                                 f"entity {entity_id!r} to update does not exist", entity_id)
    return _create(session, project_id, action.dataset, entity_id, props, label, version, now)


def _create(session, project_id, dataset, entity_id, props, label, version, now) -> Applied:
    if not UUID4.match(entity_id):
        raise EntityRejected("invalid_id", f"entity id {entity_id!r} is not a v4 UUID")
    if not label:
        raise EntityRejected("missing_label", "a new entity needs a label", entity_id)
    if session.scalar(_ENTITY_EXISTS, {"id": entity_id}) is not None:
        raise EntityRejected("duplicate_create", f"entity {entity_id} already exists", entity_id)
    # Plain inserts (no ORM object): the rows are read back only by later queries.
    session.execute(_INSERT_ENTITY, {
        "id": entity_id, "project_id": project_id, "dataset": dataset, "label": label,
        "version": 1, "properties": props, "tdp": props.get("tdp") or None, "canonical_id": None,
        "erased": False, "conflict": None, "created_at": now, "updated_at": now})
    _insert_history(session, entity_id, 1, label, props, "submission", version, None, props,
                    None, now)
    bump_revision(session, project_id, dataset)
    return Applied(entity_id, 1, created=True, conflict=None)


def _update(session, entity: Entity, alias, action, props, label, version, now) -> Applied:
    base = int(action.base_version) if (action.base_version or "").isdigit() else None
    conflict = None
    if base is not None and base < entity.version:
        # Changed since the device's copy: apply anyway, flag it if the same properties moved.
        touched = set()
        for (changed,) in session.execute(
            select(EntityVersion.changed_properties)
            .where(EntityVersion.entity_id == entity.id, EntityVersion.version > base)
        ):
            touched |= set(changed or {})
        changed_now = {k for k, v in props.items() if entity.properties.get(k, "") != v}
        conflict = "hard" if touched & changed_now else "soft"
    changed = {k: v for k, v in props.items() if entity.properties.get(k, "") != v}
    if label and label != entity.label:
        changed["label"] = label
    entity.properties = {**entity.properties, **props}
    if label:
        entity.label = label
    entity.tdp = entity.properties.get("tdp") or None
    entity.version += 1
    entity.updated_at = now
    if conflict == "hard":
        entity.conflict = "hard"
    session.flush()
    _history(session, entity, "submission", version, base, changed, conflict, now)
    if alias:  # e.g. a visit made offline before the merge: it counts for the canonical one
        session.add(AuditEntry(action="entity.alias_remapped", target=alias, at=now,
                               details={"canonical_id": entity.id,
                                        "instance_id": version.instance_id}))
    bump_revision(session, entity.project_id, entity.dataset)
    return Applied(entity.id, entity.version, created=False, conflict=conflict, via_alias=alias)


def _history(session, entity: Entity, source, version, base, changed, conflict, now) -> None:
    _insert_history(session, entity.id, entity.version, entity.label, entity.properties, source,
                    version, base, changed, conflict, now)


def _insert_history(session, entity_id, entity_version, label, properties, source, version,
                    base, changed, conflict, now) -> None:
    session.execute(_INSERT_HISTORY, {
        "entity_id": entity_id, "version": entity_version, "source": source,
        "submission_version_id": version.id if version is not None else None,
        "instance_id": version.instance_id if version is not None else None,
        "base_version": base, "label": label, "properties": dict(properties),
        "changed_properties": changed, "conflict": conflict, "at": now})


def record_version(session: Session, entity: Entity, source: str, changed: dict,
                   now: datetime) -> None:
    """History row for a change the server made itself (merge, recompute, erasure)."""
    _history(session, entity, source, None, None, changed, None, now)


def record_problem(session: Session, project_id: int, version: SubmissionVersion | None,
                   exc: EntityRejected | Exception) -> None:
    kind = getattr(exc, "kind", "error")
    session.execute(_INSERT_PROBLEM, {
        "project_id": project_id, "submission_version_id": version.id if version else None,
        "entity_id": getattr(exc, "entity_id", None), "kind": kind,
        "message": getattr(exc, "message", None) or str(exc), "at": utcnow(),
        "resolved_at": None})


def new_entity_id() -> str:
    return str(uuid.uuid4())


# Serving -------------------------------------------------------------------------------------


def live_entities(session: Session, project_id: int, dataset: str, tdp: str | None):
    """Entities a user's list carries: not merged away, erased or deleted, of its tổ (None =
    all)."""
    q = (select(Entity)
         .where(Entity.project_id == project_id, Entity.dataset == dataset,
                Entity.canonical_id.is_(None), Entity.erased.is_(False),
                Entity.deleted_at.is_(None))
         .order_by(Entity.created_at, Entity.id))
    if tdp is not None:
        q = q.where(Entity.tdp == tdp)
    return session.scalars(q)


def integrity(session: Session, project_id: int, dataset: str, ids: list[str]):
    """(id, deleted) for the ids the project knows; unknown ids are left out."""
    wanted = [i.strip().lower() for i in ids if i.strip()][:5000]
    if not wanted:
        return []
    found = {e.id: e for e in session.scalars(
        select(Entity).where(Entity.project_id == project_id, Entity.dataset == dataset,
                             Entity.id.in_(wanted)))}
    return [(i, bool(found[i].canonical_id or found[i].erased or found[i].deleted_at))
            for i in dict.fromkeys(wanted) if i in found]
