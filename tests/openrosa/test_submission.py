"""Submissions as Collect sends them (openrosa.md §4; conformance cases 8–16)."""

from __future__ import annotations

import hashlib
import threading
import uuid

from server.db.models import Attachment, FormVersion, Submission, SubmissionVersion
from tests.openrosa.conftest import PHOTO_FORM_MD, publish, rows, set_state, xform_from_md
from tests.support import instances
from tests.support.collect import Part, multipart_body
from tests.support.pieces import Pieces

PHOTO = b"\xff\xd8\xff\xe0 photo bytes " * 50
AUDIT = b"event,node,start,end\nform start,,1,\n"


def photo_instance(xml: bytes, name="Nguyễn Văn Hùng", photo="photo.jpg", **kw) -> bytes:
    return instances.build(xml, {"name": name, "photo": photo, "meta/audit": "audit.csv"}, **kw)


def stored(app):
    return rows(app, SubmissionVersion)


def blob_bytes(app, att: Attachment) -> bytes:
    session = app.extensions["db"].session()
    try:
        return app.extensions["blobs"].get(session, att.blob_sha256)
    finally:
        session.close()


def test_head_and_get_submission_are_204_with_headers(collect):
    for method in ("HEAD", "GET"):
        response = collect.request(method, collect.submission_url)
        assert response.status == 204
        assert response.body == b""
        assert response.headers.get("X-OpenRosa-Version") == "1.0"
        assert response.headers.get("X-OpenRosa-Accept-Content-Length") == "100000000"
        assert response.headers.get("Location") is None


def test_post_with_attachments_is_stored(app, collect, photo_xml):
    xml = photo_instance(photo_xml)
    [response] = collect.submit(xml, {"photo.jpg": PHOTO, "audit.csv": AUDIT,
                                      "stray.txt": b"not referenced"})
    assert response.status == 201
    assert "text/xml" in response.headers.get("Content-Type")
    assert "OpenRosaResponse" in response.text and response.message
    [version] = stored(app)
    assert version.xml == xml  # every byte kept
    assert version.instance_id.startswith("uuid:")
    assert version.device_id == "collect:ABCDEFGHIJKLMNOP"
    assert version.fields["root"]["name"] == "Nguyễn Văn Hùng"
    atts = {a.name: a for a in rows(app, Attachment)}
    assert set(atts) == {"photo.jpg", "audit.csv"}  # stray.txt ignored
    assert blob_bytes(app, atts["photo.jpg"]) == PHOTO
    assert blob_bytes(app, atts["audit.csv"]) == AUDIT


def test_identical_resubmission_is_not_a_duplicate(app, collect, photo_xml):
    xml = photo_instance(photo_xml)
    files = {"photo.jpg": PHOTO, "audit.csv": AUDIT}
    assert collect.submit(xml, files)[0].status == 201
    assert collect.submit(xml, files)[0].status == 201
    assert len(rows(app, Submission)) == 1
    assert len(stored(app)) == 1
    assert len(rows(app, Attachment)) == 2


def test_split_upload_collects_every_part(app, collect, photo_xml):
    xml = photo_instance(photo_xml)
    responses = collect.submit(xml, {"photo.jpg": PHOTO, "audit.csv": AUDIT},
                               max_bytes=len(xml) + len(PHOTO) + 10)
    assert [r.status for r in responses] == [201, 201]
    assert responses[0].extra["incomplete"] and not responses[1].extra["incomplete"]
    assert "1" in responses[0].message  # one attachment still expected
    assert len(stored(app)) == 1
    atts = {a.name: a for a in rows(app, Attachment)}
    assert atts["photo.jpg"].blob_sha256 and atts["audit.csv"].blob_sha256


def test_photo_is_stored_byte_for_byte_wherever_the_network_cuts_the_body(app, collect,
                                                                          photo_xml):
    """A body reaches the server in pieces; a piece ending inside the closing delimiter
    once left the delimiter's CR at the end of the photo."""
    client = app.test_client()
    path = collect.submission_url.removeprefix("http://localhost")
    photo = PHOTO + b"Jb"
    sent = {}
    for back in range(1, 60):  # every cut in the last 60 bytes: delimiter and its CRLFs
        xml = photo_instance(photo_xml)
        content_type, body = multipart_body([
            Part("xml_submission_file", xml, filename="x.xml", content_type="text/xml"),
            Part("photo.jpg", photo, filename="photo.jpg", content_type="image/jpeg")])
        cut = len(body) - back
        response = client.post(path, input_stream=Pieces([body[:cut], body[cut:]]),
                               content_length=len(body), content_type=content_type,
                               headers={"X-OpenRosa-Version": "1.0"})
        assert response.status_code == 201, (back, response.get_data(as_text=True))
        sent[xml] = back
    versions = {v.id: v.xml for v in stored(app)}
    assert set(versions.values()) == set(sent)
    photos = [a for a in rows(app, Attachment) if a.name == "photo.jpg"]
    assert len(photos) == len(sent)
    for att in photos:
        back = sent[versions[att.submission_version_id]]
        assert blob_bytes(app, att) == photo, f"cut {back} bytes from the end"


def test_retry_after_partial_upload_resends_everything_idempotently(app, collect, photo_xml):
    xml = photo_instance(photo_xml)
    collect.submit(xml, {"photo.jpg": PHOTO})
    collect.submit(xml, {"photo.jpg": PHOTO, "audit.csv": AUDIT})
    assert len(stored(app)) == 1
    assert all(a.blob_sha256 for a in rows(app, Attachment))


def test_same_instance_id_with_other_xml_is_409(app, collect, photo_xml):
    iid = f"uuid:{uuid.uuid4()}"
    original = photo_instance(photo_xml, instance_id=iid)
    collect.submit(original, {"photo.jpg": PHOTO})
    other = photo_instance(photo_xml, name="Trần Thị Lan", instance_id=iid)
    [response] = collect.submit(other, {"photo.jpg": b"other photo"})
    assert response.status == 409
    assert "different XML" in response.message
    [version] = stored(app)
    assert version.xml == original
    att = next(a for a in rows(app, Attachment) if a.name == "photo.jpg")
    assert blob_bytes(app, att) == PHOTO


def test_unknown_form_or_version_is_404(app, collect, photo_xml):
    unknown = photo_instance(photo_xml).replace(b'id="photo_form"', b'id="nope"')
    [response] = collect.submit(unknown)
    assert response.status == 404 and response.message
    wrong_version = photo_instance(photo_xml).replace(b'version="1"', b'version="9"')
    [response] = collect.submit(wrong_version)
    assert response.status == 404 and "version" in response.message
    assert stored(app) == []


def test_closing_form_accepts_closed_form_refuses(app, collect, photo_xml):
    set_state(app, "photo_form", "closing")
    assert collect.submit(photo_instance(photo_xml))[0].status == 201
    set_state(app, "photo_form", "closed")
    [response] = collect.submit(photo_instance(photo_xml))
    assert response.status == 409 and "closed" in response.message
    assert len(stored(app)) == 1


def test_older_version_still_accepts_submissions(app, collect, photo_xml):
    publish(app, xform_from_md(PHOTO_FORM_MD.replace("| 1         |", "| 2         |")))
    assert collect.submit(photo_instance(photo_xml))[0].status == 201
    [version] = stored(app)
    [v1] = [fv for fv in rows(app, FormVersion) if fv.version == "1"]
    assert version.form_version_id == v1.id


def test_missing_xml_part_and_malformed_xml_are_400(app, collect, photo_xml):
    content_type, body = multipart_body([Part("photo.jpg", PHOTO, filename="photo.jpg")])
    response = collect.post_raw(body, content_type)
    assert response.status == 400 and "xml_submission_file" in response.message
    content_type, body = multipart_body([
        Part("xml_submission_file", b"<data id='photo_form'><unclosed>", filename="x.xml",
             content_type="text/xml")])
    response = collect.post_raw(body, content_type)
    assert response.status == 400 and response.message
    response = collect.post_raw(b"--x--", "multipart/form-data")  # no boundary
    assert response.status == 400 and response.message
    response = collect.post_raw(b"<data/>", "text/xml")
    assert response.status == 400 and response.message
    assert stored(app) == []


def test_external_entities_are_refused(app, collect, photo_xml):
    xxe = (b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
           b'<data id="photo_form" version="1"><name>&x;</name>'
           b'<meta><instanceID>uuid:1</instanceID></meta></data>')
    [response] = collect.submit(xxe)
    assert response.status == 400
    assert "root:" not in response.text
    assert stored(app) == []


def test_edit_creates_a_new_version_and_carries_attachments(app, collect, photo_xml):
    first_id = f"uuid:{uuid.uuid4()}"
    collect.submit(photo_instance(photo_xml, instance_id=first_id),
                   {"photo.jpg": PHOTO, "audit.csv": AUDIT})
    # A newer form version exists; Collect edits with the original version.
    publish(app, xform_from_md(PHOTO_FORM_MD.replace("| 1         |", "| 2         |")))
    edit_id = f"uuid:{uuid.uuid4()}"
    edit = photo_instance(photo_xml, name="Nguyễn Văn Hưng", instance_id=edit_id,
                          deprecated_id=first_id)
    [response] = collect.submit(edit, {"audit.csv": b"edited audit"})
    assert response.status == 201
    assert len(rows(app, Submission)) == 1
    versions = {v.instance_id: v for v in stored(app)}
    assert not versions[first_id].current and versions[edit_id].current
    assert versions[edit_id].deprecated_id == first_id
    new_atts = {a.name: a for a in rows(app, Attachment)
                if a.submission_version_id == versions[edit_id].id}
    assert blob_bytes(app, new_atts["photo.jpg"]) == PHOTO  # carried over
    assert blob_bytes(app, new_atts["audit.csv"]) == b"edited audit"  # replaced

    # Resending the edit is idempotent; editing the superseded version again is a conflict.
    assert collect.submit(edit)[0].status == 201
    again = photo_instance(photo_xml, name="X Y", deprecated_id=first_id)
    [response] = collect.submit(again)
    assert response.status == 409 and response.message
    unknown = photo_instance(photo_xml, deprecated_id=f"uuid:{uuid.uuid4()}")
    [response] = collect.submit(unknown)
    assert response.status == 404 and response.message
    assert len(stored(app)) == 2


def test_encrypted_envelope_is_stored_as_is(app, collect, photo_xml):
    iid = f"uuid:{uuid.uuid4()}"
    envelope = (
        '<data xmlns="http://opendatakit.org/submissions" id="photo_form" version="1" '
        'encrypted="yes"><base64EncryptedKey>a2V5</base64EncryptedKey>'
        '<meta xmlns="http://openrosa.org/xforms"><instanceID>' + iid + '</instanceID></meta>'
        '<media><file>photo.jpg.enc</file></media>'
        '<encryptedXmlFile>submission.xml.enc</encryptedXmlFile></data>').encode()
    [response] = collect.submit(envelope, {"submission.xml.enc": b"\x01ciphertext",
                                           "photo.jpg.enc": b"\x02cipherphoto"},
                                xml_filename="submission.xml")
    assert response.status == 201
    [version] = stored(app)
    assert version.encrypted and version.instance_id == iid and version.xml == envelope
    assert {a.name for a in rows(app, Attachment)} == {"submission.xml.enc", "photo.jpg.enc"}


def test_non_ascii_and_path_attachment_names(app, collect, photo_xml):
    xml = photo_instance(photo_xml, photo="ảnh nhà.jpg")
    content_type, body = multipart_body([
        Part("xml_submission_file", xml, filename="x.xml", content_type="text/xml"),
        Part("ảnh nhà.jpg".encode(), PHOTO, filename="../../ảnh nhà.jpg".encode(),
             content_type="image/jpeg"),
    ])
    response = collect.post_raw(body, content_type)
    assert response.status == 201
    [att] = [a for a in rows(app, Attachment) if a.blob_sha256]
    assert att.name == "ảnh nhà.jpg"


def test_oversize_body_is_413_with_message(make_app):
    from tests.support.collect import Collect, FlaskTransport
    from tests.support.factories import make_ward

    app = make_app(MAX_SUBMISSION_BYTES=2000)
    ward = make_ward(app, forms=False)
    collect = Collect(f"http://localhost/v1/key/{ward.token}/projects/1", FlaskTransport(app))
    assert collect.head_submission() == (204, 2000)
    content_type, body = multipart_body([
        Part("xml_submission_file", b"<data/>" + b" " * 300_000, filename="x.xml",
             content_type="text/xml")])
    response = collect.post_raw(body, content_type)
    assert response.status == 413 and response.message


def test_racing_identical_posts_store_one(app, ward, photo_xml):
    from tests.support.collect import Collect, FlaskTransport

    xml = photo_instance(photo_xml)
    results = []

    def send():
        c = Collect(f"http://localhost/v1/key/{ward.token}/projects/1", FlaskTransport(app))
        results.append(c.submit(xml, {"photo.jpg": PHOTO})[0].status)

    threads = [threading.Thread(target=send) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [201] * 4
    assert len(stored(app)) == 1


def test_identity_number_is_blanked_before_storage(app, collect):
    from server.domain import forms as forms_domain

    survey = next(f for f in collect.form_list() if f["formID"] == "household_survey")
    xform = collect.download_form(survey)
    xml = instances.build(xform, {"g_intro/tdp": "tdp01", "g_head/head_name": "Nguyễn Văn Hùng",
                                  "g_head/head_id": "008071234567"})
    [response] = collect.submit(xml)
    assert response.status == 201
    [version] = stored(app)
    assert b"008071234567" not in version.xml
    assert b"<head_id/>" in version.xml or b"<head_id></head_id>" in version.xml
    assert version.pid_last4 == "4567"
    assert version.pid_hmac and "008071234567" not in version.pid_hmac
    assert version.pid_hmac != hashlib.sha256(b"VN-PID:008071234567").hexdigest()
    assert version.fields["root"]["g_head/head_id"] == ""
    assert forms_domain  # the survey's XForm is the one published from forms/


def test_thousands_of_parts_are_refused(app, collect, photo_xml):
    parts = [Part("xml_submission_file", photo_instance(photo_xml), filename="x.xml",
                  content_type="text/xml")]
    parts += [Part(f"f{i}", b"x", filename=f"f{i}.txt") for i in range(3000)]
    content_type, body = multipart_body(parts)
    response = collect.post_raw(body, content_type)
    assert response.status == 413 and response.message
    assert stored(app) == []


def test_deeply_nested_xml_is_refused(app, collect, photo_xml):
    deep = (b'<data id="photo_form" version="1">' + b"<a>" * 500 + b"</a>" * 500 +
            b"<meta><instanceID>uuid:x</instanceID></meta></data>")
    [response] = collect.submit(deep)
    assert response.status == 400 and response.message
    assert stored(app) == []


def test_missing_form_id_is_400(app, collect, photo_xml):
    [response] = collect.submit(b"<data><meta><instanceID>uuid:1</instanceID></meta></data>")
    assert response.status == 400 and response.message
