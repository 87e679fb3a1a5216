"""Submission parsing: envelope, attachments, Central-layout field values, identity blanking."""

from __future__ import annotations

import json
import unicodedata
from xml.sax.saxutils import escape

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.domain.instance import (
    EntityAction,
    Envelope,
    InvalidSubmission,
    blank_identity_number,
    envelope_of,
    parse_fields,
    read_envelope,
    referenced_attachments,
)
from server.xml import XMLRejected, parse_xml
from tests.unit.test_xform_schema import HOUSEHOLD_MD, UPDATE_MD, schema_of

IID = "uuid:4b6a7d0e-2f0c-4c5e-9f39-6a1f0a3c2b11"
EID = "6f1c2a3b-1d2e-4f50-8a9b-0c1d2e3f4a5b"

# As Collect writes it: one line, default namespace-less elements, jr/orx declared on the root.
HH = (
    "<?xml version='1.0' encoding='UTF-8' ?>"
    '<data xmlns:jr="http://openrosa.org/javarosa" xmlns:orx="http://openrosa.org/xforms" '
    'id="household_survey" version="2026060101">'
    "<start>2026-06-15T10:00:00.000+07:00</start><today>2026-06-15</today>"
    "<g_head><head_name>Nguyễn Thị Ánh</head_name><head_id>001 186 012345</head_id></g_head>"
    "<g_members><n_members>2</n_members>"
    "<members><m_name>Ánh</m_name><m_skills>call search</m_skills>"
    "<g_age><m_birth_year>1986</m_birth_year></g_age>"
    "<phones><phone>0912345678</phone><phone_photo>p1.jpg</phone_photo></phones>"
    "<phones><phone>0987654321</phone><phone_photo/></phones></members>"
    "<members><m_name>Bình</m_name><m_skills/><g_age><m_birth_year>2010</m_birth_year></g_age>"
    "<phones><phone>0911111111</phone><phone_photo>p3.jpg</phone_photo></phones></members>"
    "</g_members>"
    "<location>21.8 105.2 -3.2 4.5</location><house_photo>1718420000000.jpg</house_photo>"
    "<area>12.5</area><visit>2026-06-15</visit><consent>yes</consent>"
    "<hh_label>Hộ Nguyễn Thị Ánh</hh_label>"
    f'<meta><entity dataset="households" create="1" id="{EID}"><label>Nguyễn Thị Ánh</label>'
    f"</entity><audit>audit.csv</audit><instanceID>{IID}</instanceID>"
    "<instanceName>Nguyễn Thị Ánh</instanceName></meta></data>"
).encode()


def hh_schema():
    return schema_of(HOUSEHOLD_MD)


# --- envelope ------------------------------------------------------------------------------


def test_envelope_of_a_collect_submission():
    env = read_envelope(HH)
    assert env == Envelope(
        form_id="household_survey",
        version="2026060101",
        instance_id=IID,
        deprecated_id=None,
        instance_name="Nguyễn Thị Ánh",
        encrypted=False,
        entity=EntityAction(
            dataset="households", id=EID, create=True, update=False, label="Nguyễn Thị Ánh"
        ),
    )


def test_namespace_prefixed_instance_matches_by_local_name():
    data = (
        b'<d:data xmlns:d="http://example.org/legacy" xmlns:orx="http://openrosa.org/xforms" '
        b'd:id="f" orx:version="v2">'
        b"<orx:meta><orx:instanceID> uuid:1 </orx:instanceID>"
        b"<orx:deprecatedID>uuid:0</orx:deprecatedID></orx:meta></d:data>"
    )
    env = read_envelope(data)
    assert (env.form_id, env.version, env.instance_id, env.deprecated_id) == (
        "f",
        "v2",
        "uuid:1",
        "uuid:0",
    )
    default_ns = (
        b'<data id="f"><meta xmlns="http://openrosa.org/xforms">'
        b"<instanceID>uuid:2</instanceID></meta></data>"
    )
    assert read_envelope(default_ns).instance_id == "uuid:2"


def test_edit_carries_deprecated_id():
    edit = HH.replace(
        f"<instanceID>{IID}</instanceID>".encode(),
        b"<instanceID>uuid:new</instanceID><deprecatedID>" + IID.encode() + b"</deprecatedID>",
    )
    env = read_envelope(edit)
    assert (env.instance_id, env.deprecated_id) == ("uuid:new", IID)


def test_missing_instance_id_is_none_and_root_level_instance_id_is_the_fallback():
    assert read_envelope(b'<data id="f"><a>1</a></data>').instance_id is None
    assert (
        read_envelope(b'<data id="f"><meta><instanceID> </instanceID></meta></data>').instance_id
        is None
    )
    assert (
        read_envelope(b'<data id="f"><instanceID>uuid:r</instanceID></data>').instance_id
        == "uuid:r"
    )
    both = b'<data id="f"><instanceID>uuid:r</instanceID><meta><instanceID>uuid:m</instanceID>'
    assert read_envelope(both + b"</meta></data>").instance_id == "uuid:m"


def test_version_absent_is_none():
    env = read_envelope(b'<data id="f"/>')
    assert env.version is None and env.entity is None and env.media_files == ()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"<data><meta><instanceID>uuid:1</instanceID></meta></data>", "no form id"),
        (b'<data id="  "/>', "no form id"),
        (b"<data id='f'>", "malformed"),
        (b"<!DOCTYPE d><data id='f'/>", "DOCTYPE"),
        (b"\xff<data id='f'/>", "UTF-8"),
        (
            b'<data id="f" encrypted="yes"><encryptedXmlFile>s.enc</encryptedXmlFile></data>',
            "encrypted submission has no instanceID",
        ),
    ],
)
def test_unacceptable_submissions(data: bytes, message: str):
    with pytest.raises(InvalidSubmission, match=message):
        read_envelope(data)


ENCRYPTED = (
    b'<data xmlns="http://opendatakit.org/submissions" id="support_visit" version="3" '
    b'encrypted="yes"><base64EncryptedKey>S2V5</base64EncryptedKey>'
    b'<orx:meta xmlns:orx="http://openrosa.org/xforms"><orx:instanceID>uuid:e1</orx:instanceID>'
    b"</orx:meta><media><file>1718.jpg.enc</file></media><media><file>audit.csv.enc</file>"
    b"</media><encryptedXmlFile>submission.xml.enc</encryptedXmlFile>"
    b"<base64EncryptedElementSignature>U2ln</base64EncryptedElementSignature></data>"
)


def test_encrypted_envelope():
    env = read_envelope(ENCRYPTED)
    assert env.encrypted is True
    assert (env.form_id, env.version, env.instance_id) == ("support_visit", "3", "uuid:e1")
    assert env.encrypted_xml_file == "submission.xml.enc"
    assert env.media_files == ("1718.jpg.enc", "audit.csv.enc")
    assert (env.base64_encrypted_key, env.encrypted_signature) == ("S2V5", "U2ln")


def test_encrypted_attribute_must_say_yes():
    env = read_envelope(b'<data id="f" encrypted="no"><media><file>x</file></media></data>')
    assert env.encrypted is False and env.media_files == ()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1", True),
        ("true", True),
        (" 1 ", True),
        ("0", False),
        ("false", False),
        ("", False),
        ("yes", False),
        ("TRUE", False),
    ],
)
def test_entity_booleans(value: str, expected: bool):
    data = f'<data id="f"><meta><entity dataset="d" id="i" create="{value}" update="{value}"/>'
    entity = read_envelope((data + "</meta></data>").encode()).entity
    assert (entity.create, entity.update) == (expected, expected)


def test_entity_update_with_versions_and_no_label():
    data = (
        b'<data id="support_visit"><meta><entity dataset="households" update="1" '
        b'baseVersion="3" trunkVersion="2" branchId="b-1" id=" ' + EID.encode() + b' "/>'
        b"<instanceID>uuid:s</instanceID></meta></data>"
    )
    assert read_envelope(data).entity == EntityAction(
        dataset="households",
        id=EID,
        create=False,
        update=True,
        base_version="3",
        trunk_version="2",
        branch_id="b-1",
        label=None,
    )
    blank = b'<data id="f"><meta><entity dataset="d" baseVersion="" id=""><label/></entity>'
    entity = read_envelope(blank + b"</meta></data>").entity
    assert (entity.id, entity.base_version, entity.label) == (None, None, "")


# --- attachments ---------------------------------------------------------------------------


def test_referenced_attachments_of_a_plain_submission():
    root = parse_xml(HH)
    names = referenced_attachments(hh_schema(), root, envelope_of(root))
    assert names == {"p1.jpg", "p3.jpg", "1718420000000.jpg", "audit.csv"}


def test_attachment_values_are_reduced_to_base_names_and_non_binary_fields_ignored():
    data = (
        HH.replace(b"p1.jpg", b"../../etc/passwd")
        .replace(b"p3.jpg", b"..")
        .replace(b"<area>12.5</area>", b"<area>x.jpg</area>")
    )
    root = parse_xml(data)
    names = referenced_attachments(hh_schema(), root, envelope_of(root))
    assert names == {"passwd", "1718420000000.jpg", "audit.csv"}


def test_plain_submission_needs_the_schema():
    root = parse_xml(HH)
    with pytest.raises(ValueError, match="schema"):
        referenced_attachments(None, root, envelope_of(root))


def test_referenced_attachments_of_an_encrypted_submission():
    root = parse_xml(ENCRYPTED)
    expected = {"1718.jpg.enc", "audit.csv.enc", "submission.xml.enc"}
    assert referenced_attachments(None, root, envelope_of(root)) == expected
    assert referenced_attachments(schema_of(UPDATE_MD), root, envelope_of(root)) == expected


# --- field values --------------------------------------------------------------------------

M1, M2 = f"{IID}/g_members/members[1]", f"{IID}/g_members/members[2]"


def test_parse_fields_builds_central_rows_and_keys():
    got = parse_fields(hh_schema(), parse_xml(HH), IID)
    assert got == {
        "key": IID,
        "root": {
            "start": "2026-06-15T10:00:00.000+07:00",
            "today": "2026-06-15",
            "g_head/head_name": "Nguyễn Thị Ánh",
            "g_head/head_id": "001 186 012345",
            "g_members/n_members": "2",
            "location": "21.8 105.2 -3.2 4.5",
            "house_photo": "1718420000000.jpg",
            "area": "12.5",
            "visit": "2026-06-15",
            "consent": "yes",
            "hh_label": "Hộ Nguyễn Thị Ánh",
            "meta/entity/label": "Nguyễn Thị Ánh",
            "meta/audit": "audit.csv",
            "meta/instanceID": IID,
            "meta/instanceName": "Nguyễn Thị Ánh",
        },
        "repeats": {
            "g_members/members": [
                {
                    "key": M1,
                    "parent_key": IID,
                    "values": {
                        "m_name": "Ánh",
                        "m_skills": "call search",
                        "g_age/m_birth_year": "1986",
                    },
                },
                {
                    "key": M2,
                    "parent_key": IID,
                    "values": {"m_name": "Bình", "m_skills": "", "g_age/m_birth_year": "2010"},
                },
            ],
            "g_members/members/phones": [
                {
                    "key": f"{M1}/phones[1]",
                    "parent_key": M1,
                    "values": {"phone": "0912345678", "phone_photo": "p1.jpg"},
                },
                {
                    "key": f"{M1}/phones[2]",
                    "parent_key": M1,
                    "values": {"phone": "0987654321", "phone_photo": ""},
                },
                {
                    "key": f"{M2}/phones[1]",
                    "parent_key": M2,
                    "values": {"phone": "0911111111", "phone_photo": "p3.jpg"},
                },
            ],
        },
    }
    assert json.loads(json.dumps(got)) == got
    assert list(got["root"]) == [
        f.rel_path for f in hh_schema().fields if f.kind == "field" and f.repeat is None
    ]


def test_missing_groups_and_repeats_give_empty_values_and_no_rows():
    data = (
        b'<data id="household_survey" version="2026060101"><consent>no</consent>'
        b"<meta><instanceID>uuid:x</instanceID></meta></data>"
    )
    got = parse_fields(hh_schema(), parse_xml(data), "uuid:x")
    assert got["root"]["g_head/head_name"] == ""
    assert got["root"]["g_members/n_members"] == ""
    assert got["root"]["consent"] == "no"
    assert got["repeats"] == {"g_members/members": [], "g_members/members/phones": []}


def test_unknown_elements_are_ignored_with_their_children_and_prefixes_do_not_matter():
    data = (
        b'<h:data xmlns:h="urn:x" id="household_survey"><h:extra><h:consent>no</h:consent>'
        b"</h:extra><h:consent>yes</h:consent><h:g_members><h:members><h:m_name>A &amp; B"
        b"</h:m_name><h:junk>1</h:junk></h:members></h:g_members></h:data>"
    )
    got = parse_fields(hh_schema(), parse_xml(data), "uuid:generated")
    assert got["root"]["consent"] == "yes"
    assert got["repeats"]["g_members/members"] == [
        {
            "key": "uuid:generated/g_members/members[1]",
            "parent_key": "uuid:generated",
            "values": {"m_name": "A & B", "m_skills": "", "g_age/m_birth_year": ""},
        }
    ]


def test_top_level_repeat_keys_have_no_group_part():
    schema = schema_of(
        """
| survey |
| | type | name | label |
| | begin repeat | child | Con |
| | text | name | Tên |
| | begin repeat | toy | Đồ chơi |
| | text | toy_name | Tên |
| | end repeat | | |
| | end repeat | | |
"""
    )
    data = (
        b'<data id="data"><child><name>Billy</name><toy><toy_name>a</toy_name></toy>'
        b"<toy><toy_name>b</toy_name></toy></child><child><name>Kim</name></child>"
        b"<meta><instanceID>two</instanceID></meta></data>"
    )
    got = parse_fields(schema, parse_xml(data), "two")
    assert [(r["key"], r["parent_key"]) for r in got["repeats"]["child"]] == [
        ("two/child[1]", "two"),
        ("two/child[2]", "two"),
    ]
    assert [(r["key"], r["parent_key"], r["values"]) for r in got["repeats"]["child/toy"]] == [
        ("two/child[1]/toy[1]", "two/child[1]", {"toy_name": "a"}),
        ("two/child[1]/toy[2]", "two/child[1]", {"toy_name": "b"}),
    ]


# --- identity number -----------------------------------------------------------------------


def test_blank_identity_number_changes_only_that_element():
    new, digits = blank_identity_number(HH)
    assert digits == "001186012345"
    assert new == HH.replace(b"<head_id>001 186 012345</head_id>", b"<head_id></head_id>")
    assert parse_fields(hh_schema(), parse_xml(new), IID)["root"]["g_head/head_id"] == ""


def test_blank_identity_number_with_prefixes_attributes_cdata_references_and_comments():
    data = (
        "<?xml version='1.0'?>\r\n<!-- <g_head><head_id>999</head_id></g_head> -->"
        '<x:data xmlns:x="urn:x" id="f"><x:g_head a=">/" b=\'"\'>\r\n'
        '<x:head_id note="1>2">0&#49;2<![CDATA[ 345]]><!-- c -->-67８</x:head_id>'
        "<x:head_name>Đặng</x:head_name></x:g_head></x:data>"
    ).encode()
    new, digits = blank_identity_number(data)
    assert digits == "012345678"  # full-width digits are normalised
    assert new == data.replace("0&#49;2<![CDATA[ 345]]><!-- c -->-67８".encode(), b"")


def test_blank_identity_number_when_absent_or_already_empty():
    for data in (
        b'<data id="f"><g_head/></data>',
        b'<data id="f"><g_head><head_id/></g_head></data>',
        b'<data id="f"><g_head><head_id></head_id></g_head></data>',
    ):
        assert blank_identity_number(data) == (data, None)


def test_blank_identity_number_without_digits_still_blanks():
    data = b'<data id="f"><g_head><head_id>kh\xc3\xb4ng c\xc3\xb3</head_id></g_head></data>'
    assert blank_identity_number(data) == (
        b'<data id="f"><g_head><head_id></head_id></g_head></data>',
        None,
    )


def test_blank_identity_number_blanks_every_occurrence_and_takes_a_generic_path():
    data = (
        b'<data id="f"><g><id>1</id></g><g><id><b>2</b>3</id></g><g><id/></g>'
        b"<other><g><id>4</id></g></other></data>"
    )
    new, digits = blank_identity_number(data, ("g", "id"))
    assert digits == "1"
    assert new == (
        b'<data id="f"><g><id></id></g><g><id></id></g><g><id/></g>'
        b"<other><g><id>4</id></g></other></data>"
    )
    assert blank_identity_number(data, "g/id") == (new, digits)


def test_blank_identity_number_refuses_bad_xml():
    with pytest.raises(XMLRejected):
        blank_identity_number(b"<!DOCTYPE d><data><g_head><head_id>1</head_id></g_head></data>")


_XML_TEXT = st.text(
    st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\ufffe\uffff")
    | st.sampled_from("\n\t0123456789<>&'\""),
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(text=_XML_TEXT, before=_XML_TEXT, after=_XML_TEXT)
def test_blanking_is_byte_exact_for_any_content(text: str, before: str, after: str):
    prefix = f'<data id="f"><g_head><head_name>{escape(before)}</head_name>'
    suffix = f"</g_head><notes>{escape(after)}</notes></data>"
    data = (prefix + f"<head_id>{escape(text)}</head_id>" + suffix).encode()
    new, digits = blank_identity_number(data)
    if text:
        assert new == (prefix + "<head_id></head_id>" + suffix).encode()
    else:
        assert new == data
    expected = "".join(c for c in unicodedata.normalize("NFKC", text) if c in "0123456789")
    assert digits == (expected or None)
