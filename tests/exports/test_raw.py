"""Raw submission exports in ODK Central's CSV layout, fed by Collect-like uploads."""

from __future__ import annotations

import csv
import inspect
import io
import re
import uuid
import zipfile
from datetime import UTC, date, datetime

import pytest
from lxml import etree
from sqlalchemy import update

from server.db.models import Submission, User
from server.domain.forms import get_form
from server.exports.raw import RawFilters, raw_count, raw_tables, write_zip
from server.exports.tables import csv_chunks, write_csv
from tests.openrosa.conftest import publish, rows, xform_from_md
from tests.support.collect import Collect, FlaskTransport
from tests.support.factories import PASSWORD, make_ward

FORM_MD = """
| survey   |                    |           |              |
|          | type               | name      | label        |
|          | begin_group        | g_info    | Info         |
|          | select_one tdp     | tdp       | Tổ           |
|          | text               | hh_name   | Name         |
|          | geopoint           | location  | Location     |
|          | end_group          |           |              |
|          | select_multiple sv | services  | Services     |
|          | image              | photo     | Photo        |
|          | note               | intro     | Xin chào     |
|          | begin_group        | g_members | Members      |
|          | begin_repeat       | members   | Member       |
|          | text               | m_name    | Name         |
|          | begin_group        | g_m       | More         |
|          | integer            | m_age     | Age          |
|          | end_group          |           |              |
|          | begin_repeat       | toys      | Toys         |
|          | text               | toy       | Toy          |
|          | select_multiple sv | toy_sv    | Toy services |
|          | end_repeat         |           |              |
|          | end_repeat         |           |              |
|          | end_group          |           |              |
| choices  |                    |           |              |
|          | list_name          | name      | label        |
|          | tdp                | tdp01     | Tổ 1         |
|          | tdp                | tdp02     | Tổ 2         |
|          | sv                 | a         | A            |
|          | sv                 | b         | B            |
|          | sv                 | c         | C            |
|          | sv                 | d         | D            |
| settings |                    |           |              |
|          | form_id            | version   | form_title   |
|          | raw_form           | 1         | Raw form     |
"""
# Version 2 adds a field in the info group.
FORM_V2_MD = FORM_MD.replace(
    "|          | geopoint           | location  | Location     |\n",
    "|          | geopoint           | location  | Location     |\n"
    "|          | text               | phone     | Phone        |\n",
).replace("| raw_form           | 1  ", "| raw_form           | 2  ")

ROOT_TAIL = ["KEY", "SubmitterID", "SubmitterName", "AttachmentsPresent", "AttachmentsExpected",
             "Status", "ReviewState", "DeviceID", "Edits", "FormVersion"]
ROOT_HEADER = ["SubmissionDate", "g_info-tdp", "g_info-hh_name", "g_info-location-Latitude",
               "g_info-location-Longitude", "g_info-location-Altitude",
               "g_info-location-Accuracy", "services", "photo", "intro", "meta-instanceID",
               *ROOT_TAIL]
PHOTO = b"\xff\xd8\xff\xe0 first photo " * 40
OTHER_PHOTO = b"\xff\xd8\xff\xe0 another photo " * 40


# --- set-up ----------------------------------------------------------------------------------


@pytest.fixture
def ward(app):
    return make_ward(app, forms=False)


@pytest.fixture
def form_xml(app, ward):
    xml = xform_from_md(FORM_MD)
    publish(app, xml)
    return xml


@pytest.fixture
def collect(app, ward):
    return Collect(f"http://localhost/v1/key/{ward.token}/projects/{ward.project_id}",
                   FlaskTransport(app))


@pytest.fixture
def supervisor(app, ward):
    return Collect(f"http://localhost/v1/projects/{ward.project_id}", FlaskTransport(app),
                   username="sup1", password=PASSWORD, device_id="collect:SUPERVISOR")


def instance(values=None, members=(), *, iid=None, deprecated=None, version="1",
             form_id="raw_form") -> tuple[bytes, str]:
    """Submission XML as Collect writes it. members: (name, age, [(toy, toy_sv), ...])."""
    iid = iid or f"uuid:{uuid.uuid4()}"
    root = etree.Element("data", id=form_id, version=version)

    def child(parent, name, text=None):
        el = parent.find(name)
        if el is None:
            el = etree.SubElement(parent, name)
        if text is not None:
            el.text = text
        return el

    for path in ("g_info/tdp", "g_info/hh_name", "g_info/location", "services", "photo",
                 "intro"):
        node = root
        for part in path.split("/"):
            node = child(node, part)
    for path, value in {"g_info/tdp": "tdp01", **(values or {})}.items():
        node = root
        for part in path.split("/"):
            node = child(node, part)
        node.text = value
    group = child(root, "g_members")
    for name, age, toys in members:
        member = etree.SubElement(group, "members")
        child(member, "m_name", name)
        child(child(member, "g_m"), "m_age", age)
        for toy, toy_sv in toys:
            row = etree.SubElement(member, "toys")
            child(row, "toy", toy)
            child(row, "toy_sv", toy_sv)
    meta = child(root, "meta")
    child(meta, "instanceID", iid)
    if deprecated:
        child(meta, "deprecatedID", deprecated)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8"), iid


def send(client, values=None, members=(), attachments=None, **kw) -> str:
    xml, iid = instance(values, members, **kw)
    [response] = client.submit(xml, attachments or {})
    assert response.status == 201, response.text
    return iid


def user_id(app, username: str) -> int:
    [user] = rows(app, User, User.username == username)
    return user.id


def set_submission(app, iid: str, **values) -> None:
    session = app.extensions["db"].session(write=True)
    try:
        session.execute(update(Submission).where(Submission.instance_id == iid).values(**values))
        session.commit()
    finally:
        session.close()


class Export:
    """An open read session and the raw_form, for the duration of a `with`."""

    def __init__(self, app, form_id="raw_form"):
        self.app, self.form_id = app, form_id

    def __enter__(self):
        self.session = self.app.extensions["db"].session()
        self.form = get_form(self.session, 1, self.form_id)
        return self

    def __exit__(self, *exc):
        self.session.close()

    def tables(self, **kw):
        return raw_tables(self.session, self.form, **kw)


def export(app, form_id="raw_form", **kw) -> dict[str, list[list[str]]]:
    """Every table parsed back with the csv module: {name: [header, *rows]}."""
    with Export(app, form_id) as ex:
        return {t.name: list(csv.reader(io.StringIO("".join(csv_chunks(t, bom=False)),
                                                    newline="")))
                for t in ex.tables(**kw)}


def as_dicts(table: list[list[str]]) -> list[dict[str, str]]:
    header, *body = table
    return [dict(zip(header, row, strict=True)) for row in body]


# --- layout ----------------------------------------------------------------------------------


def test_headers_and_table_names_with_and_without_group_paths(app, form_xml):
    tables = export(app)
    assert list(tables) == ["raw_form", "raw_form-members", "raw_form-toys"]
    assert tables["raw_form"] == [ROOT_HEADER]
    assert tables["raw_form-members"] == [["m_name", "g_m-m_age", "PARENT_KEY", "KEY"]]
    assert tables["raw_form-toys"] == [["toy", "toy_sv", "PARENT_KEY", "KEY"]]

    bare = export(app, group_paths=False)
    assert bare["raw_form"] == [[
        "SubmissionDate", "tdp", "hh_name", "location-Latitude", "location-Longitude",
        "location-Altitude", "location-Accuracy", "services", "photo", "intro", "instanceID",
        *ROOT_TAIL]]
    assert bare["raw_form-members"] == [["m_name", "m_age", "PARENT_KEY", "KEY"]]


def test_repeated_repeat_names_get_numbered_in_depth_first_order(app, ward):
    # pyxform refuses two repeats with one name; hand-written XForms (and Central) allow it
    xml = xform_from_md("""
| survey   |              |         |       |
|          | type         | name    | label |
|          | begin_group  | g_a     | A     |
|          | begin_repeat | items   | Items |
|          | text         | x       | X     |
|          | end_repeat   |         |       |
|          | end_group    |         |       |
|          | begin_repeat | other   | Other |
|          | text         | y       | Y     |
|          | end_repeat   |         |       |
|          | begin_group  | g_b     | B     |
|          | begin_repeat | items_b | Items |
|          | text         | z       | Z     |
|          | end_repeat   |         |       |
|          | end_group    |         |       |
| settings |              |         |       |
|          | form_id      |         |       |
|          | twins        |         |       |
""")
    publish(app, xml.replace(b"items_b", b"items"))
    tables = export(app, "twins")
    assert list(tables) == ["twins", "twins-items~1", "twins-other", "twins-items~2"]
    assert tables["twins-items~1"][0] == ["x", "PARENT_KEY", "KEY"]
    assert tables["twins-items~2"][0] == ["z", "PARENT_KEY", "KEY"]


def test_values_keys_geopoint_and_metadata(app, form_xml, collect):
    iid = send(collect, {"g_info/hh_name": "Nguyễn Văn Hùng",
                         "g_info/location": "10.762622 106.660172 -3.2 4.5",
                         "services": "a c", "photo": "photo.jpg"},
               [("Lan", "34", [("bóng", "a"), ("xe", "")]), ("Minh", "5", [])],
               attachments={"photo.jpg": PHOTO})
    [sub] = rows(app, Submission)
    tables = export(app)
    [root] = as_dicts(tables["raw_form"])
    assert root == {
        "SubmissionDate": sub.created_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.")
        + f"{sub.created_at.microsecond // 1000:03d}Z",
        "g_info-tdp": "tdp01", "g_info-hh_name": "Nguyễn Văn Hùng",
        "g_info-location-Latitude": "10.762622", "g_info-location-Longitude": "106.660172",
        "g_info-location-Altitude": "-3.2", "g_info-location-Accuracy": "4.5",
        "services": "a c", "photo": "photo.jpg", "intro": "", "meta-instanceID": iid,
        "KEY": iid, "SubmitterID": str(user_id(app, "vol1")), "SubmitterName": "Hà Thị Thu",
        "AttachmentsPresent": "1", "AttachmentsExpected": "1", "Status": "",
        "ReviewState": "", "DeviceID": "collect:ABCDEFGHIJKLMNOP", "Edits": "0",
        "FormVersion": "1",
    }
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", root["SubmissionDate"])
    assert tables["raw_form-members"][1:] == [
        ["Lan", "34", iid, f"{iid}/g_members/members[1]"],
        ["Minh", "5", iid, f"{iid}/g_members/members[2]"],
    ]
    assert tables["raw_form-toys"][1:] == [
        ["bóng", "a", f"{iid}/g_members/members[1]", f"{iid}/g_members/members[1]/toys[1]"],
        ["xe", "", f"{iid}/g_members/members[1]", f"{iid}/g_members/members[1]/toys[2]"],
    ]
    # the negative altitude is a number: no quote in front of it
    with Export(app) as ex:
        text = "".join(csv_chunks(ex.tables()[0]))
    assert ",-3.2,4.5," in text and "'-3.2" not in text


def test_missing_geopoint_parts_and_missing_attachment(app, form_xml, collect):
    send(collect, {"g_info/location": "10.5 106.5", "photo": "later.jpg"})
    [root] = as_dicts(export(app)["raw_form"])
    assert [root[f"g_info-location-{p}"] for p in ("Latitude", "Longitude", "Altitude",
                                                   "Accuracy")] == ["10.5", "106.5", "", ""]
    assert (root["AttachmentsPresent"], root["AttachmentsExpected"]) == ("0", "1")


def test_split_select_multiples_uses_only_values_seen_in_filtered_rows(app, form_xml, collect):
    first = send(collect, {"services": "c a"}, [("Lan", "3", [("xe", "b d")])])
    send(collect, {"services": "c", "g_info/tdp": "tdp02"}, [("Hoa", "4", [("bi", "")])])
    plain = export(app)
    assert "services/a" not in plain["raw_form"][0]

    tables = export(app, split_select_multiples=True)
    header = tables["raw_form"][0]
    at = header.index("services")
    assert header[at:at + 3] == ["services", "services/a", "services/c"]
    assert header[at + 3] == "photo"  # b and d were never chosen at the root
    rows_ = as_dicts(tables["raw_form"])
    assert [(r["services/a"], r["services/c"]) for r in rows_] == [("1", "1"), ("0", "1")]
    assert tables["raw_form-toys"][0] == ["toy", "toy_sv", "toy_sv/b", "toy_sv/d",
                                          "PARENT_KEY", "KEY"]
    assert [r[:4] for r in tables["raw_form-toys"][1:]] == [["xe", "b d", "1", "1"],
                                                            ["bi", "", "0", "0"]]

    only_second = export(app, split_select_multiples=True, filters=RawFilters(tdp="tdp02"))
    assert [h for h in only_second["raw_form"][0] if "/" in h] == ["services/c"]
    assert only_second["raw_form-toys"][0] == ["toy", "toy_sv", "PARENT_KEY", "KEY"]
    assert first not in str(only_second)


TRICKY = {
    "viet": "Nguyễn Thị Ánh Tuyết, tổ 3",
    "quotes": 'Nhà "số 5", ngõ 12',
    "newline": "dòng một\ndòng hai, có dấu phẩy",
    "formula": '=HYPERLINK("http://x","bấm")',
    "plus": "+84912345678",
    "at": "@SUM(A1)",
    "dash_text": "-chữ",
    "negative": "-12.5",
}


def test_root_csv_parses_back_to_the_submitted_values(app, form_xml, collect, tmp_path):
    for value in TRICKY.values():
        send(collect, {"g_info/hh_name": value})
    with Export(app) as ex:
        root = ex.tables()[0]
        write_csv(root, tmp_path / "root.csv")
        write_csv(root, tmp_path / "nobom.csv", bom=False)
    data = (tmp_path / "root.csv").read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    assert not (tmp_path / "nobom.csv").read_bytes().startswith(b"\xef\xbb\xbf")
    with (tmp_path / "root.csv").open(encoding="utf-8-sig", newline="") as fh:
        parsed = [r["g_info-hh_name"] for r in csv.DictReader(fh)]
    expected = [("'" + v) if k in ("formula", "plus", "at", "dash_text") else v
                for k, v in TRICKY.items()]
    assert parsed == expected


def test_edited_submission_appears_once_with_latest_values(app, form_xml, collect):
    first = send(collect, {"g_info/hh_name": "Cũ"}, [("A", "1", []), ("B", "2", [])])
    edit = send(collect, {"g_info/hh_name": "Mới"}, [("C", "3", [("xe", "")])],
                deprecated=first)
    tables = export(app)
    [root] = as_dicts(tables["raw_form"])
    assert root["g_info-hh_name"] == "Mới"
    assert (root["KEY"], root["meta-instanceID"]) == (first, edit)
    assert (root["Edits"], root["ReviewState"]) == ("1", "edited")
    assert tables["raw_form-members"][1:] == [["C", "3", first, f"{first}/g_members/members[1]"]]
    assert tables["raw_form-toys"][1:] == [
        ["xe", "", f"{first}/g_members/members[1]", f"{first}/g_members/members[1]/toys[1]"]]

    set_submission(app, first, review_state="approved")
    [root] = as_dicts(export(app)["raw_form"])
    assert (root["Edits"], root["ReviewState"]) == ("1", "approved")


def test_review_states_use_centrals_words(app, form_xml, collect):
    ids = [send(collect) for _ in range(4)]
    for iid, state in zip(ids, ("received", "has_issues", "approved", "rejected"), strict=True):
        set_submission(app, iid, review_state=state)
    states = [r["ReviewState"] for r in as_dicts(export(app)["raw_form"])]
    assert states == ["", "hasIssues", "approved", "rejected"]


def test_older_version_rows_fill_the_columns_they_have(app, form_xml, collect):
    old = send(collect, {"g_info/hh_name": "v1"})
    publish(app, xform_from_md(FORM_V2_MD))
    new = send(collect, {"g_info/hh_name": "v2", "g_info/phone": "0912345678"}, version="2")
    tables = export(app)
    assert tables["raw_form"][0][:5] == ["SubmissionDate", "g_info-tdp", "g_info-hh_name",
                                         "g_info-location-Latitude", "g_info-location-Longitude"]
    assert "g_info-phone" in tables["raw_form"][0]
    got = {r["KEY"]: (r["g_info-hh_name"], r["g_info-phone"], r["FormVersion"])
           for r in as_dicts(tables["raw_form"])}
    assert got == {old: ("v1", "", "1"), new: ("v2", "0912345678", "2")}


def test_encrypted_submission_is_not_decrypted_and_has_no_field_values(app, form_xml, collect):
    send(collect, {"services": "a"}, [("Lan", "3", [])])
    iid = f"uuid:{uuid.uuid4()}"
    envelope = (
        '<data xmlns="http://opendatakit.org/submissions" id="raw_form" version="1" '
        'encrypted="yes"><base64EncryptedKey>a2V5</base64EncryptedKey>'
        '<meta xmlns="http://openrosa.org/xforms"><instanceID>' + iid + '</instanceID></meta>'
        '<encryptedXmlFile>submission.xml.enc</encryptedXmlFile></data>').encode()
    [response] = collect.submit(envelope, {"submission.xml.enc": b"\x01cipher"},
                                xml_filename="submission.xml")
    assert response.status == 201
    tables = export(app, split_select_multiples=True)
    enc = as_dicts(tables["raw_form"])[1]
    assert enc["KEY"] == iid and enc["Status"] == "not decrypted"
    assert enc["AttachmentsPresent"] == enc["AttachmentsExpected"] == "1"
    header = tables["raw_form"][0]
    fields = header[1:header.index("KEY")]
    assert "services/a" in fields and all(enc[h] == "" for h in fields)
    assert len(tables["raw_form-members"]) == 2  # header and the plain submission's member


# --- filters ---------------------------------------------------------------------------------


def test_period_is_cut_at_midnight_in_vietnam_not_utc(app, form_xml, collect):
    late_march = send(collect)  # 23:59:59 on 31 March in Hà Nội
    early_april = send(collect)  # 00:00:00 on 1 April in Hà Nội, still 31 March in UTC
    set_submission(app, late_march, created_at=datetime(2026, 3, 31, 16, 59, 59, tzinfo=UTC))
    set_submission(app, early_april, created_at=datetime(2026, 3, 31, 17, 0, 0, tzinfo=UTC))

    def keys(start, end):
        table = export(app, filters=RawFilters(period=(start, end)))["raw_form"]
        return [r["KEY"] for r in as_dicts(table)]

    assert keys(date(2026, 3, 1), date(2026, 3, 31)) == [late_march]
    assert keys(date(2026, 4, 1), date(2026, 4, 30)) == [early_april]
    assert keys(date(2026, 3, 31), None) == [late_march, early_april]
    assert keys(None, date(2026, 3, 30)) == []
    [row] = as_dicts(export(app, filters=RawFilters(period=(date(2026, 4, 1), None)))["raw_form"])
    assert row["SubmissionDate"] == "2026-03-31T17:00:00.000Z"  # UTC, as Central writes it
    with Export(app) as ex:
        assert raw_count(ex.session, ex.form,
                         filters=RawFilters(period=(date(2026, 4, 1), None))) == 1


def test_review_state_tdp_and_submitter_filters(app, form_xml, collect, supervisor):
    a = send(collect, {"g_info/tdp": "tdp01"}, [("A", "1", [])])
    b = send(collect, {"g_info/tdp": "tdp02"}, [("B", "2", [])])
    c = send(supervisor, {"g_info/tdp": "tdp02"})
    set_submission(app, b, review_state="has_issues")

    def keys(table="raw_form", **kw):
        return [r["KEY"] for r in as_dicts(export(app, filters=RawFilters(**kw))[table])]

    assert keys() == [a, b, c]
    assert keys(review_states=("has_issues",)) == [b]
    assert keys(review_states=("received", "approved")) == [a, c]
    assert keys(tdp="tdp02") == [b, c]
    assert keys(tdp="tdp09") == []
    assert keys(submitter_id=user_id(app, "sup1")) == [c]
    assert keys(tdp="tdp02", submitter_id=user_id(app, "vol1")) == [b]
    # repeat tables follow the same filter
    assert [r["PARENT_KEY"] for r in as_dicts(export(app, filters=RawFilters(
        tdp="tdp01"))["raw_form-members"])] == [a]
    [row] = as_dicts(export(app, filters=RawFilters(submitter_id=user_id(app, "sup1")))[
        "raw_form"])
    assert (row["SubmitterName"], row["DeviceID"]) == ("Trần Văn Giám", "collect:SUPERVISOR")
    with pytest.raises(ValueError, match="review state"):
        export(app, filters=RawFilters(review_states=("hasIssues",)))


def test_tdp_filter_finds_the_field_in_another_group_of_an_older_version(app, ward, collect):
    moved = FORM_MD.replace("|          | select_one tdp     | tdp       | Tổ           |\n", "")
    moved = moved.replace("|          | select_multiple sv | services  |",
                          "|          | select_one tdp     | tdp       | Tổ           |\n"
                          "|          | select_multiple sv | services  |")
    publish(app, xform_from_md(moved))
    old = send(collect, {"tdp": "tdp02"})
    publish(app, xform_from_md(FORM_V2_MD))
    new = send(collect, {"g_info/tdp": "tdp02"}, version="2")
    send(collect, {"g_info/tdp": "tdp01"}, version="2")
    table = export(app, filters=RawFilters(tdp="tdp02"))["raw_form"]
    assert [r["KEY"] for r in as_dicts(table)] == [old, new]


# --- the zip ---------------------------------------------------------------------------------


@pytest.mark.parametrize("blob_store", ["files", "database"])
def test_zip_holds_every_table_and_the_media(make_app, tmp_path, blob_store):
    app = make_app(BLOB_STORE=blob_store)
    ward = make_ward(app, forms=False)
    publish(app, xform_from_md(FORM_MD))
    collect = Collect(f"http://localhost/v1/key/{ward.token}/projects/1", FlaskTransport(app))
    a = send(collect, {"photo": "photo.jpg"}, [("Lan", "3", [("xe", "a")])],
             attachments={"photo.jpg": PHOTO})
    send(collect, {"photo": "photo.jpg"}, attachments={"photo.jpg": OTHER_PHOTO})
    send(collect, {"photo": "photo.jpg"}, attachments={"photo.jpg": PHOTO})  # same bytes
    send(collect, {"photo": "missing.jpg"})  # never arrived: nothing in media/
    with Export(app) as ex:
        out = write_zip(ex.session, app.extensions["blobs"], ex.form, tmp_path / "raw.zip",
                        filters=RawFilters(), split_select_multiples=False, group_paths=True)
        plain = write_zip(ex.session, app.extensions["blobs"], ex.form, tmp_path / "plain.zip",
                          filters=RawFilters(), split_select_multiples=False, group_paths=True,
                          bom=False)
    assert out == tmp_path / "raw.zip" and not list(tmp_path.glob("*.part"))
    with zipfile.ZipFile(out) as zf:
        assert zf.namelist() == ["raw_form.csv", "raw_form-members.csv", "raw_form-toys.csv",
                                 "media/photo.jpg", "media/photo~2.jpg"]
        assert all(i.compress_type == zipfile.ZIP_DEFLATED for i in zf.infolist())
        assert zf.read("media/photo.jpg") == PHOTO
        assert zf.read("media/photo~2.jpg") == OTHER_PHOTO
        members = zf.read("raw_form-members.csv")
        assert members.startswith(b"\xef\xbb\xbfm_name,g_m-m_age,PARENT_KEY,KEY\r\n")
        assert f"Lan,3,{a},{a}/g_members/members[1]\r\n".encode() in members
        toys = zf.read("raw_form-toys.csv").decode("utf-8-sig")
        assert f"xe,a,{a}/g_members/members[1],{a}/g_members/members[1]/toys[1]" in toys
        root = zf.read("raw_form.csv").decode("utf-8-sig")
        assert len(list(csv.reader(io.StringIO(root)))) == 5
    with zipfile.ZipFile(plain) as zf:
        assert all(not zf.read(n).startswith(b"\xef\xbb\xbf") for n in zf.namelist()
                   if n.endswith(".csv"))


def test_zip_media_follow_the_filter(app, form_xml, collect, tmp_path):
    send(collect, {"photo": "a.jpg", "g_info/tdp": "tdp01"}, attachments={"a.jpg": PHOTO})
    send(collect, {"photo": "b.jpg", "g_info/tdp": "tdp02"}, attachments={"b.jpg": OTHER_PHOTO})
    with Export(app) as ex:
        out = write_zip(ex.session, app.extensions["blobs"], ex.form, tmp_path / "t.zip",
                        filters=RawFilters(tdp="tdp02"), split_select_multiples=True,
                        group_paths=False)
    with zipfile.ZipFile(out) as zf:
        assert [n for n in zf.namelist() if n.startswith("media/")] == ["media/b.jpg"]
        header = zf.read("raw_form.csv").decode("utf-8-sig").splitlines()[0]
        assert header.startswith("SubmissionDate,tdp,hh_name,location-Latitude,")


# --- memory ----------------------------------------------------------------------------------


def test_rows_stream_in_batches_without_materialising(app, form_xml, collect, fetched_batches):
    keys = [send(collect, {"g_info/hh_name": f"hộ {n}"}, [("A", "1", [])]) for n in range(7)]
    fetched = fetched_batches
    with Export(app) as ex:
        for table in ex.tables(split_select_multiples=True)[:2]:  # root and members
            fetched.clear()
            source = table.rows()
            assert inspect.isgenerator(source)
            assert fetched == []  # nothing read before the first row is asked for
            first = next(source)
            assert sum(fetched) <= 2, table.name
            rest = list(source)
            assert sum(fetched) == 1 + len(rest) == 7
            assert max(fetched) <= 2
            if table.name == "raw_form":
                assert [first[-10], *(r[-10] for r in rest)] == keys
