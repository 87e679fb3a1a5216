"""Form list, form download, manifest and media, as Collect uses them (openrosa.md §2–§3)."""

from __future__ import annotations

import hashlib
import re

from lxml import etree

from server.domain.generated_media import HOUSEHOLD_COLUMNS
from tests.openrosa.conftest import LOGO, PHOTO_FORM_MD, publish, set_state, xform_from_md

NS = {"x": "http://openrosa.org/xforms/xformsList"}


def test_form_list_is_openrosa(collect, photo_xml):
    forms = collect.form_list()  # parses as strictly as Collect; raises on any defect
    response = collect.last_response
    assert response.status == 200
    assert "text/xml" in response.headers.get("Content-Type")
    assert response.headers.get("X-OpenRosa-Version") == "1.0"
    assert response.headers.get("Date")
    assert {f["formID"] for f in forms} == {"household_survey", "support_visit", "photo_form"}
    for f in forms:
        assert f["name"] and f["version"]
        assert re.fullmatch(r"md5:[0-9a-f]{32}", f["rawHash"])
        assert f["downloadUrl"].startswith("http://localhost/v1/key/")
    survey = next(f for f in forms if f["formID"] == "household_survey")
    assert survey["name"] == "Khảo sát hộ gia đình – Tổ Công nghệ số cộng đồng"
    assert survey["version"] == "2026011501"


def test_form_list_filter_by_form_id(collect, photo_xml):
    forms = collect.form_list(form_id="household_survey")
    assert [f["formID"] for f in forms] == ["household_survey"]
    assert "formID=household_survey" in collect.last_response.request.url
    assert "deviceID=collect%3A" in collect.last_response.request.url


def test_download_matches_hash_and_ids(collect, photo_xml):
    for entry in collect.form_list():
        body = collect.download_form(entry)  # checks md5(body) == listed hash
        assert hashlib.md5(body).hexdigest() == entry["hash"]
        root = etree.fromstring(body)
        data = root.find(".//{http://www.w3.org/2002/xforms}instance")[0]
        assert data.get("id") == entry["formID"]
        assert data.get("version") == entry["version"]
        assert collect.download_form(entry) == body  # identical bytes every time


def test_closed_and_closing_forms_are_not_listed(app, collect, photo_xml):
    set_state(app, "photo_form", "closing")
    assert "photo_form" not in {f["formID"] for f in collect.form_list()}
    set_state(app, "photo_form", "closed")
    assert "photo_form" not in {f["formID"] for f in collect.form_list()}
    set_state(app, "photo_form", "open")
    assert "photo_form" in {f["formID"] for f in collect.form_list()}


def test_new_version_is_listed_and_old_url_still_serves_old_bytes(app, collect, photo_xml):
    old = next(f for f in collect.form_list() if f["formID"] == "photo_form")
    v2 = xform_from_md(PHOTO_FORM_MD.replace("| 1         |", "| 2         |"))
    publish(app, v2, {"logo.png": LOGO})
    new = next(f for f in collect.form_list() if f["formID"] == "photo_form")
    assert new["version"] == "2" and new["downloadUrl"] != old["downloadUrl"]
    assert collect.download_form(new) == v2
    assert collect.download_form(old) == photo_xml


def test_manifest_lists_media_with_true_md5(collect, photo_xml):
    entry = next(f for f in collect.form_list() if f["formID"] == "photo_form")
    media = collect.manifest(entry)
    assert [m["filename"] for m in media] == ["logo.png"]
    assert media[0]["hash"] == hashlib.md5(LOGO).hexdigest()
    assert collect.download_media(media[0]).body == LOGO


def test_form_without_media_has_no_manifest_url(app, collect, ward):
    publish(app, xform_from_md("""
| survey   |         |       |       |
|          | type    | name  | label |
|          | text    | a     | A     |
| settings |         |       |       |
|          | form_id | version |     |
|          | plain   | 1     |       |
"""))
    entry = next(f for f in collect.form_list() if f["formID"] == "plain")
    assert entry["manifestUrl"] is None


def test_media_etag_and_304_only_with_matching_validator(collect, photo_xml):
    entry = next(f for f in collect.form_list() if f["formID"] == "photo_form")
    media = collect.manifest(entry)[0]
    first = collect.download_media(media)
    etag = first.headers.get("ETag")
    assert first.status == 200 and etag == f'"{hashlib.md5(LOGO).hexdigest()}"'
    assert collect.download_media(media, etag=etag).status == 304
    assert collect.download_media(media, etag='"other"').status == 200
    assert collect.download_media(media).status == 200  # never 304 without If-None-Match


def test_entity_list_in_manifest(collect):
    entry = next(f for f in collect.form_list() if f["formID"] == "support_visit")
    media = {m["filename"]: m for m in collect.manifest(entry)}
    assert set(media) == {"households.csv", "members.csv", "volunteers.csv"}
    households = media["households.csv"]
    assert households["type"] == "entityList"
    assert households["integrityUrl"].endswith("/projects/1/datasets/households/integrity")
    assert "/v1/key/" in households["integrityUrl"]
    assert media["members.csv"]["type"] is None
    for m in media.values():
        body = collect.download_media(m).body
        assert not body.startswith(b"\xef\xbb\xbf")  # a BOM breaks Collect's `name` column
        assert hashlib.md5(body).hexdigest() == m["hash"]
    header = collect.download_media(households).body.decode().splitlines()[0]
    assert header.split(",") == list(HOUSEHOLD_COLUMNS)
    assert header.startswith("name,label,__version,")


def test_volunteers_csv_lists_active_volunteers(collect):
    entry = next(f for f in collect.form_list() if f["formID"] == "household_survey")
    media = {m["filename"]: m for m in collect.manifest(entry)}
    text = collect.download_media(media["volunteers.csv"]).body.decode("utf-8")
    assert text.splitlines() == ["name,label,tdp", "vol1,Hà Thị Thu – Tổ 1,tdp01"]


def test_unknown_form_and_media_are_404_with_message(collect, photo_xml):
    base = collect.server_url
    response = collect.get(f"{base}/forms/nope.xml")
    assert response.status == 404 and response.message
    response = collect.get(f"{base}/forms/photo_form/versions/1/attachments/missing.png")
    assert response.status == 404 and response.message
    response = collect.get(f"{base}/no/such/route")
    assert response.status == 404 and response.headers.get("X-OpenRosa-Version") == "1.0"


def test_urls_follow_the_proxy_or_the_configured_base(make_app):
    from tests.support.collect import Collect, FlaskTransport
    from tests.support.factories import make_ward

    app = make_app(TRUST_PROXY=1)
    ward = make_ward(app)
    c = Collect(f"http://localhost/v1/key/{ward.token}/projects/1", FlaskTransport(app))
    response = c.get(c.form_list_url, headers={"X-Forwarded-Proto": "https",
                                               "X-Forwarded-Host": "odk.ward.vn"})
    assert f"https://odk.ward.vn/v1/key/{ward.token}/projects/1/forms/" in response.text

    app = make_app(BASE_URL="https://data.ward.vn/odk")
    ward = make_ward(app)
    c = Collect(f"http://localhost/v1/key/{ward.token}/projects/1", FlaskTransport(app))
    assert f"https://data.ward.vn/odk/v1/key/{ward.token}/projects/1/forms/" in c.get(
        c.form_list_url).text


def test_form_list_follows_the_database_and_answers_304_while_unchanged(app, ward, tmp_path):
    """The form list is rendered once per state of the project's forms; a form published or
    closed by another app server on the same database shows at this one's next request."""
    from server import create_app

    other = create_app({key: app.config[key] for key in (
        "DATABASE_URL", "SECRET_KEY", "PID_KEY", "FORMS_DIR", "VALIDATE_FORMS", "TESTING")}
        | {"DATA_DIR": str(tmp_path / "other")})
    client = app.test_client()
    url = f"/v1/key/{ward.token}/projects/{ward.project_id}/formList"

    def ids(response) -> set[str]:
        root = etree.fromstring(response.data)
        return {x.text for x in root.iterfind("x:xform/x:formID", NS)}

    first = client.get(url)
    etag = first.headers["ETag"]
    assert first.status_code == 200 and "household_survey" in ids(first)
    unchanged = client.get(url, headers={"If-None-Match": etag})
    assert unchanged.status_code == 304 and unchanged.data == b""
    assert unchanged.headers["ETag"] == etag
    assert client.get(url, headers={"If-None-Match": '"other"'}).data == first.data

    publish(other, xform_from_md(PHOTO_FORM_MD))
    published = client.get(url, headers={"If-None-Match": etag})
    assert published.status_code == 200 and "photo_form" in ids(published)
    assert published.headers["ETag"] != etag

    set_state(other, "household_survey", "closed")
    closed = client.get(url, headers={"If-None-Match": published.headers["ETag"]})
    assert closed.status_code == 200 and "household_survey" not in ids(closed)
    assert ids(closed) == ids(published) - {"household_survey"}
    other.extensions["db"].dispose()


def test_token_form_list_follows_assignments_at_the_next_request(app, ward):
    """Assigning a form to a volunteer narrows its list at once; others keep every form."""
    from server.domain import accounts, assignments
    from server.domain import forms as forms_domain

    session = app.extensions["db"].session(write=True)
    vol2 = accounts.create_user(session, "vol2", "volunteer", project_id=ward.project_id,
                                team="tdp01").user
    token2 = accounts.collect_token(session, vol2, app.config["SECRET_KEY"])
    session.commit()
    client = app.test_client()

    def listed(token: str) -> tuple[set[str], str]:
        response = client.get(f"/v1/key/{token}/projects/{ward.project_id}/formList")
        assert response.status_code == 200
        root = etree.fromstring(response.data)
        return {x.text for x in root.iterfind("x:xform/x:formID", NS)}, response.headers["ETag"]

    everything, etag = listed(ward.token)
    assert everything == {"household_survey", "support_visit"}

    vol1 = accounts.get_user(session, "vol1")
    assignments.assign(session, forms_domain.get_form(session, ward.project_id,
                                                      "support_visit"), vol1)
    session.commit()
    narrowed, narrowed_etag = listed(ward.token)
    assert narrowed == {"support_visit"} and narrowed_etag != etag
    assert listed(token2)[0] == everything

    assignments.unassign(session, forms_domain.get_form(session, ward.project_id,
                                                        "support_visit"), vol1)
    session.commit()
    session.close()
    assert listed(ward.token) == (everything, etag)
