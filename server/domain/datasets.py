"""Entity lists of a project and their properties: those its published forms declare (the
households list) and those created through the API.

A form-declared list needs no row to exist: its creation time is the first publication of a
form version declaring it, so it reads the same on every request without a write. It gets a
`datasets` row (with that time) the first time something is written to it, e.g. a property
added through the API, which needs the row's id.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from server.db.models import Dataset, DatasetProperty, Form, FormVersion, utcnow
from server.domain.forms import schema_of

# Central's rules: an XML name of letters, digits, _ . - that does not start with "__";
# `name` and `label` are the list's own columns, not properties.
LIST_NAME = re.compile(r"^(?!__)[^\W\d][\w.-]{0,99}$")
PROPERTY_NAME = re.compile(r"^(?!__)[^\W\d][\w-]{0,99}$")
RESERVED_PROPERTIES = {"name", "label"}


def valid_list_name(name: str) -> bool:
    return bool(LIST_NAME.match(name))


def valid_property_name(name: str) -> bool:
    return bool(PROPERTY_NAME.match(name)) and name.casefold() not in RESERVED_PROPERTIES


@dataclass
class Property:
    name: str
    published_at: datetime
    forms: list[tuple[str, str]] = field(default_factory=list)  # (xmlFormId, title)


@dataclass
class EntityList:
    name: str
    project_id: int
    created_at: datetime
    approval_required: bool
    properties: dict[str, Property]  # in the order they were declared or added
    row: Dataset | None = None


# md5 of a form version → (dataset, properties) it declares; a published version never changes.
_DECLARED_BY_MD5: dict[str, tuple[str, tuple[str, ...]] | None] = {}


def _declarations(session: Session, project_id: int):
    """(xmlFormId, title, published_at, dataset, properties) of every published form version
    that declares an entity list, oldest first (drafts are not published)."""
    rows = session.execute(
        select(FormVersion.id, FormVersion.md5, FormVersion.title, FormVersion.published_at,
               Form.xml_form_id, Form.draft_version_id, Form.current_version_id)
        .join(Form, Form.id == FormVersion.form_id)
        .where(Form.project_id == project_id)
        .order_by(FormVersion.published_at, FormVersion.id)).all()
    for vid, md5, title, published_at, form_id, draft_id, current_id in rows:
        if vid == draft_id and vid != current_id:
            continue
        if md5 not in _DECLARED_BY_MD5:
            xml = session.scalar(select(FormVersion.xml).where(FormVersion.id == vid))
            try:
                entity = schema_of(xml).entity
            except ValueError:
                entity = None
            _DECLARED_BY_MD5[md5] = (entity.dataset, tuple(dict.fromkeys(
                entity.properties.values()))) if entity is not None else None
        declared = _DECLARED_BY_MD5[md5]
        if declared is not None:
            yield form_id, title, published_at, declared[0], declared[1]


def entity_lists(session: Session, project_id: int) -> dict[str, EntityList]:
    """Every entity list of the project by name, oldest first."""
    found: dict[str, EntityList] = {}
    for form_id, title, published_at, dataset, props in _declarations(session, project_id):
        entry = found.setdefault(dataset, EntityList(dataset, project_id, published_at, False, {}))
        for name in props:
            prop = entry.properties.setdefault(name, Property(name, published_at))
            if form_id not in [f for f, _t in prop.forms]:
                prop.forms.append((form_id, title))
    rows = session.scalars(select(Dataset).where(Dataset.project_id == project_id)
                           .order_by(Dataset.created_at, Dataset.id)).all()
    for row in rows:
        entry = found.setdefault(row.name, EntityList(row.name, project_id, row.created_at,
                                                      row.approval_required, {}))
        entry.row, entry.approval_required = row, row.approval_required
    by_id = {row.id: found[row.name] for row in rows}
    if by_id:
        for prop in session.scalars(select(DatasetProperty)
                                    .where(DatasetProperty.dataset_id.in_(list(by_id)))
                                    .order_by(DatasetProperty.created_at, DatasetProperty.id)):
            by_id[prop.dataset_id].properties.setdefault(
                prop.name, Property(prop.name, prop.created_at))
    return dict(sorted(found.items(), key=lambda item: (item[1].created_at, item[0])))


def entity_list(session: Session, project_id: int, name: str) -> EntityList | None:
    return entity_lists(session, project_id).get(name)


def same_name(lists: dict[str, EntityList], name: str) -> str | None:
    """An existing list whose name differs only in case (Central refuses those too)."""
    return next((n for n in lists if n.casefold() == name.casefold()), None)


def create_list(session: Session, project_id: int, name: str,
                approval_required: bool) -> EntityList:
    """A new list; the caller has checked that the name is valid and free."""
    row = Dataset(project_id=project_id, name=name, approval_required=approval_required,
                  created_at=utcnow())
    session.add(row)
    session.flush()
    return EntityList(name, project_id, row.created_at, approval_required, {}, row)


def ensure_row(session: Session, entry: EntityList) -> Dataset:
    """The list's `datasets` row, added for a form-declared list at its first write."""
    if entry.row is not None:
        return entry.row
    row = Dataset(project_id=entry.project_id, name=entry.name,
                  approval_required=entry.approval_required, created_at=entry.created_at)
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:  # a concurrent write registered it first
        row = session.scalar(select(Dataset).where(Dataset.project_id == entry.project_id,
                                                   Dataset.name == entry.name))
    entry.row = row
    return row


def add_property(session: Session, entry: EntityList, name: str) -> Property:
    """A new property; the caller has checked that the name is valid and free."""
    row = ensure_row(session, entry)
    prop = DatasetProperty(dataset_id=row.id, name=name, created_at=utcnow())
    session.add(prop)
    session.flush()
    entry.properties[name] = Property(name, prop.created_at)
    return entry.properties[name]
