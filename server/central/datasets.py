"""Entity lists (Central's datasets), their entities, and the entities' OData feed.

Reading: admins and the project's supervisors; a supervisor with a tổ sees only its tổ's
entities. Writing (lists, properties, entities): admins only. Merged-away aliases, erased and
deleted entities are in no answer, as they are in no phone's list (domain §5, §7.6).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

from flask import Response, request
from lxml import etree
from sqlalchemy import case, func, or_, select

from server.central import bp
from server.central.common import (
    AlreadyExists,
    MissingParameter,
    UnexpectedValue,
    caller,
    iso,
    json_body,
    project,
    query_bool,
    success,
    team_scope,
)
from server.central.odata_query import (
    check_select,
    next_link,
    parse_query,
    select_row,
    sql_condition,
)
from server.db.models import Entity, EntityVersion, SubmissionVersion, User
from server.domain import datasets, entity_changes
from server.domain.entities import EntityRejected, new_entity_id
from server.errors import NotFound, problem
from server.web_context import db_session

InvalidEntity = problem(400.28, "Dữ liệu thực thể không hợp lệ.", "The entity is invalid.",
                        "InvalidEntity")
VersionConflict = problem(409.15, "Thực thể đã được sửa ở phiên bản khác.",
                          "The entity was changed since the given baseVersion; read it again or "
                          "pass force=true.", "VersionConflict")
ListNameConflict = problem(409.16, "Đã có danh sách cùng tên (khác chữ hoa/thường).",
                           "A list with the same name but different capitalization exists.",
                           "ListNameConflict")
DeletedId = problem(409.19, "Mã này thuộc một thực thể đã xoá.",
                    "The UUID belongs to a deleted entity.", "DeletedId")

MAX_BULK = 10_000
ODATA_VERSION = {"OData-Version": "4.0"}


# Lists ---------------------------------------------------------------------------------------


def list_json(entry: datasets.EntityList, *, detail: bool = False) -> dict:
    body = {"name": entry.name, "projectId": entry.project_id,
            "createdAt": iso(entry.created_at), "approvalRequired": entry.approval_required}
    if detail:
        body["properties"] = [
            {"name": p.name, "odataName": odata_name(p.name), "publishedAt": iso(p.published_at),
             "forms": [{"xmlFormId": f, "name": t} for f, t in p.forms]}
            for p in entry.properties.values()]
    return body


def odata_name(name: str) -> str:
    """An OData identifier: letters, digits and _ only."""
    return re.sub(r"\W", "_", name)


def the_list(project_id: int, name: str, *, write: bool = False) -> datasets.EntityList:
    project(project_id, write=write)
    entry = datasets.entity_list(db_session(), project_id, name)
    if entry is None:
        raise NotFound(f"entity list {name[:100]}")
    return entry


@bp.get("/v1/projects/<int:project_id>/datasets")
def list_datasets(project_id: int):
    project(project_id)
    return [list_json(e) for e in datasets.entity_lists(db_session(), project_id).values()]


@bp.post("/v1/projects/<int:project_id>/datasets")
def create_dataset(project_id: int):
    project(project_id, write=True)
    body = json_body()
    name, approval = body.get("name"), body.get("approvalRequired", False)
    if not isinstance(name, str) or not name.strip():
        raise MissingParameter("name")
    name = name.strip()
    if not datasets.valid_list_name(name):
        raise UnexpectedValue(f"name {name[:100]!r}: letters, digits, _ . - only, a letter or "
                              "_ first, not __ first, at most 100 characters")
    if not isinstance(approval, bool):
        raise UnexpectedValue("approvalRequired must be true or false")
    db = db_session()
    lists = datasets.entity_lists(db, project_id)
    if name in lists:
        raise AlreadyExists(f"entity list {name}")
    if datasets.same_name(lists, name):
        raise ListNameConflict(f"{datasets.same_name(lists, name)} / {name}")
    return list_json(datasets.create_list(db, project_id, name, approval), detail=True)


@bp.get("/v1/projects/<int:project_id>/datasets/<name>")
def get_dataset(project_id: int, name: str):
    return list_json(the_list(project_id, name), detail=True)


@bp.post("/v1/projects/<int:project_id>/datasets/<name>/properties")
def add_dataset_property(project_id: int, name: str):
    entry = the_list(project_id, name, write=True)
    prop = json_body().get("name")
    if not isinstance(prop, str) or not prop.strip():
        raise MissingParameter("name")
    prop = prop.strip()
    if not datasets.valid_property_name(prop):
        raise UnexpectedValue(f"name {prop[:100]!r}: letters, digits, _ - only, a letter or _ "
                              "first, not __ first, not name or label")
    if any(p.casefold() == prop.casefold() for p in entry.properties) or any(
            odata_name(p) == odata_name(prop) for p in entry.properties):
        raise AlreadyExists(f"property {prop}")
    datasets.add_property(db_session(), entry, prop)
    return success()


# Entities ------------------------------------------------------------------------------------


def scope() -> str | None:
    """The tổ whose entities the caller sees; None for admins and the ward office."""
    team = team_scope()
    return None if team in (None, "ward") else team


def live_conditions(project_id: int, name: str) -> list:
    conditions = [Entity.project_id == project_id, Entity.dataset == name,
                  Entity.canonical_id.is_(None), Entity.erased.is_(False),
                  Entity.deleted_at.is_(None)]
    team = scope()
    if team is not None:
        conditions.append(Entity.tdp == team)
    return conditions


def one_entity(project_id: int, name: str, uuid: str, *,
               write: bool = False) -> tuple[datasets.EntityList, Entity]:
    entry = the_list(project_id, name, write=write)
    entity = db_session().get(Entity, uuid.strip().lower()) if len(uuid) <= 40 else None
    team = scope()
    if (entity is None or entity.project_id != project_id or entity.dataset != name
            or entity.canonical_id or entity.erased or entity.deleted_at is not None
            or (team is not None and entity.tdp != team)):
        raise NotFound(f"entity {uuid[:40]}")
    return entry, entity


def version_facts(conditions: list) -> dict[tuple[str, int], dict]:
    """Author, user agent and time of the first and the current version of each entity."""
    rows = db_session().execute(
        select(EntityVersion.entity_id, EntityVersion.version, EntityVersion.actor_id,
               SubmissionVersion.submitter_id, SubmissionVersion.user_agent, EntityVersion.at,
               EntityVersion.base_version, EntityVersion.conflict,
               EntityVersion.changed_properties)
        .join(Entity, Entity.id == EntityVersion.entity_id)
        .outerjoin(SubmissionVersion,
                   SubmissionVersion.id == EntityVersion.submission_version_id)
        .where(*conditions, or_(EntityVersion.version == 1,
                                EntityVersion.version == Entity.version)))
    return {(r.entity_id, r.version): {
        "creatorId": r.actor_id if r.actor_id is not None else r.submitter_id,
        "userAgent": r.user_agent, "at": r.at, "baseVersion": r.base_version,
        "conflictingProperties": sorted(r.changed_properties or {}) if r.conflict else None,
    } for r in rows}


def entity_json(entity: Entity, facts: dict) -> dict:
    first = facts.get((entity.id, 1), {})
    current = facts.get((entity.id, entity.version), {})
    return {
        "uuid": entity.id,
        "creatorId": first.get("creatorId"),
        "createdAt": iso(entity.created_at),
        "updatedAt": iso(entity.updated_at) if entity.version > 1 else None,
        "deletedAt": iso(entity.deleted_at),
        "conflict": entity.conflict,
        "currentVersion": {
            "label": entity.label, "current": True,
            "createdAt": iso(current.get("at") or entity.updated_at),
            # A change the server made itself (merge, recompute) has no author of its own.
            "creatorId": current.get("creatorId") or first.get("creatorId"),
            # Clients require a string; API changes keep no user agent.
            "userAgent": current.get("userAgent") or "",
            "version": entity.version, "data": dict(entity.properties),
            "baseVersion": current.get("baseVersion"),
            "conflictingProperties": current.get("conflictingProperties"),
        },
    }


def single_json(entity: Entity) -> dict:
    return entity_json(entity, version_facts([Entity.id == entity.id]))


@bp.get("/v1/projects/<int:project_id>/datasets/<name>/entities")
def list_entities(project_id: int, name: str):
    the_list(project_id, name)
    conditions = live_conditions(project_id, name)
    facts = version_facts(conditions)
    rows = db_session().scalars(select(Entity).where(*conditions)
                                .order_by(Entity.created_at, Entity.id))
    return [entity_json(e, facts) for e in rows]


@bp.get("/v1/projects/<int:project_id>/datasets/<name>/entities/<uuid>")
def get_entity(project_id: int, name: str, uuid: str):
    return single_json(one_entity(project_id, name, uuid)[1])


def rejected(exc: EntityRejected, where: str = ""):
    """The API error for an entity the domain refused."""
    message = f"{where}{exc.message}"
    if exc.kind == "duplicate_create":
        return AlreadyExists(message)
    if exc.kind == "deleted_id":
        return DeletedId(message)
    return InvalidEntity(message)


@bp.post("/v1/projects/<int:project_id>/datasets/<name>/entities")
def create_entities(project_id: int, name: str):
    """One entity {"uuid","label","data"}, or many {"entities": [...], "source": {...}}."""
    entry = the_list(project_id, name, write=True)
    body = json_body()
    known = set(entry.properties)
    db, actor = db_session(), caller()
    if "entities" not in body:
        try:
            label, data = entity_changes.check_values(body.get("label"), body.get("data"),
                                                      known, label_required=True)
            raw_id = body.get("uuid")
            entity_id = entity_changes.clean_id(raw_id) if raw_id is not None else (
                new_entity_id())
            entity = entity_changes.create(db, project_id, name, entity_id, label, data, actor)
        except EntityRejected as exc:
            raise rejected(exc) from None
        return single_json(entity)
    items, source = body.get("entities"), body.get("source", {})
    if not isinstance(items, list) or not items:
        raise MissingParameter("entities (a non-empty list)")
    if len(items) > MAX_BULK:
        raise UnexpectedValue(f"at most {MAX_BULK} entities at once")
    if not isinstance(source, dict) or not isinstance(source.get("name", ""), str):
        raise UnexpectedValue("source must be {\"name\": …, \"size\": …}")
    checked = []
    for n, item in enumerate(items, start=1):
        try:
            if not isinstance(item, dict):
                raise EntityRejected("invalid_data", "each entity must be an object")
            label, data = entity_changes.check_values(item.get("label"), item.get("data"),
                                                      known, label_required=True)
            raw_id = item.get("uuid")
            entity_id = (entity_changes.clean_id(raw_id) if raw_id is not None
                         else new_entity_id())
        except EntityRejected as exc:
            raise rejected(exc, f"entity {n}: ") from None
        checked.append((entity_id, label, data))
    ids = [i for i, _l, _d in checked]
    if len(set(ids)) < len(ids):
        repeated = sorted(i for i, times in Counter(ids).items() if times > 1)
        raise InvalidEntity(f"the same uuid twice: {', '.join(repeated[:5])}")
    try:
        entity_changes.create_many(db, project_id, name, checked, actor)
    except EntityRejected as exc:
        raise rejected(exc) from None
    return success()


@bp.patch("/v1/projects/<int:project_id>/datasets/<name>/entities/<uuid>")
def update_entity(project_id: int, name: str, uuid: str):
    """`?baseVersion=N` (refused when stale) or `?force=true`, body {"label"?, "data"?}."""
    entry, entity = one_entity(project_id, name, uuid, write=True)
    force = query_bool("force")
    raw_base = request.args.get("baseVersion", "").strip()
    if not force and not raw_base:
        raise MissingParameter("baseVersion (or force=true)")
    base = None
    if not force:
        if not raw_base.isdigit() or len(raw_base) > 9:
            raise UnexpectedValue(f"baseVersion={raw_base[:20]}")
        base = int(raw_base)
    body = json_body()
    if "label" not in body and "data" not in body:
        raise InvalidEntity("give a label or data to change")
    try:
        label, data = entity_changes.check_values(body.get("label"), body.get("data"),
                                                  set(entry.properties), label_required=False)
    except EntityRejected as exc:
        raise rejected(exc) from None
    try:
        entity_changes.update(db_session(), entity, label, data, base, caller())
    except entity_changes.StaleVersion as exc:
        raise VersionConflict(f"current version {exc.current}, given {exc.given}") from None
    return single_json(entity)


@bp.delete("/v1/projects/<int:project_id>/datasets/<name>/entities/<uuid>")
def delete_entity(project_id: int, name: str, uuid: str):
    _entry, entity = one_entity(project_id, name, uuid, write=True)
    entity_changes.delete(db_session(), entity, caller())
    return success()


# OData ---------------------------------------------------------------------------------------

EDMX = "http://docs.oasis-open.org/odata/ns/edmx"
EDM = "http://docs.oasis-open.org/odata/ns/edm"
SYSTEM_FIELDS = ("createdAt", "creatorId", "creatorName", "updates", "updatedAt", "version",
                 "conflict")


def service_root(project_id: int, name: str) -> str:
    return f"{request.host_url}v1/projects/{project_id}/datasets/{name}.svc"


@bp.get("/v1/projects/<int:project_id>/datasets/<name>.svc")
def odata_service(project_id: int, name: str):
    entry = the_list(project_id, name)
    body = {"@odata.context": f"{service_root(project_id, entry.name)}/$metadata",
            "value": [{"kind": "EntitySet", "name": "Entities", "url": "Entities"}]}
    return body, 200, ODATA_VERSION


@bp.get("/v1/projects/<int:project_id>/datasets/<name>.svc/$metadata")
def odata_metadata(project_id: int, name: str):
    entry = the_list(project_id, name)
    root = etree.Element(f"{{{EDMX}}}Edmx", nsmap={"edmx": EDMX}, Version="4.0")
    services = etree.SubElement(root, f"{{{EDMX}}}DataServices")
    system = etree.SubElement(services, f"{{{EDM}}}Schema", nsmap={None: EDM},
                              Namespace="org.opendatakit.entity")
    meta = etree.SubElement(system, f"{{{EDM}}}ComplexType", Name="metadata")
    types = {"createdAt": "Edm.DateTimeOffset", "updatedAt": "Edm.DateTimeOffset",
             "updates": "Edm.Int64", "version": "Edm.Int64"}
    for field in SYSTEM_FIELDS:
        etree.SubElement(meta, f"{{{EDM}}}Property", Name=field,
                         Type=types.get(field, "Edm.String"))
    namespace = f"org.opendatakit.user.{odata_name(entry.name)}"
    schema = etree.SubElement(services, f"{{{EDM}}}Schema", nsmap={None: EDM},
                              Namespace=namespace)
    entity_type = etree.SubElement(schema, f"{{{EDM}}}EntityType", Name="Entities")
    key = etree.SubElement(entity_type, f"{{{EDM}}}Key")
    etree.SubElement(key, f"{{{EDM}}}PropertyRef", Name="__id")
    columns = [("__id", "Edm.String"), ("label", "Edm.String"),
               ("__system", "org.opendatakit.entity.metadata")]
    columns += [(odata_name(p), "Edm.String") for p in entry.properties]
    for column, kind in columns:
        etree.SubElement(entity_type, f"{{{EDM}}}Property", Name=column, Type=kind)
    container = etree.SubElement(schema, f"{{{EDM}}}EntityContainer",
                                 Name=odata_name(entry.name))
    entity_set = etree.SubElement(container, f"{{{EDM}}}EntitySet", Name="Entities",
                                  EntityType=f"{namespace}.Entities")
    etree.SubElement(entity_set, f"{{{EDM}}}Annotation",
                     Term="Org.OData.Capabilities.V1.ConformanceLevel",
                     EnumMember="Org.OData.Capabilities.V1.ConformanceLevelType/Minimal")
    etree.SubElement(entity_set, f"{{{EDM}}}Annotation",
                     Term="Org.OData.Capabilities.V1.BatchSupported", Bool="false")
    xml = etree.tostring(root, encoding="utf-8", xml_declaration=True)
    return Response(xml, content_type="application/xml; charset=utf-8", headers=ODATA_VERSION)


@bp.get("/v1/projects/<int:project_id>/datasets/<name>.svc/Entities")
def odata_entities(project_id: int, name: str):
    """The entities as OData rows: `$top $skip $count $select $filter` (odata_query's subset)."""
    entry = the_list(project_id, name)
    query = parse_query(request.args)
    columns = {odata_name(p): p for p in entry.properties}
    check_select(query.select, ["__id", "label", "__system", *columns])
    conditions = live_conditions(project_id, name)
    if query.filter is not None:
        conditions.append(sql_condition(query.filter, filter_columns(columns)))
    db = db_session()
    total = db.scalar(select(func.count()).select_from(Entity).where(*conditions)) or 0
    page = select(Entity).where(*conditions).order_by(Entity.created_at, Entity.id)
    page = page.offset(query.skip).limit(query.top) if query.top is not None else (
        page.offset(query.skip))
    rows = list(db.scalars(page))
    facts = version_facts([Entity.id.in_([e.id for e in rows])]) if rows else {}
    names = creator_names(v["creatorId"] for v in facts.values())
    body = {"@odata.context": f"{service_root(project_id, entry.name)}/$metadata#Entities",
            "value": [select_row(odata_row(e, columns, facts, names), query.select)
                      for e in rows]}
    if query.count:
        body["@odata.count"] = total
    link = next_link(request.url, query, total)
    if link:
        body["@odata.nextLink"] = link
    return body, 200, ODATA_VERSION


def filter_columns(columns: dict[str, str]) -> dict:
    """What $filter may name, as SQL expressions."""
    return {
        "__id": Entity.id,
        "label": Entity.label,
        "__system/createdAt": Entity.created_at,
        "__system/updatedAt": case((Entity.version > 1, Entity.updated_at), else_=None),
        "__system/version": Entity.version,
        "__system/conflict": Entity.conflict,
        **{odata: Entity.properties[prop].as_string() for odata, prop in columns.items()},
    }


def creator_names(ids: Iterable[int | None]) -> dict[int, str]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    return dict(db_session().execute(
        select(User.id, User.display_name).where(User.id.in_(wanted))).all())


def odata_row(entity: Entity, columns: dict[str, str], facts: dict,
              names: dict[int, str]) -> dict:
    first = facts.get((entity.id, 1), {})
    creator = first.get("creatorId")
    row = {"__id": entity.id, "label": entity.label}
    for odata, prop in columns.items():
        row[odata] = entity.properties.get(prop)
    row["__system"] = {
        "createdAt": iso(entity.created_at),
        "creatorId": str(creator) if creator is not None else None,
        "creatorName": names.get(creator),
        "updates": entity.version - 1,
        "updatedAt": iso(entity.updated_at) if entity.version > 1 else None,
        "version": entity.version,
        "conflict": entity.conflict,
    }
    return row
