"""The one hardened XML parser of the code base.

Everything that reads XML coming from outside (XForms, submissions, OpenRosa bodies) goes through
:func:`parse_xml`. It refuses, with :class:`XMLRejected`, anything that is not a small, plain,
UTF-8 document: no DOCTYPE at all (so no XXE, no external DTD, no entity expansion bombs), no
other encodings, no malformed markup, nothing larger than ``max_bytes`` or nested deeper than
``max_depth``. Namespace-agnostic lookup helpers live here too, because ODK clients and servers
match element names by *local* name and ignore prefixes.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator

from lxml import etree

__all__ = [
    "XMLRejected",
    "parse_xml",
    "local_name",
    "children",
    "find_child",
    "find_path",
    "get_attr",
    "to_bytes",
]

_ENCODING_DECL = re.compile(
    rb"^(?:\xef\xbb\xbf)?\s*<\?xml\b[^>]*?\bencoding\s*=\s*[\"']([^\"']*)[\"']"
)
_UTF8_NAMES = frozenset({"utf-8", "utf8", "us-ascii", "ascii"})


class XMLRejected(ValueError):
    """The bytes are not an XML document we are willing to read. The message is short English."""


def _reject_cheaply(data: bytes, max_bytes: int) -> None:
    """Checks done on the raw bytes, before libxml2 sees anything."""
    if len(data) > max_bytes:
        raise XMLRejected(f"XML document too large ({len(data)} bytes, limit {max_bytes})")
    if not data.strip():
        raise XMLRejected("empty XML document")
    if b"\x00" in data:
        raise XMLRejected("XML document contains NUL bytes (only UTF-8 is accepted)")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise XMLRejected(f"XML document is not valid UTF-8 (byte {exc.start})") from None
    # The parser is forced to UTF-8 and NULs are excluded, so these byte patterns are the only
    # way libxml2 could be told about a DTD or an entity declaration.
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise XMLRejected("XML document has a DOCTYPE/DTD, which is not allowed")
    decl = _ENCODING_DECL.match(data[:512])
    if decl is not None and decl.group(1).decode("ascii", "replace").lower() not in _UTF8_NAMES:
        raise XMLRejected("XML document declares a non-UTF-8 encoding; only UTF-8 is accepted")


def parse_xml(data: bytes, *, max_bytes: int = 20_000_000, max_depth: int = 64) -> etree._Element:
    """Parse untrusted bytes into an lxml element, or raise :class:`XMLRejected`.

    Comments and processing instructions are dropped from the tree (never from the caller's
    bytes): code walking the tree only ever meets elements and text.
    """
    if isinstance(data, (bytearray, memoryview)):
        data = bytes(data)
    if not isinstance(data, bytes):
        raise TypeError("parse_xml() takes bytes")
    _reject_cheaply(data, max_bytes)
    parser = etree.XMLParser(
        encoding="utf-8",
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,  # also caps libxml2's own nesting limit at 256
        remove_comments=True,
        remove_pis=True,
        collect_ids=False,
        recover=False,
    )
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        msg = (exc.msg or "syntax error").splitlines()[0][:200]
        if "depth" in msg.lower():
            raise XMLRejected("XML nesting too deep") from None
        raise XMLRejected(f"malformed XML: {msg}") from None
    except (etree.LxmlError, ValueError, LookupError, UnicodeError) as exc:
        raise XMLRejected(f"unreadable XML: {str(exc)[:200]}") from None
    if root is None:
        raise XMLRejected("malformed XML: no root element")
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise XMLRejected("XML document has a DOCTYPE/DTD, which is not allowed")
    if root.xpath(_too_deep(max_depth)):
        raise XMLRejected(f"XML nesting deeper than {max_depth} levels")
    return root


@functools.lru_cache(maxsize=8)
def _too_deep(max_depth: int) -> str:
    """XPath, evaluated in C, that is true when an element sits below ``max_depth`` levels."""
    return "boolean(/" + "/".join(["*"] * (max_depth + 1)) + ")"


def local_name(el: etree._Element) -> str:
    """Element name without namespace; "" for comments, PIs and entities."""
    tag = el.tag
    if not isinstance(tag, str):
        return ""
    return tag.rsplit("}", 1)[1] if tag.startswith("{") else tag


def children(el: etree._Element, local: str | None = None) -> Iterator[etree._Element]:
    """Element children of ``el`` (optionally only those with local name ``local``)."""
    for child in el:
        name = local_name(child)
        if name and (local is None or name == local):
            yield child


def find_child(el: etree._Element, local: str) -> etree._Element | None:
    """First element child whose local name is ``local``."""
    return next(children(el, local), None)


def find_path(root: etree._Element, path: str) -> etree._Element | None:
    """Follow ``a/b/c`` from ``root`` by local names (first match at each step)."""
    el: etree._Element | None = root
    for step in path.strip("/").split("/"):
        if el is None:
            return None
        el = find_child(el, step)
    return el


def get_attr(el: etree._Element, local: str) -> str | None:
    """Attribute by local name, any namespace; the unprefixed one wins."""
    if local in el.attrib:
        return el.attrib[local]
    # keys() and one lookup: attrib.items() is quadratic in the number of attributes
    for key in el.attrib.keys():  # noqa: SIM118
        if key.rsplit("}", 1)[-1] == local:
            return el.attrib[key]
    return None


def to_bytes(el: etree._Element, *, xml_declaration: bool = False) -> bytes:
    """UTF-8 serialisation of one element (without its tail text)."""
    return etree.tostring(el, encoding="utf-8", xml_declaration=xml_declaration, with_tail=False)
