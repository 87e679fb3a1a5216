"""Property-based fuzzing (hypothesis) of the submission parser and of the multipart upload.

Whatever arrives — random bytes, mutated submissions, generated XML, XXE and entity bombs,
huge or deep documents, invalid UTF-8, broken multipart bodies, random headers, a missing
boundary, thousands of parts, traversal and absolute file names — the answer is never a 500,
and what was already stored (the XML bytes, versions and attachment bytes of earlier
submissions) does not change; no file appears in the data dir outside the blob store.

FUZZ_EXAMPLES=N sets the examples per property (default 150; `make bench` runs thousands
and reads how many inputs each property was given from the file named by FUZZ_REPORT).
"""

from __future__ import annotations

import hashlib
import os
import re
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from server.db.models import SubmissionVersion
from server.domain import forms as forms_domain
from server.domain.instance import Envelope, InvalidSubmission, read_envelope
from tests.load import PHOTOS, _photos_xform
from tests.support import instances
from tests.support.collect import Part, multipart_body
from tests.support.factories import make_ward

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "150"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None, print_blob=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.filter_too_much,
                                       HealthCheck.large_base_example])
PHOTO = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 40


def report_count(name: str, inputs: int) -> None:
    """How many inputs a property was given, for `make bench` (FUZZ_REPORT names the file)."""
    path = os.environ.get("FUZZ_REPORT")
    if path:
        with open(path, "a") as out:
            out.write(f"{name} {inputs}\n")
AUDIT = b"event,node,start,end\nform start,,1,\n"
FORM_IDS = (PHOTOS, "household_survey", "support_visit")

# Documents every parser has to survive, whatever the fuzzer draws besides.
HOSTILE_XML = [
    b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
    b'<data id="load_photos" version="2026010101"><tdp>&x;</tdp></data>',
    b'<?xml version="1.0"?><!DOCTYPE d SYSTEM "http://127.0.0.1:9/evil.dtd">'
    b'<data id="load_photos"/>',
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + b"".join(b'<!ENTITY lol%d "%s">' % (i, (b"&lol%d;" % (i - 1) if i else b"&lol;") * 10)
               for i in range(1, 10))
    + b']><data id="load_photos"><tdp>&lol9;</tdp></data>',
    b'<data id="load_photos" version="2026010101">' + b"<a>" * 100_000 + b"</a>" * 100_000
    + b"</data>",
    b'<data id="load_photos" version="9">' + b"<x/>" * 200_000 + b"</data>",
    b'<data id="load_photos" version="2026010101"><tdp>\xff\xfe\xc3\x28</tdp></data>',
    '<?xml version="1.0" encoding="UTF-16"?><data id="load_photos"/>'.encode("utf-16"),
    b'<?xml version="1.0" encoding="ISO-8859-1"?><data id="load_photos"><tdp>\xe9</tdp></data>',
    b'<data id="load_photos">\x00</data>',
    b"\xef\xbb\xbf<data id='load_photos' version='2026010101'><meta><instanceID>"
    b"uuid:6f1c1f0e-0000-4000-8000-000000000001</instanceID></meta></data>",
    b'<data id="load_photos"/><data id="load_photos"/>',
    b"<data id=\"load_photos\" version=\"9\" " + b" ".join(
        b'a%d="x"' % i for i in range(5_000)) + b"/>",  # lxml's attrib.items() is O(n²)
    b'<data id="' + b"f" * 100_000 + b'"/>',
    b'<data id="load_photos" version="2026010101"><![CDATA[<meta><instanceID>uuid:x'
    b"</instanceID></meta>]]></data>",
    b'<?xml-stylesheet href="http://127.0.0.1:9/x"?><data id="load_photos"/>',
    b'<data xmlns="http://www.w3.org/2002/xforms" xmlns:jr="x" jr:id="load_photos"'
    b' id=" load_photos "><meta><instanceID>  </instanceID></meta></data>',
    b"", b"   ", b"<", b"<data", b"</data>", b"<?xml?>", b"\x00\x00\x00",
]

NAMES = st.sampled_from([
    "../../../../etc/passwd", "/etc/passwd", "..\\..\\windows\\win.ini", "C:\\Windows\\x.jpg",
    "photo.jpg\x00.exe", "", ".", "..", "a/b/c.jpg", "ảnh nhà.jpg", "%2e%2e%2fphoto.jpg",
    "x" * 3000 + ".jpg", "\u202egpj.exe", "photo.jpg/", " photo.jpg ", "~/.ssh/authorized_keys",
    "../server.db", "../secret_key", "blobs/../../x", "/proc/self/environ", "house.jpg",
    "photo.jpg", "audit.csv", "xml_submission_file", "*isIncomplete*", "file\r\nX-Evil: 1",
    'a"b.jpg', "a;b=c.jpg",
])
XML_SAFE_NAMES = NAMES.filter(lambda n: "\x00" not in n)
RAW_NAMES = st.one_of(NAMES.map(str.encode), st.binary(max_size=40),
                      st.text(max_size=30).map(lambda s: s.encode("utf-8", "surrogatepass")))
HEADER_TEXT = st.text(st.characters(min_codepoint=32, max_codepoint=255), max_size=60)
PART_TYPES = st.one_of(st.none(), st.sampled_from(
    ["text/xml", "application/xml", "image/jpeg", "application/octet-stream",
     "text/plain; charset=utf-8", "multipart/mixed; boundary=inner", "", "*/*", "text/xml; x",
     "image/" + "j" * 300]), HEADER_TEXT)


class Stage:
    """A ward whose database already holds submissions with attachments, to be left intact."""

    def __init__(self, app):
        self.app = app
        ward = make_ward(app)  # the household survey and the support visit, one volunteer
        self.url = f"/v1/key/{ward.token}/projects/{ward.project_id}/submission"
        session = app.extensions["db"].session(write=True)
        try:
            forms_domain.publish_xform(session, app.extensions["blobs"], ward.project_id,
                                       _photos_xform())
            session.commit()
        finally:
            session.close()
        self.client = app.test_client()
        self.xforms = {fid: self.form_xml(fid) for fid in FORM_IDS}
        self.baseline = [
            self.photos_instance(uuid.UUID(int=1), house="house.jpg", audit=True,
                                 members=[("Lê Thị Mai", "m1.jpg")]),
            instances.build(self.xforms["household_survey"], {
                "g_intro/tdp": "tdp01", "g_head/head_name": "Nguyễn Văn Hùng",
                "g_head/head_id": "001203004005", "g_end/house_photo": "house.jpg"},
                instance_id=f"uuid:{uuid.UUID(int=2)}"),
        ]
        files = {"house.jpg": PHOTO, "audit.csv": AUDIT, "m1.jpg": PHOTO[::-1]}
        for xml in self.baseline:
            response = self.post(*multipart_body(
                [Part("xml_submission_file", xml, "x.xml", "text/xml")]
                + [Part(n, data, n, "application/octet-stream") for n, data in files.items()]))
            assert response.status_code == 201, response.get_data()
        self.before = self.snapshot()
        self.files_before = self.data_files()

    def form_xml(self, form_id: str) -> bytes:
        session = self.app.extensions["db"].session()
        try:
            form = forms_domain.get_form(session, 1, form_id)
            return form.current_version.xml
        finally:
            session.close()

    def photos_instance(self, instance_id: uuid.UUID, *, house: str | None = None,
                        audit: bool = False, members=(), name: str = "Hà Thị Thu") -> bytes:
        values = {"tdp": "tdp01", "head_name": name}
        if house:
            values["house"] = house
        if audit:
            values["meta/audit"] = "audit.csv"
        return instances.build(self.xforms[PHOTOS], values, instance_id=f"uuid:{instance_id}",
                               repeats={"members": [{"m_name": n, "m_photo": p}
                                                    for n, p in members]})

    def post(self, content_type: str | None, body: bytes, headers=None, query: str = ""):
        hdrs = dict(headers or {})
        if content_type is not None:
            hdrs["Content-Type"] = content_type
        hdrs.setdefault("X-OpenRosa-Version", "1.0")
        response = self.client.open(self.url + query, method="POST", data=body,
                                    headers=list(hdrs.items()))
        response.close()
        return response

    def snapshot(self) -> dict:
        """Every stored version: its submission, flag, bytes, digest and attachments' bytes."""
        session = self.app.extensions["db"].session()
        store = self.app.extensions["blobs"]
        try:
            out = {}
            for v in session.scalars(select(SubmissionVersion)):
                out[v.instance_id] = (
                    v.submission_id, v.current, hashlib.sha256(v.xml).hexdigest(), v.xml_digest,
                    sorted((a.name, a.blob_sha256, a.blob_sha256 and hashlib.sha256(
                        store.get(session, a.blob_sha256)).hexdigest()) for a in v.attachments))
            return out
        finally:
            session.close()

    def data_files(self) -> set[str]:
        """Files of the data dir outside the blob store (the database's own aside)."""
        root = Path(self.app.config["DATA_DIR"])
        return {str(p.relative_to(root)) for p in root.rglob("*")
                if p.is_file() and "blobs" not in p.relative_to(root).parts
                and not p.name.startswith("server.db")}

    def assert_intact(self) -> None:
        after = self.snapshot()
        for instance_id, state in self.before.items():
            assert after.get(instance_id) == state, f"{instance_id} changed"
        assert self.data_files() == self.files_before


@pytest.fixture
def stage(app):
    return Stage(app)


def assert_answer(response) -> None:
    assert response.status_code < 500, response.get_data()[:500]
    if response.status_code >= 400:  # every refusal says why, as Collect shows it
        assert b"OpenRosaResponse" in response.get_data(), response.get_data()[:500]


# ------------------------------------------------------------------------------------------
# Strategies
# ------------------------------------------------------------------------------------------


@st.composite
def mutated(draw, docs: list[bytes]) -> bytes:
    """A document with a few random byte edits: flips, cuts, insertions, duplications."""
    data = bytearray(draw(st.sampled_from(docs)))
    for _ in range(draw(st.integers(1, 4))):
        if not data:
            break
        i = draw(st.integers(0, len(data) - 1))
        op = draw(st.sampled_from(["flip", "cut", "insert", "truncate", "dup", "tag"]))
        if op == "flip":
            data[i] ^= draw(st.integers(1, 255))
        elif op == "cut":
            del data[i:i + draw(st.integers(1, 50))]
        elif op == "insert":
            data[i:i] = draw(st.sampled_from([
                b"<", b">", b"&", b"&amp;", b"&#0;", b"&#x110000;", b"<!--", b"]]>", b"\xff",
                b"\xc0\xaf", b"<!DOCTYPE x>", b"<!ENTITY e 'x'>", b"<?pi x?>", b"\x00",
                b'xmlns:x="u"', b"<meta><instanceID>uuid:1</instanceID></meta>",
                b"<deprecatedID>uuid:00000000-0000-4000-8000-000000000001</deprecatedID>"]))
        elif op == "truncate":
            del data[i:]
        elif op == "dup":
            data[i:i] = data[i:i + draw(st.integers(1, 200))]
        else:
            data[i:i] = b"<%s>" % draw(st.from_regex(rb"[a-zA-Z_][\w.-]{0,10}", fullmatch=True))
    return bytes(data)


XML_NAME = st.from_regex(r"(?:[a-z]{1,3}:)?[A-Za-z_][A-Za-z0-9_.-]{0,8}", fullmatch=True)


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;")


@st.composite
def generated(draw) -> bytes:
    """Mostly well-formed submissions: random trees under a root with random routing."""
    leaf_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)
    tree = st.recursive(
        st.tuples(XML_NAME, leaf_text).map(lambda t: f"<{t[0]}>{_esc(t[1])}</{t[0]}>"),
        lambda kids: st.tuples(XML_NAME, st.lists(kids, max_size=4)).map(
            lambda t: f"<{t[0]}>{''.join(t[1])}</{t[0]}>"),
        max_leaves=30)
    meta = []
    if draw(st.booleans()):
        meta.append(f"<instanceID>uuid:{draw(st.uuids())}</instanceID>")
    if draw(st.integers(0, 4)) == 0:  # an edit of something unknown
        meta.append(f"<deprecatedID>uuid:{draw(st.uuids())}</deprecatedID>")
    if draw(st.booleans()):
        meta.append(f"<instanceName>{_esc(draw(leaf_text))}</instanceName>")
    if draw(st.integers(0, 3)) == 0:
        meta.append(f'<entity dataset="households" create="1" id="{draw(st.uuids())}">'
                    f"<label>{_esc(draw(leaf_text))}</label></entity>")
    attrs = {"id": draw(st.sampled_from([*FORM_IDS, "", "unknown", " load_photos"])
                        | leaf_text),
             "version": draw(st.sampled_from(["2026010101", "2026011501", "", "9"])
                             | leaf_text)}
    if draw(st.integers(0, 5)) == 0:
        attrs["encrypted"] = "yes"
    attr_text = "".join(f' {k}="{_esc(v)}"' for k, v in attrs.items()
                        if draw(st.integers(0, 6)) > 0)
    body = "".join(draw(st.lists(tree, max_size=6)))
    root = draw(st.sampled_from(["data", "h:data", "household_survey"]))
    xmlns = ' xmlns:h="http://example.org/h"' if root.startswith("h:") else ""
    decl = draw(st.sampled_from(["", '<?xml version="1.0"?>',
                                 "<?xml version='1.0' encoding='UTF-8'?>\n"]))
    text = f"{decl}<{root}{xmlns}{attr_text}>{body}<meta>{''.join(meta)}</meta></{root}>"
    return text.encode("utf-8", "surrogatepass")


def documents(stage: Stage | None = None) -> st.SearchStrategy[bytes]:
    seeds = [*HOSTILE_XML[:3], *HOSTILE_XML[5:11]] + (stage.baseline if stage else [])
    return st.one_of(st.binary(max_size=2000), st.sampled_from(HOSTILE_XML), generated(),
                     mutated(seeds))


# ------------------------------------------------------------------------------------------
# The parser on its own
# ------------------------------------------------------------------------------------------


@FUZZ
@given(data=documents())
@example(data=b'<data id="x">' + b"<a>" * 300 + b"</a>" * 300 + b"</data>")
@example(data=b"<data id='x'>" + b" " * 21_000_000 + b"</data>")  # over parse_xml's 20 MB
def test_read_envelope_answers_or_refuses_cleanly(data):
    report_count("read_envelope", 1)
    try:
        envelope = read_envelope(data)
    except InvalidSubmission as exc:
        assert str(exc)  # a message a volunteer can be shown
    else:
        assert isinstance(envelope, Envelope) and envelope.form_id
        assert envelope.form_id == envelope.form_id.strip()


# ------------------------------------------------------------------------------------------
# The submission XML through the whole ingest (Flask test client, real database)
# ------------------------------------------------------------------------------------------


def test_fuzzed_submission_xml_is_never_a_500_and_changes_nothing(stage):
    statuses = []

    @FUZZ
    @given(xml=documents(stage), files=st.lists(st.sampled_from(
        ["house.jpg", "audit.csv", "m1.jpg", "photo.jpg"]), max_size=3, unique=True))
    def fuzz(xml, files):
        if xml in stage.baseline:
            return  # the identical XML may add or replace files (Central's rule): not fuzz
        parts = [Part("xml_submission_file", xml, "x.xml", "text/xml")]
        parts += [Part(n, b"fuzz " + n.encode(), n, "image/jpeg") for n in files]
        response = stage.post(*multipart_body(parts))
        assert_answer(response)
        statuses.append(response.status_code)

    fuzz()
    report_count("submission_xml", len(statuses))
    for i, xml in enumerate(HOSTILE_XML):  # each one at least once, whatever was drawn
        response = stage.post(*multipart_body([Part("xml_submission_file", xml, "x.xml")]))
        assert_answer(response)
        if i in (0, 1, 2, 3, 5, 6, 7, 8):  # DTDs, entities, depth, encodings, NUL
            assert response.status_code == 400, (xml[:80], response.get_data()[:300])
    stage.assert_intact()
    assert any(400 <= s < 500 for s in statuses)


# ------------------------------------------------------------------------------------------
# The multipart handling: structure, names, headers, boundary, size
# ------------------------------------------------------------------------------------------


@st.composite
def uploads(draw, stage: Stage) -> tuple[str | None, bytes, dict[str, str], str]:
    """(Content-Type, body, extra headers, query) of a random, often broken, upload.
    A third are well-formed uploads of a new instance whose parts have random names."""
    clean = draw(st.integers(0, 2)) == 0
    xml_choice = 0 if clean else draw(st.integers(0, 3))
    if xml_choice == 0:  # a new valid instance: its files get fuzzed names
        xml = stage.photos_instance(draw(st.uuids()), house=draw(XML_SAFE_NAMES), audit=True,
                                    members=[("Võ Văn Kiệt", draw(XML_SAFE_NAMES))])
    elif xml_choice == 1:
        xml = draw(mutated(stage.baseline))
        if xml in stage.baseline:
            xml = xml + b" "
    elif xml_choice == 2:
        xml = draw(generated())
    else:
        xml = draw(st.binary(max_size=300))
    parts = []
    if clean:
        parts.append(Part("xml_submission_file", xml, draw(RAW_NAMES), "text/xml"))
    elif draw(st.integers(0, 5)) > 0:
        parts.append(Part(draw(st.sampled_from([b"xml_submission_file"]) | RAW_NAMES), xml,
                          draw(st.none() | RAW_NAMES), draw(PART_TYPES)))
    for _ in range(draw(st.integers(0, 6))):
        headers = draw(st.lists(st.tuples(
            st.sampled_from(["Content-Transfer-Encoding", "Content-Length", "X-Junk",
                             "Content-Disposition", "Content-Type"]) | HEADER_TEXT,
            HEADER_TEXT), max_size=2))
        parts.append(Part(draw(RAW_NAMES), draw(st.binary(max_size=3000)),
                          draw(st.none() | RAW_NAMES), draw(PART_TYPES), headers=headers))
    if draw(st.booleans()):
        parts.append(Part("*isIncomplete*", draw(st.sampled_from([b"yes", b"no", b""]))))
    if not clean and draw(st.integers(0, 6)) == 0:
        parts.append(Part("x", disposition=draw(HEADER_TEXT)))
    parts = draw(st.permutations(parts))
    boundary = draw(st.sampled_from([str(uuid.UUID(int=7)), "a", "b" * 70, "=_?'()+,-./:",
                                     "x" * 200]) | st.from_regex(r"[0-9A-Za-z'()+_,./:=?-]{1,70}",
                                                                 fullmatch=True))
    _, body = multipart_body(parts, boundary)
    body = bytearray(body)
    corruption = "none" if clean else draw(st.sampled_from(
        ["none", "truncate", "no-close", "lf-only", "insert", "flip", "prefix"]))
    if corruption == "truncate" and body:
        del body[draw(st.integers(0, len(body) - 1)):]
    elif corruption == "no-close":
        body = body[:body.rfind(b"--" + boundary.encode() + b"--")]
    elif corruption == "lf-only":
        body = bytearray(body.replace(b"\r\n", b"\n"))
    elif corruption == "insert" and body:
        i = draw(st.integers(0, len(body)))
        body[i:i] = draw(st.sampled_from([b"\r\n--" + boundary.encode() + b"\r\n", b"\r\n\r\n",
                                          b"--", b"\x00" * 10]) | st.binary(max_size=50))
    elif corruption == "flip" and body:
        for _ in range(draw(st.integers(1, 5))):
            body[draw(st.integers(0, len(body) - 1))] ^= draw(st.integers(1, 255))
    elif corruption == "prefix":
        body[0:0] = draw(st.binary(max_size=100))
    proper = f"multipart/form-data; boundary={boundary}"
    content_type = proper if clean else draw(st.sampled_from([
        proper, f'multipart/form-data; boundary="{boundary}"', f"{proper}; charset=utf-8",
        f"Multipart/Form-Data; BOUNDARY={boundary}", "multipart/form-data",
        "multipart/form-data; boundary=", f"{proper}x", f"multipart/mixed; boundary={boundary}",
        "text/xml", "application/x-www-form-urlencoded", None]) | HEADER_TEXT)
    headers = draw(st.dictionaries(st.sampled_from(
        ["X-OpenRosa-Version", "Date", "User-Agent", "Content-Encoding", "Accept-Encoding",
         "Authorization", "Expect", "Content-Language", "X-Forwarded-For", "Cookie"]),
        HEADER_TEXT, max_size=4))
    query = draw(st.sampled_from(["", "?deviceID=collect%3Aabc", "?deviceID=", "?deviceID=%ff",
                                  "?deviceID=" + "x" * 2000, "?a=1&a=2"]))
    return content_type, bytes(body), headers, query


def test_fuzzed_multipart_uploads_are_never_a_500_and_change_nothing(stage):
    statuses = []

    @FUZZ
    @given(data=st.data())
    def fuzz(data):
        content_type, body, headers, query = data.draw(uploads(stage))
        response = stage.post(content_type, body, headers, query)
        assert_answer(response)
        statuses.append(response.status_code)

    fuzz()
    report_count("multipart", len(statuses))
    stage.assert_intact()
    assert any(s == 201 for s in statuses) and any(400 <= s < 500 for s in statuses)


def test_thousands_of_parts_missing_boundary_and_huge_bodies_are_refused(stage):
    xml = stage.photos_instance(uuid.uuid4(), house="house.jpg")
    many = [Part("xml_submission_file", xml, "x.xml", "text/xml")]
    many += [Part(f"f{i}.jpg", b"x", f"f{i}.jpg") for i in range(5000)]
    content_type, body = multipart_body(many)
    assert stage.post(content_type, body).status_code == 413
    assert stage.post("multipart/form-data", body).status_code == 400
    assert stage.post("multipart/form-data; boundary=", body).status_code == 400
    huge = b"<data id='load_photos' version='2026010101'>" + b" " * 21_000_000 + b"</data>"
    response = stage.post(*multipart_body([Part("xml_submission_file", huge, "x.xml")]))
    assert response.status_code == 400 and b"too large" in response.get_data()
    deep = (b"<data id='load_photos' version='2026010101'>" + b"<g>" * 50_000
            + b"</g>" * 50_000 + b"</data>")
    response = stage.post(*multipart_body([Part("xml_submission_file", deep, "x.xml")]))
    assert response.status_code == 400
    stage.assert_intact()


def test_traversal_and_absolute_names_only_ever_name_a_blob(stage):
    """Hostile file names reduce to a base name; the bytes go into the blob store only."""
    hostile = ["../../../../tmp/evil.jpg", "/etc/evil.jpg", "..\\..\\evil.jpg",
               "C:\\Windows\\evil.jpg", "blobs/../../evil.jpg", "./.././evil.jpg"]
    for i, name in enumerate(hostile):
        iid = uuid.UUID(int=1000 + i)
        xml = stage.photos_instance(iid, house=name)
        body_name = name.replace("\\", "\\\\").encode()  # a backslash is quoted in the header
        response = stage.post(*multipart_body([
            Part("xml_submission_file", xml, "x.xml", "text/xml"),
            Part(body_name, PHOTO + bytes([i]), body_name, "image/jpeg")]))
        assert_answer(response)
        assert response.status_code == 201
        after = stage.snapshot()[f"uuid:{iid}"]
        [(stored_name, sha, content_sha)] = after[4]
        assert stored_name == "evil.jpg"
        assert sha == content_sha == hashlib.sha256(PHOTO + bytes([i])).hexdigest()
    assert not Path("/tmp/evil.jpg").exists() and not Path("/etc/evil.jpg").exists()
    stage.assert_intact()
    assert all(re.fullmatch(r"[0-9a-f]{64}", p.name) or p.name.startswith(".tmp-")
               for p in (Path(stage.app.config["DATA_DIR"]) / "blobs").rglob("*")
               if p.is_file())


def test_overlong_device_id_file_name_and_content_type_are_never_a_500(stage):
    """PostgreSQL enforces VARCHAR sizes (SQLite does not): over-long values from the request
    must be cut or refused before they reach a column, never end in a 500."""
    name = "n" * 300 + ".jpg"
    xml = stage.photos_instance(uuid.uuid4(), house=name)
    response = stage.post(*multipart_body([
        Part("xml_submission_file", xml, "x.xml", "text/xml"),
        Part(name, PHOTO, name, "image/" + "j" * 300)]), query="?deviceID=" + "d" * 300)
    assert response.status_code == 201, response.get_data()
    stage.assert_intact()


def test_overlong_instance_id_is_never_a_500(stage):
    xml = instances.build(stage.xforms[PHOTOS], {"tdp": "tdp01"},
                          instance_id="uuid:" + "a" * 300)
    response = stage.post(*multipart_body([Part("xml_submission_file", xml, "x.xml")]))
    assert_answer(response)
    stage.assert_intact()
