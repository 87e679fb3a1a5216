"""Build submission XML the way Collect serialises a filled form.

The primary instance of the XForm is the template: values are set by path below the root,
repeat templates (`jr:template`) are dropped and repeats are filled from lists of dicts.
The output has no default namespace, like Collect's instance files.
"""

from __future__ import annotations

import copy
import uuid

from lxml import etree

from server.xml import local_name, parse_xml

JR = "http://openrosa.org/javarosa"


def _strip_namespaces(el: etree._Element) -> etree._Element:
    for node in el.iter():
        if isinstance(node.tag, str):
            node.tag = local_name(node)
    etree.cleanup_namespaces(el)
    return el


def primary_instance(xform: bytes) -> etree._Element:
    root = parse_xml(xform)
    model = next(e for e in root.iter() if isinstance(e.tag, str) and local_name(e) == "model")
    instance = next(e for e in model if isinstance(e.tag, str) and local_name(e) == "instance")
    data = next(e for e in instance if isinstance(e.tag, str))
    return _strip_namespaces(copy.deepcopy(data))


def _set(el: etree._Element, path: str, value: str) -> None:
    node = el
    for part in path.split("/"):
        found = node.find(part)
        if found is None:
            found = etree.SubElement(node, part)
        node = found
    node.text = value


def build(
    xform: bytes,
    values: dict[str, str] | None = None,
    *,
    repeats: dict[str, list[dict[str, str]]] | None = None,
    instance_id: str | None = None,
    deprecated_id: str | None = None,
    drop: tuple[str, ...] = (),
    entity: dict[str, str] | None = None,
) -> bytes:
    """A filled instance. `drop` removes groups that were not relevant (Collect omits them)."""
    data = primary_instance(xform)
    templates = {}
    for el in list(data.iter()):
        if el.get(f"{{{JR}}}template") is not None or el.get("template") is not None:
            path = "/".join(local_name(a) for a in reversed(list(el.iterancestors()))
                            if a is not data)
            key = f"{path}/{local_name(el)}" if path else local_name(el)
            templates[key] = el
    for key, template in templates.items():
        parent = template.getparent()
        position = list(parent).index(template)
        # pyxform also writes one plain copy of each repeat: the lists given here decide.
        for sibling in [s for s in parent if s.tag == template.tag]:
            parent.remove(sibling)
        template.attrib.clear()
        for i, row in enumerate((repeats or {}).get(key, [])):
            item = copy.deepcopy(template)
            for path, value in row.items():
                _set(item, path, value)
            parent.insert(position + i, item)
    for path, value in (values or {}).items():
        _set(data, path, value)
    _set(data, "meta/instanceID", instance_id or f"uuid:{uuid.uuid4()}")
    if deprecated_id:
        meta = data.find("meta")
        dep = meta.find("deprecatedID")
        if dep is None:
            dep = etree.Element("deprecatedID")
            meta.insert(list(meta).index(meta.find("instanceID")) + 1, dep)
        dep.text = deprecated_id
    if entity is not None:
        # meta/entity attributes and label, as Collect fills them ("1"/"0" for booleans)
        node = data.find("meta/entity")
        for name, value in entity.items():
            if name == "label":
                label = node.find("label")
                if label is None:
                    label = etree.SubElement(node, "label")
                label.text = value
            else:
                node.set(name, value)
    for path in drop:
        node = data.find(path)
        if node is not None:
            node.getparent().remove(node)
    etree.cleanup_namespaces(data)
    return etree.tostring(data, xml_declaration=True, encoding="UTF-8")
