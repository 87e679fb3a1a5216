"""Question and choice labels of a published XForm, in the reader's language.

Read from the form's body and its itext translations (pyxform's `label::Tiếng Việt (vi)`
columns become `<translation lang="Tiếng Việt (vi)">`); a language the form lacks falls back to
the form's default translation, then to inline labels. Choices come from inline `<item>`s or
from itemsets over the form's own secondary instances (lists from CSV files are not known here).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

from lxml import etree

from server.xml import XMLRejected, children, find_child, get_attr, local_name, parse_xml

_ITEXT_REF = re.compile(r"""^\s*jr:itext\(\s*(['"])(.+)\1\s*\)\s*$""")
_ITEXT_FIELD = re.compile(r"""^\s*jr:itext\(\s*([\w.-]+)\s*\)\s*$""")
_INSTANCE = re.compile(r"""^\s*instance\(\s*['"]([^'"]+)['"]\s*\)/root/item""")
_CONTROLS = {"input", "select", "select1", "upload", "trigger", "range", "rank", "textarea"}


@dataclass
class FormLabels:
    title: str = ""
    fields: dict[str, str] = field(default_factory=dict)  # absolute path → label
    choices: dict[str, dict[str, str]] = field(default_factory=dict)  # path → value → label

    def choice(self, path: str, value: str) -> str:
        return self.choices.get(path, {}).get(value, value)


def _text(value: etree._Element) -> str:
    """A label's text; `<output value=…/>` (filled in on the phone) shows as an ellipsis."""
    parts = [value.text or ""]
    for child in value:
        if isinstance(child.tag, str):
            parts.append("…" if local_name(child) == "output" else _text(child))
        parts.append(child.tail or "")
    return " ".join("".join(parts).split())


def _translations(model: etree._Element, lang: str) -> dict[str, str]:
    """itext id → text: the wanted language over the default one."""
    tables: list[tuple[str, bool, dict[str, str]]] = []
    for itext in children(model, "itext"):
        for tr in children(itext, "translation"):
            texts = {}
            for text in children(tr, "text"):
                values = [v for v in children(text, "value") if get_attr(v, "form") is None]
                if values and get_attr(text, "id"):
                    texts[get_attr(text, "id")] = _text(values[0])
            tables.append((get_attr(tr, "lang") or "", get_attr(tr, "default") is not None,
                           texts))
    if not tables:
        return {}
    default = next((t for _l, is_default, t in tables if is_default), tables[0][2])
    wanted = next((t for name, _d, t in tables if name.endswith(f"({lang})")), default)
    return {**default, **wanted}


def _label(el: etree._Element, itext: dict[str, str], item=None) -> str:
    label = find_child(el, "label")
    if label is None:
        return ""
    ref = get_attr(label, "ref") or ""
    m = _ITEXT_REF.match(ref)
    if m:
        return itext.get(m.group(2), "")
    m = _ITEXT_FIELD.match(ref)
    if m and item is not None:
        node = find_child(item, m.group(1))
        return itext.get((node.text or "").strip(), "") if node is not None else ""
    if ref and item is not None:
        node = find_child(item, ref.strip())
        return _text(node) if node is not None else ""
    return _text(label)


def _abs(ref: str, context: str) -> str:
    ref = ref.strip()
    return ref if ref.startswith("/") else f"{context}/{ref}"


def _itemset(el, path, itext, instances, out: FormLabels) -> None:
    itemset = find_child(el, "itemset")
    if itemset is None:
        items = list(children(el, "item"))
        if items:
            out.choices[path] = {(_text(find_child(i, "value")) if find_child(i, "value")
                                  is not None else ""): _label(i, itext) for i in items}
        return
    m = _INSTANCE.match(get_attr(itemset, "nodeset") or "")
    instance = instances.get(m.group(1)) if m else None
    value_el = find_child(itemset, "value")
    if instance is None or value_el is None:
        return
    value_name = (get_attr(value_el, "ref") or "name").strip()
    root = next(children(instance), None)
    choices = {}
    for item in children(root, "item") if root is not None else ():
        node = find_child(item, value_name)
        if node is not None:
            choices[(node.text or "").strip()] = _label(itemset, itext, item)
    out.choices[path] = choices


@lru_cache(maxsize=32)
def form_labels(xml: bytes, lang: str = "vi") -> FormLabels:
    out = FormLabels()
    try:
        html = parse_xml(xml)
    except XMLRejected:
        return out
    head = find_child(html, "head")
    model = find_child(head, "model") if head is not None else None
    body = find_child(html, "body")
    if model is None or body is None:
        return out
    title = find_child(head, "title")
    out.title = _text(title) if title is not None else ""
    itext = _translations(model, lang)
    instances = {get_attr(i, "id"): i for i in children(model, "instance")
                 if get_attr(i, "id") and get_attr(i, "src") is None}
    primary = find_child(model, "instance")
    data = next(children(primary), None) if primary is not None else None
    root_path = f"/{local_name(data)}" if data is not None else ""

    def walk(el: etree._Element, context: str) -> None:
        for child in children(el):
            name = local_name(child)
            ref = get_attr(child, "nodeset" if name == "repeat" else "ref") or get_attr(
                child, "ref") or get_attr(child, "nodeset")
            path = _abs(ref, context) if ref else None
            if path and name in ("group", "repeat"):
                text = _label(child, itext)
                if text:
                    out.fields.setdefault(path, text)
            elif path and name in _CONTROLS:
                out.fields[path] = _label(child, itext)
                if name in ("select", "select1", "rank"):
                    _itemset(child, path, itext, instances, out)
            walk(child, path if path and name in ("group", "repeat") else context)

    walk(body, root_path)
    return out
