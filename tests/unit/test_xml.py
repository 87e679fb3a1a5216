"""The hardened XML parser refuses everything dangerous or unexpected, and only with XMLRejected."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.xml import (
    XMLRejected,
    children,
    find_child,
    find_path,
    get_attr,
    local_name,
    parse_xml,
    to_bytes,
)


def rejected(data: bytes, **kwargs) -> str:
    with pytest.raises(XMLRejected) as info:
        parse_xml(data, **kwargs)
    message = str(info.value)
    assert message and len(message) < 300
    return message


# --- accepted documents ------------------------------------------------------------------


def test_parses_plain_utf8_with_declaration_bom_and_non_ascii():
    data = '\ufeff<?xml version="1.0" encoding="UTF-8"?>\n<data id="f"><n>Nguyễn Thị Ánh</n></data>'
    root = parse_xml(data.encode("utf-8"))
    assert local_name(root) == "data"
    assert find_child(root, "n").text == "Nguyễn Thị Ánh"


def test_character_references_and_predefined_entities_are_fine():
    root = parse_xml(b"<a>&lt;&amp;&#233;&#x1EA1;</a>")
    assert root.text == "<&éạ"


def test_comments_and_processing_instructions_are_dropped_from_the_tree():
    root = parse_xml(b"<?xml version='1.0'?><!-- x --><a><?pi data?><!-- c --><b/>t</a>")
    assert [local_name(c) for c in root] == ["b"]
    assert to_bytes(root) == b"<a><b/>t</a>"


def test_xinclude_is_never_processed():
    data = (
        b'<a xmlns:xi="http://www.w3.org/2001/XInclude">'
        b'<xi:include href="/etc/passwd" parse="text"/></a>'
    )
    root = parse_xml(data)
    assert [local_name(c) for c in root] == ["include"]
    assert "root:" not in to_bytes(root).decode()


def test_bytearray_is_accepted_and_str_is_a_programming_error():
    assert local_name(parse_xml(bytearray(b"<a/>"))) == "a"
    with pytest.raises(TypeError):
        parse_xml("<a/>")  # type: ignore[arg-type]


# --- helpers -------------------------------------------------------------------------------


NS_DOC = (
    b'<data xmlns="http://opendatakit.org/submissions" xmlns:orx="http://openrosa.org/xforms" '
    b'id="f" orx:version="3"><!-- c --><orx:meta><orx:instanceID>uuid:1</orx:instanceID>'
    b"</orx:meta><meta><instanceName>second meta</instanceName></meta>tail</data>"
)


def test_local_name_ignores_namespaces():
    root = parse_xml(NS_DOC)
    assert root.tag == "{http://opendatakit.org/submissions}data"
    assert local_name(root) == "data"
    assert [local_name(c) for c in children(root)] == ["meta", "meta"]


def test_find_child_and_find_path_match_local_names_first_match():
    root = parse_xml(NS_DOC)
    assert find_path(root, "meta/instanceID").text == "uuid:1"
    assert find_path(root, "/meta/instanceID/").text == "uuid:1"
    assert find_path(root, "meta/instanceName") is None  # the first <meta> has none
    assert find_path(root, "nothing/here") is None
    assert find_child(root, "missing") is None
    assert len(list(children(root, "meta"))) == 2


def test_get_attr_by_local_name_unprefixed_wins():
    root = parse_xml(NS_DOC)
    assert get_attr(root, "id") == "f"
    assert get_attr(root, "version") == "3"
    assert get_attr(root, "absent") is None
    both = parse_xml(b'<a xmlns:o="urn:o" o:version="p" version="u"/>')
    assert get_attr(both, "version") == "u"


def test_to_bytes_serialises_one_element_without_tail():
    root = parse_xml(b"<a><b x='1'>\xc3\xa9</b>tail</a>")
    assert to_bytes(find_child(root, "b")) == '<b x="1">é</b>'.encode()
    assert to_bytes(root, xml_declaration=True).startswith(b"<?xml")


# --- refused documents ---------------------------------------------------------------------


def test_xxe_file_read_is_refused():
    data = (
        b'<?xml version="1.0"?>\n<!DOCTYPE data [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
        b"<data>&xxe;</data>"
    )
    assert "DOCTYPE" in rejected(data)


def test_parameter_entity_xxe_is_refused():
    data = b'<!DOCTYPE data [<!ENTITY % ext SYSTEM "http://127.0.0.1:1/evil.dtd"> %ext;]><data/>'
    assert "DOCTYPE" in rejected(data)


def test_external_dtd_is_refused():
    assert "DOCTYPE" in rejected(b'<!DOCTYPE data SYSTEM "http://127.0.0.1:1/x.dtd"><data/>')
    assert "DOCTYPE" in rejected(b'<!DOCTYPE data PUBLIC "-//X//Y" "file:///etc/passwd"><data/>')


def test_even_a_harmless_doctype_is_refused():
    assert "DOCTYPE" in rejected(b"<!DOCTYPE data><data/>")


def test_billion_laughs_is_refused_quickly():
    entities = ['<!ENTITY lol0 "lol">']
    entities += [f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10)]
    data = f"<!DOCTYPE lolz [{''.join(entities)}]><lolz>&lol9;</lolz>".encode()
    started = time.perf_counter()
    assert "DOCTYPE" in rejected(data)
    assert time.perf_counter() - started < 1


def test_undeclared_entity_is_malformed():
    assert "malformed" in rejected(b"<a>&xxe;</a>")


def test_deep_nesting_is_refused():
    def nested(depth: int) -> bytes:
        return b"<a>" * depth + b"</a>" * depth

    assert local_name(parse_xml(nested(64))) == "a"
    assert "deeper than 64" in rejected(nested(65))
    assert "deeper than 10" in rejected(nested(11), max_depth=10)
    started = time.perf_counter()
    assert "nesting" in rejected(nested(300))  # libxml2's own limit answers first
    assert "nesting" in rejected(nested(100_000))
    assert time.perf_counter() - started < 2


def test_invalid_utf8_is_refused():
    assert "UTF-8" in rejected(b"<a>\xff\xfe</a>")
    assert "UTF-8" in rejected(b"<a>\xc3</a>")  # truncated sequence
    assert "UTF-8" in rejected(b"<a>\xed\xa0\x80</a>")  # encoded surrogate


def test_other_encodings_are_refused():
    assert "UTF-8" in rejected("<a>é</a>".encode("utf-16"))  # BOM is not UTF-8
    assert "NUL" in rejected("<a>é</a>".encode("utf-16-le"))  # no BOM: NUL bytes
    assert "UTF-8" in rejected(b'<?xml version="1.0" encoding="ISO-8859-1"?><a>x</a>')
    assert "UTF-8" in rejected(b"<?xml version='1.0' encoding='windows-1258'?><a/>")


def test_ascii_declaration_is_accepted():
    assert local_name(parse_xml(b'<?xml version="1.0" encoding="us-ascii"?><a/>')) == "a"


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"   \n",
        b"not xml",
        b"<a>",
        b"<a></b>",
        b"<a/><b/>",
        b"<a x='1' x='2'/>",
        b"<a>\x01</a>",
        b"<1a/>",
        b"<a:b:c/>",
        b"</a>",
    ],
)
def test_malformed_documents_are_refused(data: bytes):
    rejected(data)


def test_size_limit():
    data = b"<a>" + b"x" * 1000 + b"</a>"
    assert local_name(parse_xml(data, max_bytes=len(data))) == "a"
    assert "too large" in rejected(data, max_bytes=len(data) - 1)


# --- property: nothing but XMLRejected ------------------------------------------------------


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_raise_only_xmlrejected(data: bytes):
    try:
        parse_xml(data)
    except XMLRejected:
        pass


_TOKENS = st.sampled_from(
    [
        "<a>",
        "</a>",
        "<b x='1'>",
        "</b>",
        "<c/>",
        "text",
        "&amp;",
        "&x;",
        "&#0;",
        "&#x41;",
        "<!--",
        "-->",
        "<![CDATA[",
        "]]>",
        "<?pi ?>",
        "<!DOCTYPE a>",
        "<!ENTITY e 'v'>",
        "é",
        "\ufeff",
        "\x00",
        "<?xml version='1.0'?>",
        " xmlns='u'",
        ":",
        "\r\n",
        ">",
        '"',
    ]
)


@settings(max_examples=400, deadline=None)
@given(st.lists(_TOKENS, max_size=30), st.integers(min_value=1, max_value=5))
def test_xml_like_soup_raises_only_xmlrejected(tokens: list[str], max_depth: int):
    try:
        root = parse_xml("".join(tokens).encode("utf-8"), max_depth=max_depth)
    except XMLRejected:
        return
    assert local_name(root)


def test_dtd_is_refused_by_the_parser_too_if_the_byte_scan_were_bypassed(monkeypatch, tmp_path):
    import server.xml

    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    monkeypatch.setattr(server.xml, "_reject_cheaply", lambda data, max_bytes: None)
    data = f'<!DOCTYPE d [<!ENTITY x SYSTEM "{secret.as_uri()}">]><d>&x;</d>'.encode()
    with pytest.raises(XMLRejected) as info:
        parse_xml(data)
    assert "TOP-SECRET" not in str(info.value)
