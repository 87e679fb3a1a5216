"""Reading submission instances: identity, attachments, field values, privacy blanking.

Element names are matched by *local* name everywhere (Collect, Enketo and Central put ``meta``
in various namespaces). Field values are extracted once at ingest into a JSON-serialisable dict
shaped for ODK Central's CSV layout, so exports never re-parse XML.

``parse_fields`` returns::

    {
      "key": "<instance_id>",                       # root row KEY
      "root": {"<rel path>": "<text>", ...},         # every leaf field outside repeats, in form
                                                     # order, e.g. "g_head/head_name",
                                                     # "meta/instanceID"; "" when absent
      "repeats": {                                   # every repeat of the form, in form order,
        "<repeat rel path>": [                       # e.g. "g_members/members",
          {                                          #      "g_members/members/toys"
            "key": "uuid:X/g_members/members[1]",    # Central's KEY (groups and repeats named,
                                                     # 1-based index per parent row)
            "parent_key": "uuid:X",                  # root KEY, or the parent repeat row's KEY
            "values": {"<path in repeat>": "<text>"} # leaf fields of this repeat (not of nested
          },                                         # repeats), e.g. "m_name", "g_x/m_age"
          ...
        ]
      }
    }

Values are the raw element text (geopoints and select_multiple answers are kept as the
space-separated strings; the schema says how to split them). Column headers are the keys with
``/`` replaced by ``-``; ``Field.name`` gives the ``groupPaths=false`` header.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from lxml import etree

from server.domain.xform_schema import FormSchema
from server.xml import XMLRejected, children, find_child, find_path, get_attr, local_name, parse_xml

__all__ = [
    "InvalidSubmission",
    "EntityAction",
    "Envelope",
    "read_envelope",
    "envelope_of",
    "referenced_attachments",
    "parse_fields",
    "blank_identity_number",
    "blank_identity_number_parsed",
]


class InvalidSubmission(ValueError):
    """The submission XML cannot be accepted (Central answers these with 400)."""


@dataclass(frozen=True)
class EntityAction:
    """The ``meta/entity`` element as the device filled it in."""

    dataset: str | None
    id: str | None
    create: bool
    update: bool
    base_version: str | None = None
    trunk_version: str | None = None
    branch_id: str | None = None
    label: str | None = None  # None when there is no <label> child


@dataclass(frozen=True)
class Envelope:
    """Identity and routing data of one submission (OpenRosa §4.7-4.9)."""

    form_id: str
    version: str | None
    instance_id: str | None
    deprecated_id: str | None = None
    instance_name: str | None = None
    encrypted: bool = False
    encrypted_xml_file: str | None = None
    media_files: tuple[str, ...] = ()
    base64_encrypted_key: str | None = None
    encrypted_signature: str | None = None
    entity: EntityAction | None = None


def _opt_text(el: etree._Element | None) -> str | None:
    """Trimmed text of an optional element; None when absent or blank."""
    if el is None:
        return None
    text = "".join(el.itertext()).strip()
    return text or None


def _opt_attr(el: etree._Element, local: str) -> str | None:
    value = (get_attr(el, local) or "").strip()
    return value or None


def _truthy(value: str | None) -> bool:
    """XForms booleans: Collect sends 1/0, Web Forms true/false; anything else is false."""
    return (value or "").strip() in ("1", "true")


def _entity_of(root: etree._Element) -> EntityAction | None:
    el = find_path(root, "meta/entity")
    if el is None:
        return None
    label_el = find_child(el, "label")
    return EntityAction(
        dataset=_opt_attr(el, "dataset"),
        id=_opt_attr(el, "id"),
        create=_truthy(get_attr(el, "create")),
        update=_truthy(get_attr(el, "update")),
        base_version=_opt_attr(el, "baseVersion"),
        trunk_version=_opt_attr(el, "trunkVersion"),
        branch_id=_opt_attr(el, "branchId"),
        label=None if label_el is None else "".join(label_el.itertext()),
    )


def envelope_of(root: etree._Element) -> Envelope:
    """Envelope of an already parsed submission root. Raises :class:`InvalidSubmission`."""
    form_id = (get_attr(root, "id") or "").strip()
    if not form_id:
        raise InvalidSubmission(
            "The submission has no form id (the `id` attribute of its root element)"
        )
    meta = find_child(root, "meta")

    def meta_text(local: str) -> str | None:
        return _opt_text(find_child(meta, local)) if meta is not None else None

    def envelope_text(local: str) -> str | None:
        return _opt_text(find_child(root, local)) if encrypted else None

    instance_id = meta_text("instanceID") or _opt_text(find_child(root, "instanceID"))
    encrypted = (get_attr(root, "encrypted") or "").strip().lower() == "yes"
    if encrypted and instance_id is None:
        raise InvalidSubmission("The encrypted submission has no instanceID")
    media: list[str] = []
    if encrypted:
        for media_el in children(root, "media"):
            media.extend(n for f in children(media_el, "file") if (n := _opt_text(f)))
    return Envelope(
        form_id=form_id,
        version=get_attr(root, "version"),
        instance_id=instance_id,
        deprecated_id=meta_text("deprecatedID"),
        instance_name=meta_text("instanceName"),
        encrypted=encrypted,
        encrypted_xml_file=envelope_text("encryptedXmlFile"),
        media_files=tuple(media),
        base64_encrypted_key=envelope_text("base64EncryptedKey"),
        encrypted_signature=envelope_text("base64EncryptedElementSignature"),
        entity=_entity_of(root),
    )


def read_envelope(xml_bytes: bytes) -> Envelope:
    """Parse submission bytes and read the envelope. Any problem is :class:`InvalidSubmission`."""
    try:
        root = parse_xml(xml_bytes)
    except XMLRejected as exc:
        raise InvalidSubmission(f"The submission XML was rejected: {exc}") from None
    return envelope_of(root)


_PATH_SEP = re.compile(r"[\\/]")


def _base_name(value: str | None) -> str | None:
    """File name part only: the XML names files, never paths we would follow."""
    name = _PATH_SEP.split((value or "").strip())[-1]
    return None if name in ("", ".", "..") else name


def _walk(el: etree._Element, rel: str = "", within: set[str] | None = None
          ) -> Iterator[tuple[str, etree._Element]]:
    """(path below the root, element) for every descendant (only those whose path is in
    `within`, when given), repeat indices ignored."""
    for child in children(el):
        path = f"{rel}/{local_name(child)}" if rel else local_name(child)
        if within is None or path in within:
            yield path, child
            yield from _walk(child, path, within)


def referenced_attachments(
    schema: FormSchema | None, root: etree._Element, envelope: Envelope
) -> set[str]:
    """Attachment file names the XML references; other uploaded files are ignored (as Central).

    Encrypted: ``<media><file>`` names plus ``encryptedXmlFile``. Plain: values of the schema's
    binary fields (at any repeat depth) plus ``meta/audit``; the schema is required.
    """
    if envelope.encrypted:
        candidates = [*envelope.media_files, envelope.encrypted_xml_file]
    else:
        if schema is None:
            raise ValueError("the form schema is needed to find a plain submission's attachments")
        binary = {schema.field(p).rel_path for p in schema.binary_paths} | {"meta/audit"}
        # only the branches that can hold a binary field are walked
        inner = {b.rsplit("/", i)[0] for b in binary for i in range(1, b.count("/") + 1)}
        candidates = [_opt_text(el) for path, el in _walk(root, within=inner | binary)
                      if path in binary]
    return {name for value in candidates if (name := _base_name(value))}


def _own_text(el: etree._Element) -> str:
    """Text directly inside ``el`` (children's own text is not the field's value)."""
    return (el.text or "") + "".join(child.tail or "" for child in el)


@dataclass(frozen=True)
class _Plan:
    """What parse_fields needs of a schema, worked out once per schema."""

    root_row: dict[str, str]  # every root column, empty
    templates: dict[str, dict[str, str]]  # by repeat path: every column of its rows, empty
    repeats: tuple[str, ...]  # repeats' paths below the root
    nodes: dict[str, tuple[str, str]]  # path below the root -> (kind, column or repeat path)


_PLANS: dict[int, tuple[FormSchema, _Plan]] = {}


def _plan(schema: FormSchema) -> _Plan:
    hit = _PLANS.get(id(schema))
    if hit is not None and hit[0] is schema:  # the entry keeps its schema alive: ids stay apart
        return hit[1]
    leaves = [f for f in schema.fields if f.kind == "field"]
    templates: dict[str, dict[str, str]] = {r.path: {} for r in schema.repeats()}
    for f in leaves:
        if f.repeat is not None:
            templates[f.repeat][f.table_path] = ""
    plan = _Plan(
        root_row={f.rel_path: "" for f in leaves if f.repeat is None},
        templates=templates,
        repeats=tuple(r.rel_path for r in schema.repeats()),
        nodes={f.rel_path: (f.kind, f.path if f.kind == "repeat" else f.table_path)
               for f in schema.fields})
    if len(_PLANS) >= 256:
        _PLANS.clear()
    _PLANS[id(schema)] = (schema, plan)
    return plan


def parse_fields(schema: FormSchema, root: etree._Element, instance_id: str) -> dict[str, Any]:
    """Field values of one submission in Central's table layout (shape: module docstring)."""
    plan = _plan(schema)
    nodes, templates = plan.nodes, plan.templates
    root_row = dict(plan.root_row)
    repeats: dict[str, list[dict[str, Any]]] = {path: [] for path in plan.repeats}

    def walk(
        el: etree._Element,
        rel: str,
        parts: list[str],
        parent_key: str,
        values: dict[str, str],
        counters: dict[str, int],
    ) -> None:
        for child in el:
            tag = child.tag
            if not isinstance(tag, str):  # comments and PIs are not fields
                continue
            name = tag[tag.rfind("}") + 1:]  # local name
            path = f"{rel}/{name}" if rel else name
            node = nodes.get(path)
            if node is None:  # not in the form: ignored, with everything below it
                continue
            kind, target = node
            if kind == "repeat":
                counters[path] = index = counters.get(path, 0) + 1
                row_parts = [*parts, f"{name}[{index}]"]
                key = "/".join(row_parts)
                row = {"key": key, "parent_key": parent_key, "values": dict(templates[target])}
                repeats[path].append(row)
                walk(child, path, row_parts, key, row["values"], {})
            elif kind == "group":
                walk(child, path, [*parts, name], parent_key, values, counters)
            else:  # duplicated elements concatenate, as in Central's export
                values[target] = values.get(target, "") + _own_text(child)

    walk(root, "", [instance_id], instance_id, root_row, {})
    return {"key": instance_id, "root": root_row, "repeats": repeats}


# --- identity number blanking -------------------------------------------------------------

_START_TAG = re.compile(rb"<([^\s/>!?]+)(?:[^>\"']|\"[^\"]*\"|'[^']*')*>")


def _content_spans(data: bytes, path: tuple[str, ...]) -> list[tuple[int, int]]:
    """Byte spans of the content of every element at ``path`` below the root.

    A minimal scanner for documents that :func:`parse_xml` already accepted (well-formed UTF-8,
    no DTD): it only needs to tell markup from content to find start and end tags.
    """
    spans: list[tuple[int, int]] = []
    stack: list[str] = []
    depth = len(path) + 1
    open_at: int | None = None
    pos = 0
    while (lt := data.find(b"<", pos)) >= 0:
        if data.startswith(b"<!--", lt):
            pos = data.index(b"-->", lt + 4) + 3
        elif data.startswith(b"<![CDATA[", lt):
            pos = data.index(b"]]>", lt + 9) + 3
        elif data.startswith(b"<?", lt):
            pos = data.index(b"?>", lt + 2) + 2
        elif data.startswith(b"</", lt):
            if open_at is not None and len(stack) == depth:
                spans.append((open_at, lt))
                open_at = None
            stack.pop()
            pos = data.index(b">", lt) + 1
        else:
            match = _START_TAG.match(data, lt)
            if match is None:
                raise ValueError("unexpected markup while locating an element")
            pos = match.end()
            if match.group(0)[:-1].rstrip().endswith(b"/"):
                continue  # <x/>: no content
            stack.append(match.group(1).rsplit(b":", 1)[-1].decode("utf-8"))
            if len(stack) == depth and tuple(stack[1:]) == path:
                open_at = pos
    return spans


def _elements_at(root: etree._Element, path: tuple[str, ...]) -> list[etree._Element]:
    found = [root]
    for step in path:
        found = [c for el in found for c in children(el, step)]
    return found


def _digits(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKC", text) if c in "0123456789")


def blank_identity_number(
    xml_bytes: bytes, path: Sequence[str] | str = ("g_head", "head_id")
) -> tuple[bytes, str | None]:
    """Empty the text of the element at ``path`` (below the root), changing no other byte.

    Returns the new bytes and the digits that were there (non-digits removed; None when the
    element is absent or had no digit). Every element at that path is blanked. The result is
    re-parsed and checked, so a failure raises instead of letting the number through.
    Raises :class:`~server.xml.XMLRejected` for bytes that are not acceptable XML.
    """
    out, digits, _ = blank_identity_number_parsed(xml_bytes, parse_xml(xml_bytes), path)
    return out, digits


def blank_identity_number_parsed(
    xml_bytes: bytes, root: etree._Element, path: Sequence[str] | str = ("g_head", "head_id")
) -> tuple[bytes, str | None, etree._Element]:
    """:func:`blank_identity_number` for bytes already parsed into ``root``; also returns the
    parsed tree of the new bytes (``root`` itself when nothing had to change), so that the
    caller reads its fields without parsing again."""
    steps = tuple(path.strip("/").split("/")) if isinstance(path, str) else tuple(path)
    elements = _elements_at(root, steps)
    digits = next((d for el in elements if (d := _digits("".join(el.itertext())))), None)
    if all(len(el) == 0 and not el.text for el in elements):
        return xml_bytes, digits, root
    out = xml_bytes
    for start, end in reversed(_content_spans(xml_bytes, steps)):
        out = out[:start] + out[end:]
    blanked = parse_xml(out)  # the check parses the bytes that will be stored
    after = _elements_at(blanked, steps)
    if len(after) != len(elements) or any(len(el) or el.text for el in after):
        raise ValueError(f"could not blank the element {'/'.join(steps)}")
    return out, digits, blanked
