"""Forms through Central's API as pyodk drives it: list and read, create (XForm or XLSForm),
drafts with their attachments, publishing; and what Collect sees meanwhile."""

from __future__ import annotations

import hashlib
import io

import pytest
from openpyxl import Workbook

from server.db.models import Form, FormVersion
from tests.openrosa.conftest import LOGO, PHOTO_FORM_MD, rows, xform_from_md
from tests.support import instances
from tests.web.conftest import Browser

FORM_KEYS = {"projectId", "xmlFormId", "version", "hash", "state", "createdAt", "name",
             "enketoId", "keyId", "updatedAt", "publishedAt"}
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
NEW_LOGO = b"\x89PNG\r\n\x1a\n the new logo"


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()  # noqa: S324


def photo_form(version: str = "1") -> bytes:
    return xform_from_md(PHOTO_FORM_MD.replace("| 1         |", f"| {version:<9} |"))


def xlsx(survey: list[list[str]], settings: list[list[str]] | None = None) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "survey"
    for row in survey:
        sheet.append(row)
    if settings:
        extra = workbook.create_sheet("settings")
        for row in settings:
            extra.append(row)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def post_file(api, path: str, data: bytes, content_type: str = "application/xml", **kw):
    return api.post(path, data=data, content_type=content_type, **kw)


def chunked(api, path: str, data: bytes):
    """An upload as pyodk sends it: Transfer-Encoding chunked, no Content-Length (the WSGI
    server, gunicorn, then marks the input as terminated)."""
    return api.post(path, input_stream=io.BytesIO(data),
                    headers={"Transfer-Encoding": "chunked", "Content-Type": "image/png"},
                    environ_overrides={"wsgi.input_terminated": True})


def listed(collect) -> dict[str, dict]:
    return {f["formID"]: f for f in collect.form_list()}


@pytest.fixture
def forms_url(ward):
    return f"/v1/projects/{ward.project_id}/forms"


# Reading -------------------------------------------------------------------------------------


def test_supervisors_list_and_read_forms_with_every_key_pyodk_needs(app, ward, supervisor_api,
                                                                    forms_url):
    forms = supervisor_api.get(forms_url).get_json()
    assert [f["xmlFormId"] for f in forms] == ["household_survey", "support_visit"]
    assert all(set(f) >= FORM_KEYS for f in forms)
    one = supervisor_api.get(f"{forms_url}/household_survey").get_json()
    assert one == forms[0]
    assert one["version"] == "2026011501" and one["state"] == "open"
    assert one["publishedAt"].endswith("Z") and one["enketoId"] is None
    xml = supervisor_api.get(f"{forms_url}/household_survey.xml").data
    assert one["hash"] == md5(xml)
    missing = supervisor_api.get(f"{forms_url}/nope")
    assert missing.status_code == 404 and missing.get_json()["code"] == 404.1


def test_supervisors_cannot_create_forms_or_drafts(app, ward, supervisor_api, forms_url):
    refused = post_file(supervisor_api, forms_url, photo_form())
    assert refused.status_code == 403 and refused.get_json()["code"] == 403.1
    assert supervisor_api.post(f"{forms_url}/household_survey/draft").status_code == 403
    assert rows(app, Form, Form.xml_form_id == "photo_form") == []


def test_published_attachments_show_the_entity_list_the_server_builds(admin_api, forms_url):
    files = admin_api.get(f"{forms_url}/support_visit/attachments").get_json()
    households = next(f for f in files if f["name"] == "households.csv")
    assert households["exists"] and households["datasetExists"]
    assert not households["blobExists"] and households["type"] == "file"


# Creating ------------------------------------------------------------------------------------


def test_a_new_form_is_a_draft_until_published_with_its_files(app, ward, admin_api, collect,
                                                              forms_url):
    created = post_file(admin_api, f"{forms_url}?ignoreWarnings=True&publish=False",
                        photo_form())
    body = created.get_json()
    assert created.status_code == 200, body
    assert set(body) >= FORM_KEYS and body["xmlFormId"] == "photo_form"
    assert body["version"] == "1" and body["publishedAt"] is None
    assert body["hash"] == md5(photo_form())
    listed_api = {f["xmlFormId"]: f for f in admin_api.get(forms_url).get_json()}
    assert listed_api["photo_form"]["publishedAt"] is None
    # Collect sees nothing of a draft, and the form's XML URL has no published version
    assert "photo_form" not in listed(collect)
    assert admin_api.get(f"{forms_url}/photo_form.xml").status_code == 404

    files = admin_api.get(f"{forms_url}/photo_form/draft/attachments").get_json()
    assert files == [{"name": "logo.png", "type": "image", "hash": None, "exists": False,
                      "blobExists": False, "datasetExists": False, "updatedAt": None}]
    uploaded = chunked(admin_api, f"{forms_url}/photo_form/draft/attachments/logo.png", LOGO)
    assert uploaded.status_code == 200, uploaded.get_json()
    assert uploaded.get_json()["exists"] and uploaded.get_json()["hash"] == md5(LOGO)
    published = admin_api.post(f"{forms_url}/photo_form/draft/publish")
    assert published.get_json() == {"success": True}

    entry = listed(collect)["photo_form"]
    assert entry["version"] == "1" and collect.download_form(entry) == photo_form()
    [logo] = collect.manifest(entry)
    assert logo["hash"] == md5(LOGO)
    assert collect.download_media(logo).body == LOGO
    assert admin_api.get(f"{forms_url}/photo_form").get_json()["publishedAt"].endswith("Z")
    assert admin_api.get(f"{forms_url}/photo_form/draft").status_code == 404


def test_an_xlsform_takes_the_fallback_form_id_and_publishes_at_once(app, ward, admin_api,
                                                                     collect, forms_url):
    workbook = xlsx([["type", "name", "label"], ["text", "ghi_chu", "Ghi chú"]])
    created = post_file(admin_api, f"{forms_url}?ignoreWarnings=True&publish=True", workbook,
                        XLSX, headers={"X-XlsForm-FormId-Fallback": "ghi_chu_nhanh"})
    assert created.status_code == 200, created.get_json()
    assert created.get_json()["xmlFormId"] == "ghi_chu_nhanh"
    assert created.get_json()["publishedAt"] is not None
    assert "ghi_chu_nhanh" in listed(collect)
    [version] = rows(app, FormVersion, FormVersion.title == "ghi_chu_nhanh")
    assert version.xlsform == workbook  # the workbook is kept, as for the forms page


def test_xlsform_warnings_refuse_the_form_unless_ignored(app, ward, admin_api, forms_url):
    # pyxform warns about an image question without max-pixels
    workbook = xlsx([["type", "name", "label"], ["image", "anh", "Ảnh"]],
                    [["form_id", "version"], ["anh_nha", "1"]])
    refused = post_file(admin_api, f"{forms_url}?ignoreWarnings=False", workbook, XLSX)
    assert refused.status_code == 400 and refused.get_json()["code"] == 400.16
    assert "max-pixels" in refused.get_json()["message"]
    assert rows(app, Form, Form.xml_form_id == "anh_nha") == []
    accepted = post_file(admin_api, f"{forms_url}?ignoreWarnings=True", workbook, XLSX)
    assert accepted.status_code == 200 and accepted.get_json()["xmlFormId"] == "anh_nha"


def test_bad_definitions_are_clear_400s_and_store_nothing(app, ward, admin_api, forms_url):
    broken = xlsx([["type", "name", "label"], ["no_such_type", "x", "X"]])
    answer = post_file(admin_api, forms_url, broken, XLSX)
    assert answer.status_code == 400 and answer.get_json()["code"] == 400.15
    assert "no_such_type" in answer.get_json()["message"]
    xls = post_file(admin_api, forms_url, b"\xd0\xcf\x11\xe0 old excel", "application/vnd.ms-excel")
    assert xls.status_code == 400 and ".xlsx" in xls.get_json()["message"]
    junk = post_file(admin_api, forms_url, b"<not an xform/>")
    assert junk.status_code == 400 and junk.get_json()["code"] == 400.1
    assert admin_api.post(forms_url, json={}).status_code == 400
    empty = post_file(admin_api, forms_url, b"")
    assert empty.status_code == 400 and empty.get_json()["code"] == 400.2
    assert len(rows(app, Form)) == 2


def test_an_existing_form_id_is_409_3(app, ward, admin_api, forms_url):
    xml = admin_api.get(f"{forms_url}/support_visit.xml").data
    answer = post_file(admin_api, forms_url, xml)
    assert answer.status_code == 409 and answer.get_json()["code"] == 409.3


# Updating through a draft ----------------------------------------------------------------------


@pytest.fixture
def photo(app, ward, admin_api, forms_url, collect):
    """The photo form published through the API with its logo."""
    assert post_file(admin_api, f"{forms_url}?publish=True", photo_form()).status_code == 200
    # a form created published has no draft: its files come with a new draft
    admin_api.post(f"{forms_url}/photo_form/draft")
    chunked(admin_api, f"{forms_url}/photo_form/draft/attachments/logo.png", LOGO)
    assert admin_api.post(f"{forms_url}/photo_form/draft/publish?version=1.1").status_code == 200
    return listed(collect)["photo_form"]


def test_new_files_only_publish_under_a_new_version(app, ward, admin_api, forms_url, collect,
                                                    photo):
    """pyodk's forms.update(attachments=…): a draft copied from the current version, the
    files, then publish with ?version=<a timestamp>."""
    assert photo["version"] == "1.1"
    assert admin_api.post(f"{forms_url}/photo_form/draft").get_json() == {"success": True}
    draft = admin_api.get(f"{forms_url}/photo_form/draft").get_json()
    assert draft["version"] == "1.1" and draft["publishedAt"] is None
    files = admin_api.get(f"{forms_url}/photo_form/draft/attachments").get_json()
    assert files[0]["exists"] and files[0]["hash"] == md5(LOGO)  # copied with the version
    url = f"{forms_url}/photo_form/draft/attachments"
    assert chunked(admin_api, f"{url}/logo.png", NEW_LOGO).status_code == 200
    unknown = chunked(admin_api, f"{url}/other.png", NEW_LOGO)
    assert unknown.status_code == 404 and unknown.get_json()["code"] == 404.1
    assert listed(collect)["photo_form"] == photo  # Collect still gets the published version

    same = admin_api.post(f"{forms_url}/photo_form/draft/publish")
    assert same.status_code == 409 and same.get_json()["code"] == 409.6
    taken = admin_api.post(f"{forms_url}/photo_form/draft/publish?version=1")
    assert taken.status_code == 409  # the first version, replaced by 1.1 but published once
    ok = admin_api.post(f"{forms_url}/photo_form/draft/publish?version=2026-11-26T10:00:00")
    assert ok.get_json() == {"success": True}

    new = listed(collect)["photo_form"]
    assert new["version"] == "2026-11-26T10:00:00"
    xml = collect.download_form(new)  # checks the listed md5
    assert b'version="2026-11-26T10:00:00"' in xml
    assert collect.download_media(collect.manifest(new)[0]).body == NEW_LOGO
    # the version before keeps its own bytes (download_form checks the md5) and file
    assert b'version="1.1"' in collect.download_form(photo)
    assert collect.download_media(collect.manifest(photo)[0]).body == LOGO


def test_a_draft_with_a_new_definition_keeps_the_files_of_the_same_name(
        app, ward, admin_api, forms_url, collect, photo):
    answer = post_file(admin_api, f"{forms_url}/photo_form/draft", photo_form("2"))
    assert answer.get_json() == {"success": True}
    files = admin_api.get(f"{forms_url}/photo_form/draft/attachments").get_json()
    assert files[0]["name"] == "logo.png" and files[0]["hash"] == md5(LOGO)
    wrong = post_file(admin_api, f"{forms_url}/photo_form/draft",
                      admin_api.get(f"{forms_url}/support_visit.xml").data)
    assert wrong.status_code == 400 and wrong.get_json()["code"] == 400.8
    assert admin_api.get(f"{forms_url}/photo_form/draft").get_json()["version"] == "2"
    assert admin_api.post(f"{forms_url}/photo_form/draft/publish").status_code == 200
    entry = listed(collect)["photo_form"]
    assert entry["version"] == "2" and collect.download_form(entry) == photo_form("2")
    assert collect.download_media(collect.manifest(entry)[0]).body == LOGO


def test_a_draft_takes_no_submission_and_has_no_version_url(app, ward, admin_api, forms_url,
                                                            collect, photo):
    post_file(admin_api, f"{forms_url}/photo_form/draft", photo_form("2"))
    base = f"{forms_url}/photo_form/versions"
    assert admin_api.get(f"{base}/2.xml").status_code == 404
    assert admin_api.get(f"{base}/%1Fdraft.xml").status_code == 404
    instance = instances.build(photo_form("2"), {"name": "Lan"})
    [answer] = collect.submit(instance)
    assert answer.status == 404  # this version is not published
    api_form = admin_api.get(f"{forms_url}/photo_form").get_json()
    assert api_form["version"] == "1.1"  # the list shows the published version


def test_the_forms_page_lists_published_versions_only(app, ward, admin_api, forms_url, photo):
    post_file(admin_api, f"{forms_url}/photo_form/draft", photo_form("9.9"))
    web = Browser(app)
    assert web.login("admin").status_code == 302
    [form] = rows(app, Form, Form.xml_form_id == "photo_form")
    page = web.get(f"/forms/{form.id}").get_data(as_text=True)
    assert "1.1" in page and "9.9" not in page
