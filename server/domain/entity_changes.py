"""Changes a person makes to entities through the API: create, update, delete.

Each change is a history row (source "server", with its author) and moves the list's revision,
so the next entity-list CSV a phone downloads carries it. Deleting only marks the entity: it
leaves every list and the integrity endpoint reports it deleted, but nothing is removed.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from server.db.models import Entity, EntityVersion, User, utcnow
from server.domain import accounts, entities
from server.domain.entities import UUID4, EntityRejected

MAX_LABEL = 2000
MAX_VALUE = 10000


class StaleVersion(Exception):
    """The caller edited an older version than the current one."""

    def __init__(self, current: int, given: int):
        super().__init__(f"current version {current}, given {given}")
        self.current, self.given = current, given


def check_values(label: object, data: object, known: set[str], *,
                 label_required: bool) -> tuple[str | None, dict[str, str]]:
    """The label and properties as stored, or EntityRejected naming what is wrong."""
    if label is None and not label_required:
        clean_label = None
    elif not isinstance(label, str) or not label.strip():
        raise EntityRejected("missing_label", "the label must be a non-empty string")
    elif len(label) > MAX_LABEL:
        raise EntityRejected("invalid_label", "the label is too long")
    else:
        clean_label = label.strip()
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise EntityRejected("invalid_data", "data must be an object of property → string")
    unknown = sorted(k for k in data if k not in known)
    if unknown:
        raise EntityRejected("unknown_property",
                             f"no such properties in this list: {', '.join(unknown[:10])}")
    for key, value in data.items():
        if not isinstance(value, str):
            raise EntityRejected("invalid_data", f"the value of {key} must be a string")
        if len(value) > MAX_VALUE:
            raise EntityRejected("invalid_data", f"the value of {key} is too long")
    return clean_label, dict(data)


def clean_id(raw: object) -> str:
    entity_id = raw.strip().lower() if isinstance(raw, str) else ""
    if not UUID4.match(entity_id):
        raise EntityRejected("invalid_id", "uuid must be a version 4 UUID")
    return entity_id


def create(session: Session, project_id: int, dataset: str, entity_id: str, label: str,
           data: dict[str, str], actor: User, now: datetime | None = None) -> Entity:
    """A new entity (values checked by `check_values`, id by `clean_id`)."""
    now = now or utcnow()
    existing = session.get(Entity, entity_id)
    if existing is not None:
        kind = "deleted_id" if existing.deleted_at is not None else "duplicate_create"
        raise EntityRejected(kind, f"entity {entity_id} already exists", entity_id)
    entity = Entity(id=entity_id, project_id=project_id, dataset=dataset, label=label,
                    version=1, properties=data, tdp=data.get("tdp") or None, canonical_id=None,
                    erased=False, conflict=None, created_at=now, updated_at=now)
    session.add(entity)
    session.flush()
    _record(session, entity, actor, base=None, changed=dict(data), now=now)
    entities.bump_revision(session, project_id, dataset)
    return entity


def create_many(session: Session, project_id: int, dataset: str,
                items: list[tuple[str, str, dict[str, str]]], actor: User,
                now: datetime | None = None) -> None:
    """New entities (id, label, properties), checked as for `create`, in a few statements;
    one revision step for the whole batch."""
    now = now or utcnow()
    taken = known_ids(session, [entity_id for entity_id, _label, _data in items])
    if taken:
        raise EntityRejected("duplicate_create", f"uuid already used: "
                             f"{', '.join(sorted(taken)[:5])}", sorted(taken)[0])
    session.execute(insert(Entity.__table__), [{
        "id": entity_id, "project_id": project_id, "dataset": dataset, "label": label,
        "version": 1, "properties": data, "tdp": data.get("tdp") or None,
        "canonical_id": None, "erased": False, "conflict": None, "created_at": now,
        "updated_at": now, "deleted_at": None} for entity_id, label, data in items])
    session.execute(insert(EntityVersion.__table__), [{
        "entity_id": entity_id, "version": 1, "source": "server",
        "submission_version_id": None, "instance_id": None, "base_version": None,
        "label": label, "properties": data, "changed_properties": data, "conflict": None,
        "actor_id": actor.id, "at": now} for entity_id, label, data in items])
    entities.bump_revision(session, project_id, dataset)


def update(session: Session, entity: Entity, label: str | None, data: dict[str, str],
           base_version: int | None, actor: User, now: datetime | None = None) -> Entity:
    """Set the given properties (and label); `base_version` None forces the change."""
    if base_version is not None and base_version != entity.version:
        raise StaleVersion(entity.version, base_version)
    now = now or utcnow()
    changed = {k: v for k, v in data.items() if entity.properties.get(k, "") != v}
    if label is not None and label != entity.label:
        changed["label"] = label
        entity.label = label
    entity.properties = {**entity.properties, **data}
    entity.tdp = entity.properties.get("tdp") or None
    entity.version += 1
    entity.updated_at = now
    session.flush()
    _record(session, entity, actor, base=base_version, changed=changed, now=now)
    entities.bump_revision(session, entity.project_id, entity.dataset)
    return entity


def delete(session: Session, entity: Entity, actor: User, now: datetime | None = None) -> None:
    entity.deleted_at = now or utcnow()
    session.flush()
    accounts.audit(session, "entity.deleted", actor=actor, target=entity.id,
                   dataset=entity.dataset, label=entity.label, version=entity.version)
    entities.bump_revision(session, entity.project_id, entity.dataset)


def _record(session: Session, entity: Entity, actor: User, *, base: int | None,
            changed: dict, now: datetime) -> None:
    session.add(EntityVersion(
        entity_id=entity.id, version=entity.version, source="server", base_version=base,
        label=entity.label, properties=dict(entity.properties), changed_properties=changed,
        conflict=None, actor_id=actor.id, at=now))
    session.flush()


def known_ids(session: Session, ids: list[str]) -> set[str]:
    """Which of these ids are taken, in any list of any project (entity ids are global)."""
    taken: set[str] = set()
    for start in range(0, len(ids), 500):
        taken |= set(session.scalars(select(Entity.id).where(Entity.id.in_(ids[start:start
                                                                              + 500]))))
    return taken
