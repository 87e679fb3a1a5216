"""What the server needs to know about an XForm, read once when the form is uploaded.

The field list follows ODK Central's rules (depth-first order of the primary instance, types from
the typed ``<bind>``s, repeats from the body's ``<repeat nodeset>``, groups are elements with
children and no typed bind, names by local name) so that submissions can later be turned into
Central's CSV layout without reading the form again. Media expectations follow Central's
``expectedFormAttachments``.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property

from lxml import etree

from server.xml import XMLRejected, children, find_child, get_attr, local_name, parse_xml

__all__ = ["Field", "MediaRef", "EntityDecl", "FormSchema", "InvalidXForm", "parse_form_schema"]

_JR_NAME = re.compile(r"^jr://(?:images|audio|video|file|file-csv)/([^/]+)$")
_ITEXT_KINDS = {"image": "image", "audio": "audio", "video": "video", "big-image": "image"}
_SEARCH = re.compile(r"^\s*(?:\w*\s+)?search\s*\(\s*(\"|')(.+)\)\s*$", re.S)
_CONTROLS = frozenset(
    {"input", "select", "select1", "upload", "trigger", "range", "rank", "secret", "textarea"}
)


class InvalidXForm(ValueError):
    """The bytes are not an XForm we can serve (the message says why)."""


@dataclass(frozen=True)
class Field:
    """One node of the primary instance: a leaf field, a group or a repeat.

    ``path`` is absolute with local names (``/data/g_head/head_name``). ``type`` is the bind's
    type without prefix (``string``, ``int``, ``geopoint``, ``binary``, ...), ``structure`` for
    groups, ``repeat`` for repeats, ``unknown`` for a leaf without a typed bind. ``control`` is the
    body control's local name (``input``, ``select``, ``select1``, ``upload``, ...) or None.
    ``repeat`` is the innermost enclosing repeat's path; ``group`` the innermost enclosing
    non-repeat group *inside that repeat (or the root)*; ``saveto`` the entity property the
    field saves to (``entities:saveto``).
    """

    path: str
    name: str
    kind: str  # "field" | "group" | "repeat"
    type: str
    control: str | None = None
    repeat: str | None = None
    group: str | None = None
    saveto: str | None = None

    @property
    def rel_path(self) -> str:
        """Path below the instance root: ``g_head/head_name``."""
        return self.path.split("/", 2)[2]

    @property
    def table_path(self) -> str:
        """Path relative to the CSV table (root or enclosing repeat) the field belongs to."""
        base = self.repeat if self.repeat is not None else "/" + self.path.split("/", 2)[1]
        return self.path[len(base) + 1 :]

    @property
    def is_group(self) -> bool:
        return self.kind == "group"

    @property
    def is_repeat(self) -> bool:
        return self.kind == "repeat"

    @property
    def select_multiple(self) -> bool:
        return self.kind == "field" and (self.control == "select" or self.type == "select")

    @property
    def is_binary(self) -> bool:
        """Attachments: binary fields, and ``meta/audit`` whatever its type (as Central does)."""
        return self.kind == "field" and (self.type == "binary" or self.rel_path == "meta/audit")


@dataclass(frozen=True)
class MediaRef:
    """A form media file the form expects; kind is ``file``, ``image``, ``audio`` or ``video``."""

    name: str
    kind: str


@dataclass(frozen=True)
class EntityDecl:
    """The ``meta/entity`` declaration of the primary instance.

    ``create``/``update`` say whether the form *may* create/update (the attribute is declared,
    with a literal or a bound expression); what a given submission does is in its own envelope.
    ``properties`` maps field path to entity property (``entities:saveto``).
    """

    dataset: str
    create: bool
    update: bool
    properties: Mapping[str, str] = field(default_factory=dict, hash=False)
    entities_version: str | None = None


@dataclass(frozen=True)
class FormSchema:
    form_id: str
    version: str | None
    title: str | None
    root_name: str
    fields: tuple[Field, ...]
    binary_paths: frozenset[str]
    media: tuple[MediaRef, ...]
    entity: EntityDecl | None
    encrypted: bool
    public_key: str | None = None

    @cached_property
    def by_path(self) -> dict[str, Field]:
        """Fields by absolute path."""
        return {f.path: f for f in self.fields}

    @cached_property
    def by_rel_path(self) -> dict[str, Field]:
        """Fields by path below the root (``g_head/head_name``)."""
        return {f.rel_path: f for f in self.fields}

    def field(self, path: str) -> Field | None:
        """Look a field up by absolute (``/data/x``) or root-relative (``x``) path."""
        return self.by_path.get(path) if path.startswith("/") else self.by_rel_path.get(path)

    def repeats(self) -> tuple[Field, ...]:
        return tuple(f for f in self.fields if f.kind == "repeat")

    def media_references(self) -> tuple[str, ...]:
        """File names the form expects as form media, in discovery order, without duplicates."""
        return tuple(m.name for m in self.media)


def _norm_path(raw: str, root_name: str) -> str | None:
    """Absolute local-name path of a bind nodeset / body ref; None for attribute paths."""
    raw = raw.strip()
    if not raw:
        return None
    if not raw.startswith("/"):
        raw = f"/{root_name}/{raw}"
    steps = [s.rsplit(":", 1)[-1] for s in raw.strip("/").split("/")]
    if any(s in ("", ".", "..") or s.startswith("@") or "[" in s or "(" in s for s in steps):
        return None
    return "/" + "/".join(steps)


def _text(el: etree._Element | None) -> str:
    return "" if el is None else "".join(el.itertext())


def _jr_name(value: str | None) -> str | None:
    match = _JR_NAME.match((value or "").strip())
    return match.group(1) if match else None


def _search_csv(appearance: str) -> str | None:
    """File named by a ``search('name', ...)`` appearance (``.csv`` added when missing)."""
    match = _SEARCH.match(appearance)
    if match is None:
        return None
    quote, args = match.groups()
    try:
        row = next(csv.reader([quote + args], quotechar=quote, skipinitialspace=True), [])
    except csv.Error:
        return None
    if not row or not row[0] or row[0] != row[0].strip():
        return None
    name = row[0]
    return name if name.endswith(".csv") else f"{name}.csv"


def _body_info(body: etree._Element | None, root_name: str) -> tuple[set[str], dict[str, str]]:
    """Repeat paths and control kinds by path, resolving relative refs against groups."""
    repeats: set[str] = set()
    controls: dict[str, str] = {}
    if body is None:
        return repeats, controls

    def walk(el: etree._Element, context: str) -> None:
        for child in children(el):
            name = local_name(child)
            first, second = ("nodeset", "ref") if name == "repeat" else ("ref", "nodeset")
            ref = get_attr(child, first) or get_attr(child, second)
            path = None
            if ref:
                path = _norm_path(ref if ref.startswith("/") else f"{context}/{ref}", root_name)
            if name == "repeat" and path:
                repeats.add(path)
            elif name in _CONTROLS and path:
                controls.setdefault(path, name)
            walk(child, path if (path and name in ("group", "repeat")) else context)

    walk(body, f"/{root_name}")
    return repeats, controls


def _collect_fields(
    instance_root: etree._Element,
    binds: dict[str, str],
    saveto: dict[str, str],
    repeats: set[str],
    controls: dict[str, str],
) -> list[Field]:
    out: list[Field] = []
    seen: set[str] = set()

    def walk(el: etree._Element, base: str, repeat: str | None, group: str | None) -> None:
        for child in children(el):
            name = local_name(child)
            path = f"{base}/{name}"
            if path in seen:  # the jr:template copy of a repeat, or a duplicate node
                continue
            seen.add(path)
            if path in repeats:
                out.append(Field(path, name, "repeat", "repeat", repeat=repeat, group=group))
                walk(child, path, path, None)
            elif path not in binds and (
                next(children(child), None) is not None
                or (name == "entity" and base.endswith("/meta"))  # <entity/> without <label>
            ):
                out.append(Field(path, name, "group", "structure", repeat=repeat, group=group))
                walk(child, path, repeat, path)
            else:  # a typed bind makes a leaf, as in Central, even if the element has children
                kind = binds.get(path, "unknown")
                out.append(
                    Field(
                        path,
                        name,
                        "field",
                        kind,
                        controls.get(path),
                        repeat,
                        group,
                        saveto.get(path),
                    )
                )

    walk(instance_root, f"/{local_name(instance_root)}", None, None)
    return out


def _media(model: etree._Element, body: etree._Element | None) -> tuple[MediaRef, ...]:
    found: list[MediaRef] = []
    instances = list(children(model, "instance"))
    for inst in instances:
        name = _jr_name(get_attr(inst, "src"))
        if name:
            found.append(MediaRef(name, "file"))
    for itext in children(model, "itext"):
        for value in itext.iter("{*}value"):
            kind = _ITEXT_KINDS.get(get_attr(value, "form") or "")
            name = _jr_name(_text(value))
            if kind and name:
                found.append(MediaRef(name, kind))
    for inst in instances:
        for el in inst.iter():
            text = (el.text or "").strip() if isinstance(el.tag, str) else ""
            if re.match(r"^jr://images/.", text):
                name = _jr_name(text)
                if name:
                    found.append(MediaRef(name, "image"))
    if body is not None:
        if any(get_attr(el, "query") is not None for el in body.iter("{*}input")):
            found.append(MediaRef("itemsets.csv", "file"))
        for el in body.iter("{*}select", "{*}select1"):
            appearance = get_attr(el, "appearance") or ""
            name = _search_csv(appearance) if "search" in appearance else None
            if name:
                found.append(MediaRef(name, "file"))
    unique: dict[str, MediaRef] = {}
    for ref in found:
        unique.setdefault(ref.name, ref)
    return tuple(unique.values())


def parse_form_schema(xform_bytes: bytes) -> FormSchema:
    """Read an XForm (e.g. pyxform output). Raises :class:`InvalidXForm` (a ValueError)."""
    try:
        html = parse_xml(xform_bytes)
    except XMLRejected as exc:
        raise InvalidXForm(f"Not a readable XForm: {exc}") from None
    if local_name(html) != "html":
        raise InvalidXForm("Not an XForm: the root element must be <h:html>")
    head = find_child(html, "head")
    model = find_child(head, "model") if head is not None else None
    if model is None:
        raise InvalidXForm("Not an XForm: <h:head><model> is missing")
    primary = find_child(model, "instance")
    root = next(children(primary), None) if primary is not None else None
    if root is None:
        raise InvalidXForm("Not an XForm: the model has no primary <instance> with a root element")
    form_id = (get_attr(root, "id") or "").strip()
    if not form_id:
        raise InvalidXForm("The XForm has no form id (the `id` attribute of the instance root)")
    if form_id.lower().endswith((".xls", ".xlsx", ".xml")):
        raise InvalidXForm(f"The form id {form_id!r} must not end in .xls, .xlsx or .xml")
    root_name = local_name(root)
    body = find_child(html, "body")

    binds: dict[str, str] = {}
    saveto: dict[str, str] = {}
    for bind in children(model, "bind"):
        path = _norm_path(get_attr(bind, "nodeset") or get_attr(bind, "ref") or "", root_name)
        if path is None:
            continue
        bind_type = get_attr(bind, "type")
        if bind_type and path not in binds:
            binds[path] = bind_type.strip().rsplit(":", 1)[-1]
        prop = get_attr(bind, "saveto")
        if prop and prop.strip():
            saveto.setdefault(path, prop.strip())

    repeats, controls = _body_info(body, root_name)
    fields = tuple(_collect_fields(root, binds, saveto, repeats, controls))

    entity = None
    meta = find_child(root, "meta")
    entity_el = find_child(meta, "entity") if meta is not None else None
    if entity_el is not None:
        dataset = (get_attr(entity_el, "dataset") or "").strip()
        if not dataset:
            raise InvalidXForm("The entity declaration (meta/entity) has no dataset name")
        entity = EntityDecl(
            dataset=dataset,
            create=get_attr(entity_el, "create") is not None,
            update=get_attr(entity_el, "update") is not None,
            properties={f.path: f.saveto for f in fields if f.saveto},
            entities_version=get_attr(model, "entities-version"),
        )
    elif saveto:
        raise InvalidXForm("Fields save to entity properties but the form declares no entity")

    submission = find_child(model, "submission")
    public_key = ""
    if submission is not None:
        public_key = (get_attr(submission, "base64RsaPublicKey") or "").strip()
    title = _text(find_child(head, "title")).strip() or None
    return FormSchema(
        form_id=form_id,
        version=get_attr(root, "version"),
        title=title,
        root_name=root_name,
        fields=fields,
        binary_paths=frozenset(f.path for f in fields if f.is_binary),
        media=_media(model, body),
        entity=entity,
        encrypted=bool(public_key),
        public_key=public_key or None,
    )
