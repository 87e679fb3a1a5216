"""Every OpenRosa document the server sends, built with lxml (so text is always escaped)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from lxml import etree

NS_FORMLIST = "http://openrosa.org/xforms/xformsList"
NS_MANIFEST = "http://openrosa.org/xforms/xformsManifest"
NS_RESPONSE = "http://openrosa.org/http/response"


@dataclass(frozen=True)
class FormListEntry:
    form_id: str
    name: str
    version: str
    md5: str
    download_url: str
    manifest_url: str | None


@dataclass(frozen=True)
class ManifestEntry:
    filename: str
    md5: str
    download_url: str
    entity_list: bool = False
    integrity_url: str | None = None


def _doc(root: etree._Element) -> bytes:
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _add(parent: etree._Element, ns: str, tag: str, text: str) -> None:
    etree.SubElement(parent, f"{{{ns}}}{tag}").text = text


def form_list(entries: Iterable[FormListEntry]) -> bytes:
    root = etree.Element(f"{{{NS_FORMLIST}}}xforms", nsmap={None: NS_FORMLIST})
    for e in entries:
        xf = etree.SubElement(root, f"{{{NS_FORMLIST}}}xform")
        _add(xf, NS_FORMLIST, "formID", e.form_id)
        _add(xf, NS_FORMLIST, "name", e.name)
        _add(xf, NS_FORMLIST, "version", e.version)
        _add(xf, NS_FORMLIST, "hash", f"md5:{e.md5}")
        _add(xf, NS_FORMLIST, "downloadUrl", e.download_url)
        if e.manifest_url:
            _add(xf, NS_FORMLIST, "manifestUrl", e.manifest_url)
    return _doc(root)


def manifest(entries: Iterable[ManifestEntry]) -> bytes:
    root = etree.Element(f"{{{NS_MANIFEST}}}manifest", nsmap={None: NS_MANIFEST})
    for e in entries:
        mf = etree.SubElement(root, f"{{{NS_MANIFEST}}}mediaFile")
        if e.entity_list:
            mf.set("type", "entityList")
        _add(mf, NS_MANIFEST, "filename", e.filename)
        _add(mf, NS_MANIFEST, "hash", f"md5:{e.md5}")
        _add(mf, NS_MANIFEST, "downloadUrl", e.download_url)
        if e.integrity_url:
            _add(mf, NS_MANIFEST, "integrityUrl", e.integrity_url)
    return _doc(root)


def response(message: str, *, error: bool = False) -> bytes:
    root = etree.Element(f"{{{NS_RESPONSE}}}OpenRosaResponse", nsmap={None: NS_RESPONSE})
    root.set("items", "0")
    msg = etree.SubElement(root, f"{{{NS_RESPONSE}}}message")
    msg.set("nature", "error" if error else "")
    msg.text = message
    return _doc(root)


def integrity(states: Iterable[tuple[str, bool]]) -> bytes:
    """Collect parses <deleted> strictly: exactly 'true' or 'false', no whitespace."""
    root = etree.Element("data")
    ents = etree.SubElement(root, "entities")
    for entity_id, deleted in states:
        ent = etree.SubElement(ents, "entity", id=entity_id)
        etree.SubElement(ent, "deleted").text = "true" if deleted else "false"
    return _doc(root)
