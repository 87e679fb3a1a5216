"""Central's OData feed of a form's submissions: `…/forms/<xmlFormId>.svc`.

Three resources, as Central serves them to Power BI, ruODK and pyodk's `get_table`:
the service document (the tables), `$metadata` (EDMX built from the form's current version)
and the tables themselves: `Submissions`, one table per repeat named by its path
(`Submissions.g_members.members`), and one submission's rows (`Submissions('uuid:…')`,
`Submissions('uuid:…')/g_members/members`, `…/members('<row id>')/toys`).

Rows follow Central: groups are nested objects; a repeat is a `<name>@odata.navigationLink`
(and its rows inline with `$expand=*`); ints and decimals are numbers, geopoints GeoJSON (WKT
with `$wkt=true`), empty answers null, everything else the answer's text; root rows carry
`__id` (the first instanceID) and `__system`; a repeat row's `__id` is Central's hash of its
place in the submission and its parent's id is `__Submissions-id` (or
`__Submissions-<parent repeat path>-id`). Submissions come newest first, the current version
of each. Query options: `$top $skip $count $filter $select $expand=* $wkt` (parsing in
server.central.odata_query); `$filter` knows `__id` and `__system/` submissionDate, updatedAt,
submitterId, reviewState and deletedAt (`$root/Submissions/…` on repeat tables).

Where we differ from Central: booleans are JSON booleans (Central sends their text), a repeat's
navigation link is present even when the submission has no rows there, and
`@odata.nextLink` keeps `$top`.

Values come from each version's stored `fields` through the raw export's readers
(server.exports.raw), a batch of submissions at a time, and the answer is written while it is
read: memory stays flat whatever the number of submissions. A supervisor with a tổ sees that
tổ's submissions only, and phone numbers as the raw export shows them to it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from operator import itemgetter
from typing import Any
from urllib.parse import quote

import orjson
from flask import Response, current_app, request, stream_with_context
from lxml import etree
from sqlalchemy import Text, and_, case, cast, false, func, null, select, type_coerce
from sqlalchemy.orm import aliased

from server.central import bp
from server.central import odata_query as oq
from server.central.common import caller, iso, project, query_bool
from server.db.models import Form, ReviewComment, Submission, SubmissionVersion, UTCDateTime
from server.domain.forms import get_form
from server.domain.masking import PHONE_FIELDS, mask_phone, sees_full_phone
from server.domain.review import central_state
from server.domain.xform_schema import Field, FormSchema
from server.errors import NotFound, problem
from server.exports import raw
from server.web_context import db_session

SV = SubmissionVersion
JSON_TYPE = "application/json; odata.metadata=minimal"
ODATA_HEADERS = {"OData-Version": "4.0"}
_CHUNK = 200  # rows per written piece of the answer

NotImplementedFeature = problem(501.1, "Máy chủ chưa hỗ trợ tùy chọn này.",
                                "The requested feature is not supported by this server.",
                                "NotImplementedFeature")
UnsupportedExpand = problem(501.6, "Máy chủ chỉ hỗ trợ $expand=*.",
                            "The given OData expand expression is not supported by this "
                            "server. Currently, only \"$expand=*\" is supported.",
                            "UnsupportedExpand")
UnsupportedSelectExpand = problem(501.11, "Máy chủ chưa hỗ trợ dùng $select cùng $expand.",
                                  "This server doesn't support $select query parameter with "
                                  "$expand.", "UnsupportedSelectExpand")
UnsupportedSelectField = problem(400.24, "Không chọn được trường nằm trong nhóm lặp con.",
                                 "The given OData select property uses features not supported "
                                 "by this server.", "UnsupportedSelectField")

# OData query options Central does not implement either.
_UNSUPPORTED_OPTIONS = ("$orderby", "$search", "$apply", "$compute", "$skiptoken")


# --- what a submission's metadata is, in SQL -----------------------------------------------------

_OTHER_VERSION = aliased(SubmissionVersion)
_EDITED = (select(_OTHER_VERSION.id)
           .where(_OTHER_VERSION.submission_id == Submission.id,
                  _OTHER_VERSION.current == false())
           .exists())
# Central's review words: null until reviewed, "edited" after an edit that no review followed.
REVIEW_WORD = case(
    (Submission.review_state == "has_issues", "hasIssues"),
    (Submission.review_state.in_(("approved", "rejected")), Submission.review_state),
    (and_(Submission.review_state == "received", _EDITED), "edited"),
    else_=null())
_LAST_REVIEW = (select(func.max(ReviewComment.at))
                .where(ReviewComment.submission_id == Submission.id,
                       ReviewComment.review_state.is_not(None))
                .scalar_subquery())
_EDITED_AT = case((SV.deprecated_id.is_not(None), SV.received_at), else_=null())
# The last change Central would count: an edit (the current version's receipt) or a review.
UPDATED_AT = case((_LAST_REVIEW.is_(None), _EDITED_AT),
                  (_EDITED_AT.is_(None), _LAST_REVIEW),
                  (_LAST_REVIEW > _EDITED_AT, _LAST_REVIEW),
                  else_=_EDITED_AT)


class _Moment(UTCDateTime):
    """UTCDateTime that says it holds datetimes, so that $filter reads its literals as such."""

    cache_ok = True

    @property
    def python_type(self) -> type:
        return datetime


FILTERABLE = {
    "__id": Submission.instance_id,
    "__system/submissionDate": type_coerce(Submission.created_at, _Moment()),
    "__system/updatedAt": type_coerce(UPDATED_AT, _Moment()),
    "__system/submitterId": Submission.submitter_id,
    "__system/reviewState": REVIEW_WORD,
    "__system/deletedAt": null(),  # submissions are never deleted here
}
SYSTEM_MEMBERS = ("submissionDate", "updatedAt", "submitterId", "submitterName",
                  "attachmentsPresent", "attachmentsExpected", "status", "reviewState",
                  "deviceId", "edits", "formVersion", "deletedAt")


# --- the form as OData tables --------------------------------------------------------------------


def odata_name(name: str) -> str:
    """Central's OData identifiers: letters, digits and `_`, never starting with a digit."""
    return re.sub(r"[^A-Za-z0-9_]+", "_", re.sub(r"^([^A-Za-z_])", r"_\1", name))


@dataclass(frozen=True)
class Node:
    """A field of the form with the fields below it (for groups and repeats)."""

    field: Field
    name: str  # its OData identifier
    children: tuple[Node, ...] = ()

    @property
    def kind(self) -> str:
        return self.field.kind


def form_tree(schema: FormSchema) -> tuple[Node, ...]:
    """The root's fields as a tree, in form order."""
    below: dict[str, list[Field]] = {}
    for f in schema.fields:
        below.setdefault(f.path.rsplit("/", 1)[0], []).append(f)

    def build(path: str) -> tuple[Node, ...]:
        return tuple(Node(f, odata_name(f.name), build(f.path) if f.kind != "field" else ())
                     for f in below.get(path, ()))

    return build(f"/{schema.root_name}")


def _walk_repeats(nodes: tuple[Node, ...], trail: tuple[Node, ...] = ()
                  ) -> Iterator[tuple[Node, ...]]:
    """The path (groups and repeats from the root) of every repeat, depth first."""
    for node in nodes:
        if node.kind != "field":
            path = (*trail, node)
            if node.kind == "repeat":
                yield path
            yield from _walk_repeats(node.children, path)


def table_names(tree: tuple[Node, ...]) -> list[str]:
    return ["Submissions", *("Submissions." + ".".join(n.name for n in path)
                             for path in _walk_repeats(tree))]


def _parent_key(trail: tuple[Node, ...]) -> str:
    """The name of a repeat row's parent id: the innermost enclosing repeat's path."""
    enclosing = max((i for i, n in enumerate(trail[:-1]) if n.kind == "repeat"), default=-1)
    return "__" + "-".join(["Submissions", *(n.name for n in trail[:enclosing + 1])]) + "-id"


@dataclass(frozen=True)
class Table:
    name: str  # "Submissions" or "Submissions.g_members.members"
    trail: tuple[Node, ...]  # groups and repeats from the root to the table's repeat
    nodes: tuple[Node, ...]  # the table's own fields, groups and repeats

    @property
    def repeat(self) -> Node | None:
        return self.trail[-1] if self.trail else None

    @property
    def parent_key(self) -> str | None:
        return _parent_key(self.trail) if self.trail else None

    @property
    def link_groups(self) -> str:
        """The groups between the parent row and the repeat, as a link's path (`g_members/`)."""
        start = max((i for i, n in enumerate(self.trail[:-1]) if n.kind == "repeat"), default=-1)
        return "".join(f"{n.name}/" for n in self.trail[start + 1:-1])


def find_table(tree: tuple[Node, ...], names: list[str]) -> Table:
    """The table `Submissions[.group….repeat]`; 404 for anything else."""
    if not names or names[0] != "Submissions":
        raise NotFound(".".join(names)[:200])
    nodes, trail = tree, ()
    for name in names[1:]:
        node = next((n for n in nodes if n.kind != "field" and n.name == name), None)
        if node is None:
            raise NotFound(".".join(names)[:200])
        nodes, trail = node.children, (*trail, node)
    if trail and trail[-1].kind != "repeat":
        raise NotFound(".".join(names)[:200])
    return Table(".".join(names), trail, nodes)


# --- values --------------------------------------------------------------------------------------

_INT = re.compile(r"\s*([+-]?\d+)")
_FLOAT = re.compile(r"\s*([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)")
_SHORT_ZONE = re.compile(r"[+-]\d\d$")


def _text(value: str) -> str | None:
    return value or None


def _int(value: str) -> int | float | None:
    """As JavaScript's parseInt: the leading digits, if any."""
    match = _INT.match(value)
    if match is None:
        return None
    number = int(match.group(1))
    return number if -2**63 <= number < 2**63 else float(number)


def _float(value: str) -> float | None:
    """As JavaScript's parseFloat: the leading number, if any."""
    match = _FLOAT.match(value)
    return float(match.group(1)) if match else None


def _bool(value: str) -> bool | None:
    word = value.strip()
    return True if word in ("true", "1") else False if word in ("false", "0") else None


def _date_time(value: str) -> str | None:
    """Collect writes zones as `+07`; OData wants `+07:00`."""
    value = value.strip()
    return value + ":00" if _SHORT_ZONE.search(value) else (value or None)


def _js(number: float) -> str:
    """A number as JavaScript prints it (`106`, not `106.0`), for WKT."""
    return str(int(number)) if number.is_integer() and abs(number) < 1e21 else repr(number)


def _point(text: str) -> tuple[list[float], float | None] | None:
    """GeoJSON coordinates (lon, lat[, alt]) and the accuracy of `lat lon alt acc`."""
    parts = [_float(p) for p in text.split()] + [None] * 4
    lat, lon, alt, acc = parts[:4]
    if lat is None or lon is None:
        return None
    return ([lon, lat] if alt is None else [lon, lat, alt]), acc


def _geopoint(wkt: bool) -> Callable[[str], Any]:
    def convert(value: str) -> Any:
        point = _point(value)
        if point is None:
            return None
        coordinates, accuracy = point
        if wkt:
            return f"POINT ({' '.join(_js(c) for c in coordinates)})"
        out: dict[str, Any] = {"type": "Point", "coordinates": coordinates}
        if accuracy is not None:
            out["properties"] = {"accuracy": accuracy}
        return out

    return convert


def _geoline(shape: bool, wkt: bool) -> Callable[[str], Any]:
    """geotrace (a line) or geoshape (a polygon): points separated by `;`."""

    def convert(value: str) -> Any:
        if not value.strip():
            return None
        points = [p for p in map(_point, re.split(r"; ?", value)) if p is not None]
        if wkt:
            text = ",".join(" ".join(_js(c) for c in coords) for coords, _acc in points)
            return f"POLYGON (({text}))" if shape else f"LINESTRING ({text})"
        coordinates = [coords for coords, _acc in points]
        out: dict[str, Any] = ({"type": "Polygon", "coordinates": [coordinates]} if shape
                               else {"type": "LineString", "coordinates": coordinates})
        accuracies = [acc for _coords, acc in points]
        if any(acc is not None for acc in accuracies):
            out["properties"] = {"accuracies": accuracies}
        return out

    return convert


def converter(field: Field, *, wkt: bool = False, mask: bool = False) -> Callable[[str], Any]:
    """Stored answer text → the OData value, by the field's type."""
    if mask and field.name in PHONE_FIELDS:
        return lambda value: mask_phone(value) or None
    kind = field.type
    if kind == "int":
        return _int
    if kind == "decimal":
        return _float
    if kind == "boolean":
        return _bool
    if kind == "dateTime":
        return _date_time
    if kind == "geopoint":
        return _geopoint(wkt)
    if kind in ("geotrace", "geoshape"):
        return _geoline(kind == "geoshape", wkt)
    return _text


# --- row ids and links ---------------------------------------------------------------------------

_INDEXED = re.compile(r"(.+)\[(\d+)\]")


def row_id(instance_id: str, key: str) -> str:
    """Central's id of a repeat row: a SHA-1 over its place (groups, repeats and 0-based
    indexes) from the submission; `key` is the row's KEY (`uuid:X/g_members/members[1]`)."""
    if key == instance_id:
        return instance_id
    parts = [f"Submissions#{instance_id}"]
    for step in key[len(instance_id) + 1:].split("/"):
        match = _INDEXED.fullmatch(step)
        parts.append(f"{match.group(1)}#{int(match.group(2)) - 1}" if match else f"{step}#")
    return hashlib.sha1("%%".join(parts).encode("utf-8")).hexdigest()  # noqa: S324 (an id)


def row_link(instance_id: str, key: str) -> str:
    """The path from the service root to a row: `Submissions('uuid%3AX')/g/members('…')`."""
    link = f"Submissions('{quote(instance_id, safe='')}')"
    if key == instance_id:
        return link
    steps = key[len(instance_id) + 1:].split("/")
    for n, step in enumerate(steps):
        match = _INDEXED.fullmatch(step)
        if match is None:
            link += f"/{odata_name(step)}"
        else:
            prefix = "/".join([instance_id, *steps[:n + 1]])
            link += f"/{odata_name(match.group(1))}('{row_id(instance_id, prefix)}')"
    return link


# --- rows ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Submitted:
    """One submission's stored answers: root values and repeat rows by repeat path."""

    instance_id: str  # the first version's (Central's logical id)
    version_id: str  # the current version's instanceID, which the stored keys use
    repeats: dict[str, list[dict]]

    def key(self, stored: str) -> str:
        return raw.logical_key(stored, self.version_id, self.instance_id)

    def rows_under(self, repeat: Field, parent_key: str) -> list[dict]:
        return [item for item in self.repeats.get(repeat.rel_path) or ()
                if self.key(item["parent_key"]) == parent_key]


@dataclass(frozen=True)
class _Plan:
    """How to build one object (a row or a group) of a table, worked out once per request:
    this is the feed's hot loop, so plain text fields are read by one itemgetter."""

    order: tuple[str, ...]  # every key of the object, in form order
    names: tuple[str, ...]  # the plain text fields…
    paths: tuple[str, ...]  # …their paths in the table…
    get: Callable[[dict], tuple]  # …and their values, from a row's cleaned answers
    typed: tuple[tuple[str, str, Callable[[str], Any]], ...]  # (name, path, converter)
    groups: tuple[tuple[str, tuple[Node, ...]], ...]
    repeats: tuple[tuple[str, Node], ...]


def cleaned(values: dict | None) -> dict:
    """Stored answers with the blank ones None, as OData writes them."""
    return {path: text or None for path, text in (values or {}).items()}


def _getter(paths: list[str]) -> Callable[[dict], tuple]:
    if len(paths) > 1:
        return itemgetter(*paths)
    if paths:
        return lambda values: (values[paths[0]],)
    return lambda values: ()


class Shaper:
    """Builds a table's rows from stored answers, the options applied."""

    def __init__(self, table: Table, *, expand: bool, wkt: bool, mask: bool,
                 keep: set[str] | None, system: set[str] | None, parent: bool):
        self.table, self.expand, self.keep = table, expand, keep
        self.system, self.parent = system, parent  # __system members kept; parent id kept
        self.wkt, self.mask = wkt, mask
        self.plans: dict[int, _Plan] = {}

    def _plan(self, nodes: tuple[Node, ...]) -> _Plan:
        plan = self.plans.get(id(nodes))
        if plan is not None:
            return plan
        order, names, paths, typed, groups, repeats = [], [], [], [], [], []
        for node in nodes:
            if self.keep is not None and node.field.path not in self.keep:
                continue
            if node.kind == "field":
                order.append(node.name)
                convert = converter(node.field, wkt=self.wkt, mask=self.mask)
                if convert is _text:
                    names.append(node.name)
                    paths.append(node.field.table_path)
                else:
                    typed.append((node.name, node.field.table_path, convert))
            elif node.kind == "group":
                order.append(node.name)
                groups.append((node.name, node.children))
            else:
                order.append(f"{node.name}@odata.navigationLink")
                if self.expand:
                    order.append(node.name)
                repeats.append((node.name, node))
        plan = self.plans[id(nodes)] = _Plan(tuple(order), tuple(names), tuple(paths),
                                             _getter(paths), tuple(typed), tuple(groups),
                                             tuple(repeats))
        return plan

    def frame(self, nodes: tuple[Node, ...], values: dict, sub: Submitted, key: str,
              link: str, groups: str = "") -> dict:
        """The fields of one row, groups nested; `values` are its answers by path in its
        table, blank ones already None (`cleaned`)."""
        plan = self._plan(nodes)
        out = dict.fromkeys(plan.order)
        try:
            out.update(zip(plan.names, plan.get(values), strict=True))
        except KeyError:  # a row of an older form version: the fields it lacks are null
            out.update(zip(plan.names, map(values.get, plan.paths), strict=True))
        for name, path, convert in plan.typed:
            out[name] = convert(values.get(path) or "")
        for name, children in plan.groups:
            out[name] = self.frame(children, values, sub, key, link, f"{groups}{name}/")
        for name, node in plan.repeats:
            out[f"{name}@odata.navigationLink"] = f"{link}/{groups}{name}"
            if self.expand:
                out[name] = [self.repeat_row(node, item, sub)
                             for item in sub.rows_under(node.field, key)]
        return out

    def repeat_row(self, node: Node, item: dict, sub: Submitted) -> dict:
        key = sub.key(item["key"])
        own_id = row_id(sub.instance_id, key)
        row = {"__id": own_id}
        row.update(self.frame(node.children, cleaned(item.get("values")), sub, key,
                              row_link(sub.instance_id, key)))
        return row

    def table_rows(self, sub: Submitted) -> Iterator[dict]:
        """The submission's rows of this (repeat) table, with their parent's id."""
        repeat, parent_key = self.table.repeat, self.table.parent_key
        for item in sub.repeats.get(repeat.field.rel_path) or ():
            row = self.repeat_row(repeat, item, sub)
            if self.parent:
                row[parent_key] = row_id(sub.instance_id, sub.key(item["parent_key"]))
            yield row

    def root_row(self, sub: Submitted, values: dict | None, system: dict) -> dict:
        row: dict[str, Any] = {"__id": sub.instance_id}
        if values is not None:  # None: encrypted, nothing readable
            row.update(self.frame(self.table.nodes, cleaned(values), sub, sub.instance_id,
                                  row_link(sub.instance_id, sub.instance_id)))
        if self.system is None:
            row["__system"] = system
        elif self.system:
            row["__system"] = {k: v for k, v in system.items() if k in self.system}
        return row


def _selection(table: Table, select: tuple[str, ...] | None
               ) -> tuple[set[str] | None, set[str] | None, bool]:
    """$select → (field paths kept, `__system` members kept, parent id kept); None = all.
    400.23 for a name the table lacks, 400.24 for a field of a repeat inside the table."""
    if select is None:
        return None, None, True
    keep: set[str] = set()
    system: set[str] = set()
    parent = False
    for name in select:
        if name == "__id":
            continue
        if table.repeat is None and name == "__system":
            system.update(SYSTEM_MEMBERS)
            continue
        if table.repeat is None and name.startswith("__system/") \
                and name[len("__system/"):] in SYSTEM_MEMBERS:
            system.add(name[len("__system/"):])
            continue
        if name == table.parent_key:
            parent = True
            continue
        nodes, found, ancestors = table.nodes, None, []
        for step in name.split("/"):
            if found is not None:
                if found.kind == "repeat":
                    raise UnsupportedSelectField(name[:100])
                ancestors.append(found)
            found = next((n for n in nodes if n.name == step), None)
            if found is None:
                raise oq.PropertyNotFound(name[:100])
            nodes = found.children
        keep.update(a.field.path for a in ancestors)
        stack = [found]
        while stack:  # a group brings what it holds (a repeat as its link)
            node = stack.pop()
            keep.add(node.field.path)
            if node.kind == "group":
                stack.extend(node.children)
    return keep, system, parent


# --- reading the database ------------------------------------------------------------------------


@dataclass
class Feed:
    """A form's submissions as the caller may read them."""

    form: Form
    schema: FormSchema
    tree: tuple[Node, ...]
    where: list  # the caller's tổ
    mask: bool


def load_feed(project_id: int, form_id: str) -> Feed:
    db = db_session()
    project(project_id)
    form = get_form(db, project_id, form_id)
    if form is None or form.current_version_id is None:
        raise NotFound(f"form {form_id[:100]}")
    schema = raw.current_schema(db, form)
    user = caller()
    team = None if user.role == "admin" or user.team in (None, "", "ward") else user.team
    where = raw.conditions(db, form, raw.RawFilters(tdp=team), current_app.config["TIMEZONE"])
    return Feed(form, schema, form_tree(schema), where, not sees_full_phone(user, team))


def _system(created, submitter, name, present, expected, encrypted, review, device, edits,
            version, updated) -> dict:
    return {"submissionDate": iso(created), "updatedAt": iso(updated),
            "submitterId": None if submitter is None else str(submitter),
            "submitterName": name or None, "attachmentsPresent": present or 0,
            "attachmentsExpected": expected or 0,
            "status": "notDecrypted" if encrypted else None,
            "reviewState": central_state(review, edits), "deviceId": device or None,
            "edits": edits, "formVersion": version, "deletedAt": None}


def root_rows(feed: Feed, shaper: Shaper, where: list, *, skip: int = 0,
              top: int | None = None) -> Iterator[dict]:
    """Root rows, newest first, `skip`/`top` applied by the database."""
    db = db_session()
    edits = raw.edit_counts(db, feed.form.id)
    extra = [UPDATED_AT, SV.instance_id]
    if shaper.expand:
        extra.append(cast(SV.fields["repeats"], Text))
    stmt = raw.root_statement(*extra)
    for (_, created, instance_id, submitter, name, present, expected, encrypted, review, device,
         sid, version, root, updated, version_id, *repeats) in raw.in_submission_order(
            db, feed.form.id, where, stmt, newest_first=True, skip=skip, top=top):
        n = edits.get(sid, 0)
        sub = Submitted(instance_id, version_id,
                        (raw.load_json(repeats[0]) or {}) if repeats else {})
        system = _system(created, submitter, name, present, expected, encrypted, review,
                         device, n, version, updated)
        yield shaper.root_row(sub, None if encrypted else (raw.load_json(root) or {}), system)


def repeat_rows(feed: Feed, shaper: Shaper, where: list) -> Iterator[dict]:
    """A repeat table's rows, submission by submission (newest first), in form order."""
    rel_path = shaper.table.repeat.field.rel_path
    stored = (cast(SV.fields["repeats"], Text) if shaper.expand  # nested repeats too
              else cast(SV.fields[("repeats", rel_path)], Text))
    stmt = (select(SV.id, Submission.instance_id, SV.instance_id, stored)
            .select_from(SV).join(Submission, Submission.id == SV.submission_id))
    for _, instance_id, version_id, text in raw.in_submission_order(
            db_session(), feed.form.id, [*where, SV.encrypted == false()], stmt,
            newest_first=True):
        repeats = raw.load_json(text) or ({} if shaper.expand else [])
        sub = Submitted(instance_id, version_id,
                        repeats if shaper.expand else {rel_path: repeats})
        yield from shaper.table_rows(sub)


def count(feed: Feed, where: list) -> int:
    stmt = raw.current_versions(select(func.count()), feed.form.id, where)
    return db_session().scalar(stmt) or 0


# --- the answers ---------------------------------------------------------------------------------


def _service_root() -> str:
    path = request.path
    return path[:path.index(".svc") + 4]


def _context(table: str) -> str:
    return f"{request.host_url.rstrip('/')}{_service_root()}/$metadata#{table}"


def _document(context: str, rows: Iterator[dict], tail: Callable[[], dict]) -> Response:
    """`{"@odata.context", "value": […], …tail}` written while the rows are read; the rows'
    session is closed at the end (the request's teardown may run before the last row)."""
    db = db_session()

    def chunks() -> Iterator[bytes]:
        try:
            yield b'{"@odata.context":' + orjson.dumps(context) + b',"value":['
            batch: list[bytes] = []
            comma = b""
            for row in rows:
                batch.append(orjson.dumps(row))
                if len(batch) == _CHUNK:
                    yield comma + b",".join(batch)
                    batch, comma = [], b","
            if batch:
                yield comma + b",".join(batch)
            yield b"]" + b"".join(b"," + orjson.dumps(k) + b":" + orjson.dumps(v)
                                  for k, v in tail().items() if v is not None) + b"}"
        finally:
            db.close()

    return Response(stream_with_context(chunks()), mimetype=JSON_TYPE, headers=ODATA_HEADERS)


def _options(table: Table, *, mask: bool, single: bool = False):
    """The query options, checked before anything is written."""
    for name in _UNSUPPORTED_OPTIONS:
        if name in request.args:
            raise NotImplementedFeature(name)
    args = request.args.to_dict()
    if table.repeat is not None and "$filter" in args:  # repeat tables filter their submission
        args["$filter"] = args["$filter"].replace("$root/Submissions/", "")
    q = oq.parse_query(args)
    expand = (request.args.get("$expand") or "").strip()
    if expand not in ("", "*"):
        raise UnsupportedExpand(expand[:50])
    if expand and q.select is not None:
        raise UnsupportedSelectExpand()
    keep, system, parent = _selection(table, q.select)
    conditions = []
    if q.filter is not None and not single:
        unknown = oq.fields_of(q.filter) - set(FILTERABLE)
        if unknown:
            raise oq.UnsupportedField(", ".join(sorted(unknown))[:200])
        conditions.append(oq.sql_condition(q.filter, FILTERABLE))
    return q, conditions, Shaper(table, expand=bool(expand), wkt=query_bool("$wkt"),
                                 mask=mask, keep=keep, system=system, parent=parent)


@bp.get("/v1/projects/<int:project_id>/forms/<form_id>.svc")
def odata_form_service(project_id: int, form_id: str):
    """The service document: the tables of the form."""
    feed = load_feed(project_id, form_id)
    body = {"@odata.context": f"{request.host_url.rstrip('/')}{request.path}/$metadata",
            "value": [{"name": t, "kind": "EntitySet", "url": t} for t in table_names(feed.tree)]}
    return Response(orjson.dumps(body), mimetype=JSON_TYPE, headers=ODATA_HEADERS)


@bp.get("/v1/projects/<int:project_id>/forms/<form_id>.svc/$metadata")
def odata_form_metadata(project_id: int, form_id: str):
    """The EDMX document describing the tables."""
    feed = load_feed(project_id, form_id)
    return Response(edmx(feed.form.xml_form_id, feed.tree), mimetype="application/xml",
                    headers=ODATA_HEADERS)


_SEGMENT = re.compile(r"([^(]+)(?:\('((?:[^']|'')*)'\))?")


@bp.get("/v1/projects/<int:project_id>/forms/<form_id>.svc/<path:table>")
def odata_form_table(project_id: int, form_id: str, table: str):
    """A table (`Submissions`, `Submissions.g_members.members`) or one submission's rows
    (`Submissions('uuid:…')[/group/repeat['id']…]`)."""
    feed = load_feed(project_id, form_id)
    if "/" not in table and "(" not in table:
        return _table(feed, find_table(feed.tree, table.split(".")))
    steps = []
    for part in table.split("/"):
        match = _SEGMENT.fullmatch(part)
        if match is None:
            raise NotFound(table[:200])
        steps.append((match.group(1), None if match.group(2) is None
                      else match.group(2).replace("''", "'")))
    if steps[0][1] is None:
        raise NotFound(table[:200])
    return _single(feed, find_table(feed.tree, [name for name, _ in steps]), steps)


def _table(feed: Feed, table: Table) -> Response:
    q, conditions, shaper = _options(table, mask=feed.mask)
    url = request.url
    where = [*feed.where, *conditions]
    if table.repeat is None:
        total = count(feed, where) if q.count or q.top is not None else None
        rows = root_rows(feed, shaper, where, skip=q.skip, top=q.top)
        return _document(_context(table.name), rows, lambda: {
            "@odata.count": total if q.count else None,
            "@odata.nextLink": oq.next_link(url, q, total or 0)})
    seen = {"total": 0}

    def window() -> Iterator[dict]:
        """$skip and $top over the rows; reading stops after the page unless counting."""
        end = None if q.top is None else q.skip + q.top
        for n, row in enumerate(repeat_rows(feed, shaper, where)):
            seen["total"] = n + 1
            if end is not None and n >= end:
                if not q.count:
                    return  # one more row is all a next link needs to know
            elif n >= q.skip:
                yield row

    return _document(_context(table.name), window(), lambda: {
        "@odata.count": seen["total"] if q.count else None,
        "@odata.nextLink": oq.next_link(url, q, seen["total"])})


def _single(feed: Feed, table: Table, steps: list[tuple[str, str | None]]) -> Response:
    """One submission's rows of a table, narrowed to the last row named in the path."""
    q, _conditions, shaper = _options(table, mask=feed.mask, single=True)
    parent = shaper.parent
    shaper.parent = True  # needed to narrow; dropped below when not selected
    where = [*feed.where, Submission.instance_id == steps[0][1]]
    if count(feed, where) == 0:
        raise NotFound(f"submission {steps[0][1][:100]}")
    if table.repeat is None:
        rows = list(root_rows(feed, shaper, where))
    else:
        rows = list(repeat_rows(feed, shaper, where))
    last = max(i for i, (_name, ident) in enumerate(steps) if ident is not None)
    if last == len(steps) - 1 and last > 0:  # the path names a row of this table
        rows = [r for r in rows if r["__id"] == steps[last][1]]
    elif last > 0:
        key = "__" + "-".join(name for name, _ in steps[:last + 1]) + "-id"
        rows = [r for r in rows if r.get(key) == steps[last][1]]
    if not parent and table.parent_key:
        for r in rows:
            r.pop(table.parent_key, None)
    page = rows[q.skip:None if q.top is None else q.skip + q.top]
    return _document(_context(table.name), iter(page), lambda: {
        "@odata.count": len(rows) if q.count else None,
        "@odata.nextLink": oq.next_link(request.url, q, len(rows))})


# --- $metadata -----------------------------------------------------------------------------------

EDMX = "http://docs.oasis-open.org/odata/ns/edmx"
EDM = "http://docs.oasis-open.org/odata/ns/edm"
EDM_TYPES = {"int": "Edm.Int64", "decimal": "Edm.Decimal", "boolean": "Edm.Boolean",
             "geopoint": "Edm.GeographyPoint", "geotrace": "Edm.GeographyLineString",
             "geoshape": "Edm.GeographyPolygon", "date": "Edm.Date",
             "dateTime": "Edm.DateTimeOffset"}
_SYSTEM_TYPES = {"submissionDate": "Edm.DateTimeOffset", "updatedAt": "Edm.DateTimeOffset",
                 "attachmentsPresent": "Edm.Int64", "attachmentsExpected": "Edm.Int64",
                 "status": "org.opendatakit.submission.Status",
                 "reviewState": "org.opendatakit.submission.ReviewState", "edits": "Edm.Int64",
                 "deletedAt": "Edm.DateTimeOffset"}


def _edm(parent: etree._Element, tag: str, **attrs: str) -> etree._Element:
    return etree.SubElement(parent, f"{{{EDM}}}{tag}", attrs)


def _annotate(entity_set: etree._Element) -> None:
    """What the feed can do, as Central declares it: minimal conformance, counts, no sort."""
    _edm(entity_set, "Annotation", Term="Org.OData.Capabilities.V1.ConformanceLevel",
         EnumMember="Org.OData.Capabilities.V1.ConformanceLevelType/Minimal")
    _edm(entity_set, "Annotation", Term="Org.OData.Capabilities.V1.BatchSupported", Bool="false")
    for term, prop, value in (("CountRestrictions", "Countable", "true"),
                              ("SortRestrictions", "Sortable", "false"),
                              ("ExpandRestrictions", "Expandable", "false")):
        note = _edm(entity_set, "Annotation", Term=f"Org.OData.Capabilities.V1.{term}")
        _edm(_edm(note, "Record"), "PropertyValue", Property=prop, Bool=value)


def edmx(xml_form_id: str, tree: tuple[Node, ...]) -> bytes:
    """The form's tables as an OData v4 EDMX document, named as Central names them."""
    root = etree.Element(f"{{{EDMX}}}Edmx", {"Version": "4.0"}, nsmap={"edmx": EDMX})
    services = etree.SubElement(root, f"{{{EDMX}}}DataServices")
    system = etree.SubElement(services, f"{{{EDM}}}Schema",
                              {"Namespace": "org.opendatakit.submission"}, nsmap={None: EDM})
    metadata = _edm(system, "ComplexType", Name="metadata")
    for member in SYSTEM_MEMBERS:
        _edm(metadata, "Property", Name=member, Type=_SYSTEM_TYPES.get(member, "Edm.String"))
    for name, members in (("Status", ("notDecrypted", "missingEncryptedFormData")),
                          ("ReviewState", ("hasIssues", "edited", "rejected", "approved"))):
        enum = _edm(system, "EnumType", Name=name)
        for member in members:
            _edm(enum, "Member", Name=member)

    base = f"org.opendatakit.user.{odata_name(xml_form_id)}"
    user = etree.SubElement(services, f"{{{EDM}}}Schema", {"Namespace": base}, nsmap={None: EDM})
    entities: list[tuple[str, list]] = []
    groups: list[tuple[str, list]] = []

    def describe(nodes: tuple[Node, ...], into: list, path: list[str]) -> None:
        for node in nodes:
            here = [*path, node.name]
            type_name = ".".join(here)
            if node.kind == "field":
                into.append(("Property", node.name, EDM_TYPES.get(node.field.type,
                                                                  "Edm.String")))
            elif node.kind == "group":
                props: list = []
                groups.append((type_name, props))
                into.append(("Property", node.name, f"{base}.{type_name}"))
                describe(node.children, props, here)
            else:
                trail = _trail_of(tree, node)
                props = [("Property", _parent_key(trail), "Edm.String")]
                entities.append((f"Submissions.{type_name}", props))
                into.append(("NavigationProperty", node.name,
                             f"Collection({base}.Submissions.{type_name})"))
                describe(node.children, props, here)

    primary: list = []
    entities.append(("Submissions", primary))
    describe(tree, primary, [])
    for name, props in entities:
        entity = _edm(user, "EntityType", Name=name)
        _edm(_edm(entity, "Key"), "PropertyRef", Name="__id")
        _edm(entity, "Property", Name="__id", Type="Edm.String")
        if name == "Submissions":
            _edm(entity, "Property", Name="__system", Type="org.opendatakit.submission.metadata")
        for tag, prop, kind in props:
            _edm(entity, tag, Name=prop, Type=kind)
    for name, props in groups:
        complex_type = _edm(user, "ComplexType", Name=name)
        for tag, prop, kind in props:
            _edm(complex_type, tag, Name=prop, Type=kind)
    container = _edm(user, "EntityContainer", Name=xml_form_id)
    for name, _props in entities:
        entity_set = _edm(container, "EntitySet", Name=name, EntityType=f"{base}.{name}")
        if name == "Submissions":
            _annotate(entity_set)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def _trail_of(tree: tuple[Node, ...], repeat: Node) -> tuple[Node, ...]:
    return next(path for path in _walk_repeats(tree) if path[-1] is repeat)
