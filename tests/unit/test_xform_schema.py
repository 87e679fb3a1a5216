"""FormSchema from XForms that pyxform builds from markdown XLSForms written in the tests."""

from __future__ import annotations

import functools

import pytest
from pyxform.xls2xform import convert

from server.domain.xform_schema import (
    EntityDecl,
    FormSchema,
    InvalidXForm,
    MediaRef,
    parse_form_schema,
)

HOUSEHOLD_MD = """
| survey |
| | type | name | label | save_to | calculation |
| | start | start | | | |
| | today | today | | | |
| | audit | audit | | | |
| | begin group | g_head | Chủ hộ | | |
| | text | head_name | Họ tên | head_name | |
| | text | head_id | Số định danh | | |
| | end group | | | | |
| | begin group | g_members | Thành viên | | |
| | integer | n_members | Số người | n_members | |
| | begin repeat | members | Người | | |
| | text | m_name | Tên | | |
| | select_multiple skills | m_skills | Kỹ năng | | |
| | begin group | g_age | Tuổi | | |
| | integer | m_birth_year | Năm sinh | | |
| | end group | | | | |
| | begin repeat | phones | Điện thoại | | |
| | text | phone | Số | | |
| | image | phone_photo | Ảnh | | |
| | end repeat | | | | |
| | end repeat | | | | |
| | end group | | | | |
| | geopoint | location | Vị trí | geometry | |
| | image | house_photo | Ảnh nhà | | |
| | decimal | area | Diện tích | | |
| | date | visit | Ngày | | |
| | select_one yn | consent | Đồng ý | consent | |
| | calculate | hh_label | | | concat('Hộ ', ${head_name}) |

| choices |
| | list_name | name | label |
| | skills | call | Gọi |
| | skills | search | Tìm |
| | yn | yes | Có |
| | yn | no | Không |

| settings |
| | form_id | form_title | version | instance_name |
| | household_survey | Khảo sát hộ | 2026060101 | concat(${head_name}, '') |

| entities |
| | list_name | label | create_if |
| | households | ${head_name} | ${consent} = 'yes' |
"""

UPDATE_MD = """
| survey |
| | type | name | label | appearance | save_to |
| | select_one_from_file households.csv | hh | Hộ | autocomplete | |
| | select_one yn | update_status | Cập nhật? | | status |

| choices |
| | list_name | name | label |
| | yn | yes | Có |
| | yn | no | Không |

| settings |
| | form_id | public_key |
| | support_visit | MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA |

| entities |
| | list_name | entity_id | update_if |
| | households | ${hh} | ${update_status} = 'yes' |
"""

MEDIA_MD = """
| survey |
| | type | name | label | image | audio | video | big-image | default | appearance |
| | note | intro | Xin chào | logo.png | hello.mp3 | | poster.jpg | | |
| | select_one fruits | fruit | Quả | | | | | | |
| | select_one_from_file streets.csv | street | Đường | | | | | | |
| | select_multiple_from_file places.xml | places | Nơi | | | | | | |
| | select_one animals | animal | Con vật | | | | | | search('animals', 'matches', 'k', ${fruit}) |
| | image | sketch | Vẽ | | | | | jr://images/blank.png | |
| | text | plain | Chữ | | | clip.mp4 | | | |

| choices |
| | list_name | name | label | media::image |
| | fruits | mango | Xoài | mango.jpg |
| | fruits | lime | Chanh | logo.png |
| | animals | cat | Mèo | |
"""


@functools.cache
def xform(md: str) -> bytes:
    """XForm bytes as pyxform writes them (root element <data>)."""
    return convert(xlsform=md, form_name="data").xform.encode("utf-8")


@functools.cache
def schema_of(md: str) -> FormSchema:
    return parse_form_schema(xform(md))


def test_household_identity_and_flags():
    schema = schema_of(HOUSEHOLD_MD)
    assert schema.form_id == "household_survey"
    assert schema.version == "2026060101"
    assert schema.title == "Khảo sát hộ"
    assert schema.root_name == "data"
    assert schema.encrypted is False
    assert schema.public_key is None
    assert schema.media_references() == ()


def test_fields_in_document_order_with_kinds_and_types():
    got = [(f.path, f.kind, f.type) for f in schema_of(HOUSEHOLD_MD).fields]
    assert got == [
        ("/data/start", "field", "dateTime"),
        ("/data/today", "field", "date"),
        ("/data/g_head", "group", "structure"),
        ("/data/g_head/head_name", "field", "string"),
        ("/data/g_head/head_id", "field", "string"),
        ("/data/g_members", "group", "structure"),
        ("/data/g_members/n_members", "field", "int"),
        ("/data/g_members/members", "repeat", "repeat"),  # the jr:template copy is skipped
        ("/data/g_members/members/m_name", "field", "string"),
        ("/data/g_members/members/m_skills", "field", "string"),
        ("/data/g_members/members/g_age", "group", "structure"),
        ("/data/g_members/members/g_age/m_birth_year", "field", "int"),
        ("/data/g_members/members/phones", "repeat", "repeat"),
        ("/data/g_members/members/phones/phone", "field", "string"),
        ("/data/g_members/members/phones/phone_photo", "field", "binary"),
        ("/data/location", "field", "geopoint"),
        ("/data/house_photo", "field", "binary"),
        ("/data/area", "field", "decimal"),
        ("/data/visit", "field", "date"),
        ("/data/consent", "field", "string"),
        ("/data/hh_label", "field", "string"),
        ("/data/meta", "group", "structure"),
        ("/data/meta/entity", "group", "structure"),
        ("/data/meta/entity/label", "field", "string"),
        ("/data/meta/audit", "field", "binary"),
        ("/data/meta/instanceID", "field", "string"),
        ("/data/meta/instanceName", "field", "string"),
    ]


def test_repeat_group_context_and_table_paths():
    schema = schema_of(HOUSEHOLD_MD)
    year = schema.field("/data/g_members/members/g_age/m_birth_year")
    assert year.name == "m_birth_year"
    assert year.repeat == "/data/g_members/members"
    assert year.group == "/data/g_members/members/g_age"
    assert year.rel_path == "g_members/members/g_age/m_birth_year"
    assert year.table_path == "g_age/m_birth_year"

    phones = schema.field("g_members/members/phones")
    assert phones.is_repeat and not phones.is_group
    assert phones.repeat == "/data/g_members/members"
    assert phones.table_path == "phones"
    members = schema.field("/data/g_members/members")
    assert members.repeat is None and members.group == "/data/g_members"
    assert members.table_path == "g_members/members"

    head = schema.field("g_head/head_name")
    assert head.repeat is None and head.group == "/data/g_head"
    assert head.table_path == "g_head/head_name"
    assert schema.field("/data/g_head").is_group
    assert schema.field("location").group is None
    assert schema.field("nope") is None
    assert [r.path for r in schema.repeats()] == [
        "/data/g_members/members",
        "/data/g_members/members/phones",
    ]


def test_controls_and_select_multiple():
    schema = schema_of(HOUSEHOLD_MD)
    skills = schema.field("g_members/members/m_skills")
    assert skills.control == "select" and skills.select_multiple
    consent = schema.field("consent")
    assert consent.control == "select1" and not consent.select_multiple
    assert schema.field("house_photo").control == "upload"
    assert schema.field("g_head/head_name").control == "input"
    assert schema.field("hh_label").control is None  # calculate: no body control


def test_binary_paths_include_meta_audit():
    assert schema_of(HOUSEHOLD_MD).binary_paths == {
        "/data/g_members/members/phones/phone_photo",
        "/data/house_photo",
        "/data/meta/audit",
    }


def test_entity_create_declaration_and_properties():
    schema = schema_of(HOUSEHOLD_MD)
    assert schema.entity == EntityDecl(
        dataset="households",
        create=True,
        update=False,
        properties={
            "/data/g_head/head_name": "head_name",
            "/data/g_members/n_members": "n_members",
            "/data/location": "geometry",
            "/data/consent": "consent",
        },
        entities_version="2024.1.0",
    )
    assert schema.field("location").saveto == "geometry"
    assert schema.field("area").saveto is None
    hash(schema)  # frozen and hashable despite the properties mapping


def test_update_form_entity_and_encryption():
    schema = schema_of(UPDATE_MD)
    assert schema.version is None
    assert schema.title == "support_visit"
    assert schema.entity.dataset == "households"
    assert (schema.entity.create, schema.entity.update) == (False, True)
    assert schema.entity.properties == {"/data/update_status": "status"}
    assert schema.encrypted is True
    assert schema.public_key == "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA"
    assert schema.media_references() == ("households.csv",)
    assert [f.rel_path for f in schema.fields] == [
        "hh",
        "update_status",
        "meta",
        "meta/entity",
        "meta/instanceID",
    ]


def test_media_references_from_instances_itext_defaults_and_search():
    schema = schema_of(MEDIA_MD)
    assert set(schema.media) == {
        MediaRef("streets.csv", "file"),
        MediaRef("places.xml", "file"),
        MediaRef("logo.png", "image"),
        MediaRef("hello.mp3", "audio"),
        MediaRef("poster.jpg", "image"),
        MediaRef("clip.mp4", "video"),
        MediaRef("mango.jpg", "image"),
        MediaRef("blank.png", "image"),
        MediaRef("animals.csv", "file"),
    }
    names = schema.media_references()
    assert len(names) == len(set(names)) == 9  # logo.png is used twice, listed once
    assert names[:2] == ("streets.csv", "places.xml")  # external instances come first
    assert schema.field("sketch").type == "binary"


HAND_WRITTEN = b"""<?xml version="1.0" encoding="UTF-8"?>
<h:html xmlns="http://www.w3.org/2002/xforms" xmlns:h="http://www.w3.org/1999/xhtml"
        xmlns:jr="http://openrosa.org/javarosa" xmlns:orx="http://openrosa.org/xforms"
        xmlns:xsd="http://www.w3.org/2001/XMLSchema">
  <h:head>
    <model>
      <instance>
        <x:survey xmlns:x="urn:legacy" id="legacy" orx:version="7">
          <name/><grp><kids><kid/></kids></grp><pic/><loose/>
          <orx:meta><orx:instanceID/></orx:meta>
        </x:survey>
      </instance>
      <instance id="cities" src="jr://file-csv/cities.csv"/>
      <instance id="bad" src="jr://file-csv/sub/dir.csv"/>
      <bind nodeset="name" type="xsd:string"/>
      <bind nodeset="/survey/grp/kids/kid" type="xsd:int"/>
      <bind nodeset="/x:survey/pic" type="binary"/>
      <bind nodeset="/survey/grp" relevant="true()"/>
      <bind nodeset="/survey/meta/instanceID" type="string" jr:preload="uid"/>
    </model>
  </h:head>
  <h:body>
    <input ref="/survey/name" query="instance('x')/root/item"/>
    <group ref="/survey/grp">
      <repeat nodeset="kids"><input ref="kid"/></repeat>
    </group>
    <upload ref="/survey/pic" mediatype="image/*"/>
    <select1 ref="/survey/name" appearance="minimal search(&quot;lists.csv&quot;)"/>
  </h:body>
</h:html>"""


def test_hand_written_xform_with_prefixes_relative_refs_and_untyped_leaf():
    schema = parse_form_schema(HAND_WRITTEN)
    assert (schema.form_id, schema.version, schema.title, schema.root_name) == (
        "legacy",
        "7",
        None,
        "survey",
    )
    assert [(f.rel_path, f.kind, f.type, f.control) for f in schema.fields] == [
        ("name", "field", "string", "input"),
        ("grp", "group", "structure", None),
        ("grp/kids", "repeat", "repeat", None),
        ("grp/kids/kid", "field", "int", "input"),
        ("pic", "field", "binary", "upload"),
        ("loose", "field", "unknown", None),
        ("meta", "group", "structure", None),
        ("meta/instanceID", "field", "string", None),
    ]
    assert schema.entity is None
    assert schema.media_references() == ("cities.csv", "itemsets.csv", "lists.csv")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "Not a readable XForm"),
        (b"<h:html xmlns:h='x'><h:head>", "Not a readable XForm"),
        (b"<!DOCTYPE html><html/>", "DOCTYPE"),
        (b"<form/>", "root element must be <h:html>"),
        (b"<html><head/></html>", "<model> is missing"),
        (b"<html><head><model/></head></html>", "primary <instance>"),
        (b"<html><head><model><instance/></model></head></html>", "primary <instance>"),
        (b"<html><head><model><instance><data/></instance></model></head></html>", "form id"),
        (
            b"<html><head><model><instance><data id=' '/></instance></model></head></html>",
            "form id",
        ),
        (
            b"<html><head><model><instance><data id='f.xml'/></instance></model></head></html>",
            "must not end in",
        ),
        (
            b"<html><head><model><instance><data id='f'><meta><entity/></meta></data></instance>"
            b"</model></head></html>",
            "no dataset",
        ),
        (
            b"<html xmlns:e='http://www.opendatakit.org/xforms/entities'><head><model><instance>"
            b"<data id='f'><a/></data></instance><bind nodeset='/data/a' type='string' "
            b"e:saveto='p'/></model></head></html>",
            "declares no entity",
        ),
    ],
)
def test_invalid_xforms_raise_value_error_with_a_clear_message(data: bytes, message: str):
    with pytest.raises(ValueError, match=message) as info:
        parse_form_schema(data)
    assert isinstance(info.value, InvalidXForm)


def test_minimal_form_without_body():
    schema = parse_form_schema(
        b"<html><head><title> T </title><model><instance><d id='f' version=''><a/></d>"
        b"</instance></model></head></html>"
    )
    assert (schema.title, schema.version) == ("T", "")
    assert [(f.path, f.type) for f in schema.fields] == [("/d/a", "unknown")]
