"""The forms page: versions and downloads for supervisors; publishing and state for admins."""

from __future__ import annotations

import html as html_lib
import io
from pathlib import Path

import openpyxl
from sqlalchemy import func, select

from server.db.models import AuditEntry, FormVersion
from server.domain import forms as forms_domain
from server.web.forms_page import MAX_UPLOAD_BODY, MAX_XLSFORM_BYTES
from tests.openrosa.test_entities import survey
from tests.support.collect import Part, multipart_body
from tests.web.conftest import csrf_token

FORMS = Path(__file__).resolve().parents[2] / "forms"
HOUSEHOLD = FORMS / "household_survey.xlsx"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def workbook(*, version: str | None = None, form_id: str | None = None, survey_rows=(),
             cells=()) -> bytes:
    """The repo's household survey with its settings changed, rows appended to the survey
    sheet (values by column header) and single cells set ((sheet, row, header, value))."""
    wb = openpyxl.load_workbook(HOUSEHOLD)
    settings = wb["settings"]
    head = {c.value: c.column for c in settings[1]}
    if version is not None:
        settings.cell(2, head["version"], value=version)
    if form_id is not None:
        settings.cell(2, head["form_id"], value=form_id)
    for sheet, row, header, value in cells:
        ws = wb[sheet]
        ws.cell(row, next(c.column for c in ws[1] if c.value == header), value=value)
    ws = wb["survey"]
    columns = {c.value: c.column for c in ws[1]}
    for values in survey_rows:
        row = ws.max_row + 1
        for header, value in values.items():
            if header not in columns:  # a new column at the right
                columns[header] = ws.max_column + 1
                ws.cell(1, columns[header], value=header)
            ws.cell(row, columns[header], value=value)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def upload(browser, path: str, data: bytes, filename: str = "household_survey.xlsx",
           page: str | None = None):
    """POST the file as a browser does (with "no file chosen", an empty part named ""); the
    body is built in memory (the test client would spool a large one to a temporary file
    that it never closes)."""
    html = browser.get(page or path).get_data(as_text=True)
    content_type, body = multipart_body([("csrf_token", csrf_token(html).encode()),
                                         Part("xlsform", data, filename, XLSX)])
    return browser.client.post(path, data=body, content_type=content_type)


def form_pk(app, form_id: str = "household_survey") -> int:
    session = app.extensions["db"].session()
    try:
        return forms_domain.get_form(session, 1, form_id).id
    finally:
        session.close()


def version_count(app) -> int:
    session = app.extensions["db"].session()
    try:
        return session.scalar(select(func.count()).select_from(FormVersion))
    finally:
        session.close()


def text_of(response) -> str:
    return html_lib.unescape(response.get_data(as_text=True))


def listed(collect) -> dict[str, str]:
    return {f["formID"]: f["version"] for f in collect.form_list()}


def test_the_list_shows_each_form_with_version_state_and_count(app, ward, sup1, add_household):
    add_household("Nguyễn Văn Hùng")
    page = text_of(sup1.get("/forms"))
    assert "household_survey" in page and "support_visit" in page
    assert "Khảo sát hộ gia đình – Tổ Công nghệ số cộng đồng" in page
    assert "2026011501" in page and "Đang mở" in page
    row = page.split("household_survey</code>", 1)[1].split("</tr>", 1)[0]
    assert ">1</a>" in row  # one submission, linked to the filtered list
    sup1.post("/language", {"lang": "en", "next": "/forms"}, page="/forms")
    english = text_of(sup1.get("/forms"))
    assert "<h1>Forms</h1>" in english and "Current version" in english and "Open" in english


def test_admin_publishes_a_new_version_that_collect_then_serves(app, ward, admin, collect):
    pk = form_pk(app)
    data = workbook(version="2026011502")
    response = upload(admin, f"/forms/{pk}/versions", data, page=f"/forms/{pk}")
    assert response.status_code == 302 and response.headers["Location"].endswith(f"/forms/{pk}")
    assert listed(collect)["household_survey"] == "2026011502"
    page = text_of(admin.get(f"/forms/{pk}"))
    assert "Đã đăng phiên bản 2026011502" in page
    assert "2026011501" in page  # the older version stays listed
    assert "Administrator" in page or "admin" in page
    # the downloads are exactly what was published and what Collect receives
    session = app.extensions["db"].session()
    try:
        new = session.scalar(select(FormVersion).where(FormVersion.version == "2026011502"))
        entry = next(f for f in collect.form_list() if f["formID"] == "household_survey")
        assert admin.get(f"/forms/{pk}/versions/{new.id}/xform").data == \
            collect.download_form(entry)
        xlsx = admin.get(f"/forms/{pk}/versions/{new.id}/xlsform")
        assert xlsx.data == data and "household_survey.xlsx" in xlsx.headers[
            "Content-Disposition"]
        audit = session.scalar(select(AuditEntry).where(AuditEntry.action == "form.publish"))
        assert audit.target == "household_survey" and audit.details["version"] == "2026011502"
        # generated attachments (the households entity list) follow the new version
        names = {m["filename"] for m in collect.manifest(entry)}
        assert "households.csv" in names
    finally:
        session.close()


def test_a_new_form_is_published_from_the_list(app, ward, admin, collect):
    data = workbook(form_id="household_pilot", version="1")
    household = form_pk(app)
    wrong = upload(admin, f"/forms/{household}/versions", data, page=f"/forms/{household}")
    assert wrong.status_code == 400
    assert "Tệp này là biểu mẫu household_pilot, không phải household_survey" in text_of(wrong)
    assert "household_pilot" not in listed(collect)
    response = upload(admin, "/forms", data, filename="Khảo sát thử.xlsx")
    assert response.status_code == 302
    assert listed(collect)["household_pilot"] == "1"
    pk = form_pk(app, "household_pilot")
    page = text_of(admin.get(f"/forms/{pk}"))
    assert "household_pilot" in page and "XLSForm (.xlsx)" in page


def test_new_version_keeps_the_media_of_the_current_one(app, ward, admin, collect):
    picture = b"\x89PNG\r\n\x1a\n" + b"logo" * 100
    note = {"type": "note", "name": "n_logo", "label::Tiếng Việt (vi)": "Logo",
            "label::English (en)": "Logo", "media::image": "logo.png"}
    session = app.extensions["db"].session(write=True)
    try:  # the first version comes with its file, as `forms publish` reads X-media/
        forms_domain.publish_file(session, app.extensions["blobs"], 1, "household_survey.xlsx",
                                  workbook(version="2026011502", survey_rows=[note]),
                                  media={"logo.png": picture}, validate=False)
        session.commit()
    finally:
        session.close()
    pk = form_pk(app)
    response = upload(admin, f"/forms/{pk}/versions",
                      workbook(version="2026011503", survey_rows=[note]), page=f"/forms/{pk}")
    assert response.status_code == 302
    entry = next(f for f in collect.form_list() if f["formID"] == "household_survey")
    assert entry["version"] == "2026011503"
    logo = next(m for m in collect.manifest(entry) if m["filename"] == "logo.png")
    assert collect.download_media(logo).body == picture
    page = admin.get(f"/forms/{pk}").get_data(as_text=True)
    media_urls = [part.split('"', 1)[0] for part in page.split('href="')[1:]
                  if "/media/" in part.split('"', 1)[0]]
    assert media_urls and all(admin.get(u).data == picture for u in media_urls)


def test_a_broken_xlsform_shows_sheet_and_row_and_stores_nothing(app, ward, admin, collect):
    pk = form_pk(app)
    before = version_count(app)
    broken = workbook(version="2026011502", cells=[("survey", 9, "name", "bad name!")])
    response = upload(admin, f"/forms/{pk}/versions", broken, page=f"/forms/{pk}")
    assert response.status_code == 400
    page = text_of(response)
    assert "Không đăng được biểu mẫu" in page
    assert "[row : 9]" in page and "'survey' sheet" in page
    assert version_count(app) == before
    assert listed(collect)["household_survey"] == "2026011501"


def test_same_version_with_other_content_is_refused(app, ward, admin, collect):
    pk = form_pk(app)
    before = version_count(app)
    changed = workbook(cells=[("survey", 9, "label::English (en)", "Changed label")])
    response = upload(admin, f"/forms/{pk}/versions", changed, page=f"/forms/{pk}")
    assert response.status_code == 409
    page = text_of(response)
    assert "Phiên bản 2026011501 của biểu mẫu household_survey đã được đăng với nội dung khác" \
        in page
    assert version_count(app) == before
    entry = next(f for f in collect.form_list() if f["formID"] == "household_survey")
    assert entry["version"] == "2026011501"
    # re-uploading the very file already published changes nothing and is no error
    original = HOUSEHOLD.read_bytes()
    assert upload(admin, "/forms", original).status_code == 302
    assert version_count(app) == before


def test_other_files_and_oversized_uploads_are_refused(app, ward, admin):
    before = version_count(app)
    csv = upload(admin, "/forms", b"type,name\ntext,q1\n", filename="survey.csv")
    assert csv.status_code == 415 and "Chỉ nhận tệp XLSForm" in text_of(csv)
    renamed = upload(admin, "/forms", b"<h:html>not a workbook</h:html>", filename="form.xlsx")
    assert renamed.status_code == 415
    none = upload(admin, "/forms", b"", filename="")
    assert none.status_code == 400 and "Hãy chọn một tệp" in text_of(none)
    big = b"PK\x03\x04" + b"\0" * MAX_XLSFORM_BYTES
    response = upload(admin, "/forms", big, filename="big.xlsx")
    assert response.status_code == 413
    assert f"tối đa {MAX_XLSFORM_BYTES // (1024 * 1024)} MB" in text_of(response)
    # a body beyond the request limit is cut off before it is read
    huge = upload(admin, "/forms", b"PK\x03\x04" + b"\0" * MAX_UPLOAD_BODY, filename="h.xlsx")
    assert huge.status_code == 413
    assert version_count(app) == before


def test_supervisor_reads_and_downloads_but_never_changes(app, ward, sup1, collect):
    pk = form_pk(app)
    page = sup1.get(f"/forms/{pk}").get_data(as_text=True)
    assert "xlsform" in page and 'name="xlsform"' not in page and "/state" not in page
    session = app.extensions["db"].session()
    try:
        version = session.scalar(select(FormVersion).where(FormVersion.version == "2026011501"))
        xml, xlsx = version.xml, version.xlsform
    finally:
        session.close()
    assert sup1.get(f"/forms/{pk}/versions/{version.id}/xform").data == xml
    assert sup1.get(f"/forms/{pk}/versions/{version.id}/xlsform").data == xlsx == \
        HOUSEHOLD.read_bytes()
    before = version_count(app)
    new = workbook(version="2026011502")
    assert upload(sup1, f"/forms/{pk}/versions", new, page=f"/forms/{pk}").status_code == 403
    assert upload(sup1, "/forms", new).status_code == 403
    assert sup1.post(f"/forms/{pk}/state", {"state": "closed"},
                     page=f"/forms/{pk}").status_code == 403
    assert version_count(app) == before
    assert listed(collect)["household_survey"] == "2026011501"


def test_volunteers_and_strangers_never_reach_the_page(app, ward, browser):
    stranger = browser()
    assert stranger.get("/forms").status_code == 302
    volunteer = browser(remote_addr="10.0.0.9")
    volunteer.login("vol1", "anything")
    response = volunteer.get("/forms")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_state_change_hides_and_closes_the_form_for_collect(app, ward, admin, collect, xforms):
    pk = form_pk(app)
    assert admin.post(f"/forms/{pk}/state", {"state": "closing"},
                      page=f"/forms/{pk}").status_code == 302
    assert "household_survey" not in listed(collect)
    assert "Sắp đóng" in text_of(admin.get("/forms"))
    _id, xml = survey(xforms, head="Lê Thị Mai")
    assert collect.submit(xml)[0].status == 201  # closing still accepts filled forms
    admin.post(f"/forms/{pk}/state", {"state": "closed"}, page=f"/forms/{pk}")
    _id, xml = survey(xforms, head="Phạm Văn Nam")
    assert collect.submit(xml)[0].status == 409
    assert admin.post(f"/forms/{pk}/state", {"state": "gone"},
                      page=f"/forms/{pk}").status_code == 400
    admin.post(f"/forms/{pk}/state", {"state": "open"}, page=f"/forms/{pk}")
    assert "household_survey" in listed(collect)
    session = app.extensions["db"].session()
    try:
        changes = session.scalars(select(AuditEntry.details).where(
            AuditEntry.action == "form.state").order_by(AuditEntry.id)).all()
    finally:
        session.close()
    assert [c["after"] for c in changes] == ["closing", "closed", "open"]
