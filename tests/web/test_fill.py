"""The fill page (/forms/<id>/fill) without a browser: what it loads, the files it fills the
form with, and the POST that stores a filled form (tests/browser/test_web_forms.py drives it
with ODK Web Forms in chromium)."""

from __future__ import annotations

import io
import re

import pytest

from server.db.models import (
    Attachment,
    Entity,
    Form,
    Submission,
    User,
)
from server.domain import accounts
from tests.openrosa.conftest import publish, rows, set_state
from tests.openrosa.test_entities import households_csv, survey
from tests.web.conftest import Browser
from tests.web.test_access_sweep import fingerprint

JPEG = b"\xff\xd8\xff\xe0 a tiny jpeg"


def form_id(app, xml_form_id: str, project_id: int = 1) -> int:
    [form] = rows(app, Form, Form.xml_form_id == xml_form_id, Form.project_id == project_id)
    return form.id


def attribute(html: str, name: str) -> str:
    m = re.search(rf'{name}="([^"]*)"', html)
    assert m, f"no {name} on the page"
    return m.group(1).replace("&amp;", "&")


def fill_page(client: Browser, fid: int) -> str:
    response = client.get(f"/forms/{fid}/fill")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def send(client: Browser, fid: int, xml: bytes, files: dict[str, bytes] | None = None, *,
         token: str | None = "from the page"):
    """POST as the page's script does: FormData, CSRF token in a header."""
    if token == "from the page":
        token = attribute(fill_page(client, fid), "data-csrf-token")
    data = {"xml_submission_file": (io.BytesIO(xml), "xml_submission_file", "text/xml")}
    for name, body in (files or {}).items():
        data[name] = (io.BytesIO(body), name, "image/jpeg")
    headers = {"X-CSRFToken": token} if token else {}
    return client.client.post(f"/forms/{fid}/fill", data=data, headers=headers)


def test_the_page_loads_the_vendored_web_forms_under_its_own_policy(app, sup1):
    page = sup1.get(f"/forms/{form_id(app, 'support_visit')}/fill")
    html, policy = page.get_data(as_text=True), page.headers["Content-Security-Policy"]
    nonce = re.search(r"'nonce-([^']+)'", policy).group(1)
    assert f'<script type="importmap" nonce="{nonce}">' in html
    assert "'wasm-unsafe-eval'" in policy and "style-src 'self' 'unsafe-inline'" in policy
    assert "https:" not in policy and "*" not in policy  # no CDN, nothing from elsewhere
    # every other page keeps the strict policy
    assert "unsafe" not in sup1.get("/forms").headers["Content-Security-Policy"]

    imports = re.search(r'"imports": ?\{([^}]*)\}', html.replace("\\u0026", "&")).group(1)
    urls = re.findall(r'"(/assets/webforms/[^"]+)"', imports)
    assert len(urls) == 2
    for url in urls:
        asset = sup1.get(url)
        asset.close()
        assert asset.status_code == 200 and asset.mimetype == "text/javascript"
        assert asset.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    script = sup1.get("/assets/fill.js")
    script.close()
    assert script.status_code == 200 and "immutable" not in script.headers.get(
        "Cache-Control", "")  # our own script changes with the server: revalidated


def test_the_form_gets_the_lists_the_users_collect_gets(app, sup1, supervisor_collect,
                                                        add_household):
    add_household("Nguyễn Văn Hùng")
    add_household("Lê Thị Lan", tdp="tdp02")
    fid = form_id(app, "support_visit")
    html = fill_page(sup1, fid)
    files = attribute(html, "data-files-url")
    from_page = sup1.get(files + "households.csv")
    assert from_page.status_code == 200 and from_page.mimetype == "text/csv"
    assert from_page.get_data() == _collect_file(supervisor_collect, "households.csv")
    listed = [r["head_name"] for r in households_csv(supervisor_collect)]
    assert listed == ["Nguyễn Văn Hùng"]  # sup1's tổ only, as on its phone
    members = sup1.get(files + "members.csv").get_data()
    assert members == _collect_file(supervisor_collect, "members.csv")
    assert sup1.get(files + "no-such-file.csv").status_code == 404
    # the XForm the page loads is the current version's
    xform = sup1.get(attribute(html, "data-xform-url"))
    assert b'id="support_visit"' in xform.get_data()


def _collect_file(collect, filename: str) -> bytes:
    entry = next(f for f in collect.form_list() if f["formID"] == "support_visit")
    media = next(m for m in collect.manifest(entry) if m["filename"] == filename)
    return collect.download_media(media).body


def test_a_filled_form_is_stored_as_the_users_submission(app, sup1, xforms):
    fid = form_id(app, "household_survey")
    entity_id, xml = survey(xforms, head="Phan Văn Bình",
                            extra={"g_end/house_photo": "1795642077168.jpg"})
    response = send(sup1, fid, xml, {"1795642077168.jpg": JPEG})
    assert response.status_code == 201, response.get_data(as_text=True)
    answer = response.get_json()
    assert answer["message"] == "Đã gửi phiếu." and answer["missing_attachments"] == []
    [sub] = rows(app, Submission)
    assert answer["submission_url"] == f"/submissions/{sub.id}"
    [sup] = rows(app, User, User.username == "sup1")
    assert sub.submitter_id == sup.id and sub.device_id is None
    [entity] = rows(app, Entity)
    assert entity.id == entity_id and entity.properties["head_name"] == "Phan Văn Bình"
    [att] = rows(app, Attachment)
    assert att.name == "1795642077168.jpg" and att.blob_sha256 is not None
    # the review page shows it, with the photo
    page = sup1.get(answer["submission_url"]).get_data(as_text=True)
    assert "Phan Văn Bình" in page and "Trần Văn Giám" in page

    # Send pressed again after a lost answer: the same submission, nothing new
    again = send(sup1, fid, xml, {"1795642077168.jpg": JPEG})
    assert again.status_code == 201 and len(rows(app, Submission)) == 1


@pytest.fixture
def other_project_form(app, ward, xforms):
    """The household survey published in a second project."""
    db = app.extensions["db"].session(write=True)
    try:
        other = accounts.create_project(db, "Phường Khác").id
        db.commit()
    finally:
        db.close()
    publish(app, xforms["household_survey"], project_id=other)
    return form_id(app, "household_survey", other)


def test_refused_posts_store_nothing(app, sup1, browser, xforms, other_project_form):
    fid = form_id(app, "household_survey")
    _eid, xml = survey(xforms)
    before = fingerprint(app)
    token = attribute(fill_page(sup1, fid), "data-csrf-token")

    no_token = send(sup1, fid, xml, token=None)
    assert no_token.status_code == 400 and "tải lại trang" in no_token.get_data(as_text=True)
    assert send(sup1, fid, xml, token="x" + token).status_code == 400

    # another project's form: not found, whatever the body
    assert send(sup1, other_project_form, xml, token=token).status_code == 404

    malformed = send(sup1, fid, b"<data id='household_survey'><unclosed></data>", token=token)
    assert malformed.status_code == 400
    assert "không phải XML hợp lệ" in malformed.get_json()["message"]
    wrong_form = send(sup1, form_id(app, "support_visit"), xml, token=token)
    assert wrong_form.status_code == 400 and "household_survey" in wrong_form.get_json()[
        "message"]
    not_multipart = sup1.client.post(f"/forms/{fid}/fill", data=xml,
                                     headers={"X-CSRFToken": token,
                                              "Content-Type": "text/xml"})
    assert not_multipart.status_code == 400 and not_multipart.is_json

    # a volunteer never has a web session: a session naming one is sent to the login page
    volunteer = browser(remote_addr="10.0.0.9")
    with app.extensions["db"].session() as db:
        vol1 = accounts.get_user(db, "vol1")
    with volunteer.client.session_transaction() as s:
        s["_user_id"], s["_fresh"] = f"{vol1.id}:{vol1.session_epoch}", True
    refused = send(volunteer, fid, xml, token=token)
    assert refused.status_code == 302 and refused.headers["Location"].startswith("/login")
    assert volunteer.get(f"/forms/{fid}/fill").status_code == 302

    assert fingerprint(app) == before


def test_a_closed_form_cannot_be_filled(app, sup1, xforms):
    fid = form_id(app, "household_survey")
    token = attribute(fill_page(sup1, fid), "data-csrf-token")
    set_state(app, "household_survey", "closed")
    page = fill_page(sup1, fid)
    assert "Biểu mẫu đã đóng" in page and "importmap" not in page
    _eid, xml = survey(xforms)
    refused = send(sup1, fid, xml, token=token)
    assert refused.status_code == 409 and "đã đóng" in refused.get_json()["message"]
    assert rows(app, Submission) == []


def test_the_forms_pages_link_to_the_fill_page(app, sup1):
    fid = form_id(app, "support_visit")
    assert f'href="/forms/{fid}/fill">Điền phiếu</a>' in sup1.get("/forms").get_data(
        as_text=True)
    assert f'href="/forms/{fid}/fill">Điền phiếu</a>' in sup1.get(f"/forms/{fid}").get_data(
        as_text=True)
    # in English too, with the page's script texts
    sup1.post("/language", {"lang": "en", "next": "/forms"}, page="/forms")
    assert 'Fill in</a>' in sup1.get("/forms").get_data(as_text=True)
    page = fill_page(sup1, fid)
    assert attribute(page, "data-sent-more") == "A blank form is ready below."
