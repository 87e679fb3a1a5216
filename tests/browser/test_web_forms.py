"""A team leader fills forms in a real browser with ODK Web Forms (/forms/<id>/fill): a support
visit to a household picked from the entity list our households.csv gives, then a new
household with a second member and a photo. What Send stores is what a phone's submission
stores: the entity update or the new household, a row in the review list and in the raw
export, with the team leader as the submitter."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import pytest
from PIL import Image
from playwright.sync_api import expect
from sqlalchemy import select

from server.db.models import Attachment, Entity, EntityVersion, Form, Submission, User
from server.db.models import SubmissionVersion as SV
from tests.browser.conftest import TIMEZONE, serving
from tests.openrosa.test_entities import survey
from tests.support.collect import Collect, HttpTransport
from tests.support.factories import PASSWORD, make_ward

expect.set_options(timeout=30_000)  # the first load compiles a 4 MB bundle on a busy machine


@dataclass
class Site:
    base_url: str
    app: object  # reads what the served app stored (same database)
    today: str  # in the server's time zone

    def rows(self, query):
        with self.app.extensions["db"].session() as db:
            return list(db.execute(query).all())


@pytest.fixture
def site(browser, make_app):
    """The real server on the suite's database, with one household in tdp01 and one in tdp02
    sent by vol1's phone."""
    app = make_app()
    ward = make_ward(app)
    with serving(app) as server:
        url = f"{server.base_url}/v1/key/{ward.token}/projects/{ward.project_id}"
        with HttpTransport() as transport:
            phone = Collect(url, transport)
            xforms = {f["formID"]: phone.download_form(f) for f in phone.form_list()}
            for head, tdp in (("Lý Văn Tâm", "tdp01"), ("Lê Thị Lan", "tdp02")):
                _id, xml = survey(xforms, head=head, tdp=tdp,
                                  extra={"g_addr/house_no": "21"})
                assert phone.submit(xml)[0].status == 201
        today = dt.datetime.now(ZoneInfo(TIMEZONE)).date().isoformat()
        yield Site(server.base_url, app, today)


def question(page, label: str, within=None):
    """The question labelled `label`, on the page or within one repeat instance."""
    return (within or page).locator(".question-container").filter(
        has=page.get_by_text(label, exact=True))


def pick(page, label: str, value: str, within=None) -> None:
    """A radio button or checkbox of a question (Web Forms' ids end in _<value>)."""
    question(page, label, within).locator(f'label[for$="_{value}"]').click()


def type_number(container, text: str) -> None:
    # PrimeVue's InputNumber takes keystrokes, not fill()
    box = container.locator("input[role=spinbutton]")
    box.press_sequentially(text)
    box.press("Tab")


def test_team_leader_fills_and_sends_forms_in_the_browser(browser, site, tmp_path):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(30_000)
    page = context.new_page()
    try:
        page.goto(f"{site.base_url}/login")
        page.get_by_label("Tên đăng nhập").fill("sup1")
        page.get_by_label("Mật khẩu").fill(PASSWORD)
        page.get_by_role("button", name="Đăng nhập").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Tổng quan")
        visits_a_household_from_the_list(page, site)
        surveys_a_new_household_with_a_photo(page, site, tmp_path)
    finally:
        context.close()


def open_fill_page(page, title: str):
    """From the forms page, as a team leader finds it; returns households.csv as served."""
    page.get_by_role("navigation").get_by_role("link", name="Mẫu phiếu", exact=True).click()
    row = page.get_by_role("row").filter(has=page.get_by_role("link", name=title))
    with page.expect_response(re.compile(r"/fill/households\.csv$")) as listed:
        row.get_by_role("link", name="Điền phiếu").click()
    expect(page.get_by_role("heading", name=f"Điền phiếu: {title}")).to_be_visible()
    return list(csv.DictReader(io.StringIO(listed.value.text())))


def visits_a_household_from_the_list(page, site):
    listed = open_fill_page(page, "Phiếu hỗ trợ cầm tay chỉ việc – Tổ Công nghệ số cộng đồng")
    # the list the form got is the one sup1's phone gets: its own tổ
    assert [r["head_name"] for r in listed] == ["Lý Văn Tâm"]
    [household] = listed
    pick(page, "Tổ dân phố", "tdp01")
    question(page, "Chọn hộ (gõ tên chủ hộ hoặc số nhà để tìm)").get_by_role("combobox").click()
    options = page.get_by_role("option")
    expect(options).to_have_count(1)
    options.filter(has_text="Lý Văn Tâm").click()
    expect(page.get_by_text(re.compile("^Hộ: Lý Văn Tâm – "))).to_be_visible()  # from the CSV
    pick(page, "Hình thức hỗ trợ", "home")
    pick(page, "Nội dung hỗ trợ", "ecommerce")  # for the household: nobody to name
    page.locator('label[for$="_done"]').click()  # its label names the service chosen
    type_number(question(page, "Tổng thời gian hỗ trợ (phút)"), "35")
    pick(page, "Mức độ hài lòng của người dân", "very")
    page.get_by_role("button", name="Send").click()
    status = page.get_by_role("status")
    expect(status).to_contain_text("Đã gửi phiếu.")
    expect(question(page, "Tổ dân phố").locator("input:checked")).to_have_count(0)  # fresh

    # stored as sup1's visit, and the household's entity was updated by it
    [(sup1,)] = site.rows(select(User.id).where(User.username == "sup1"))
    [(submitter, device)] = site.rows(
        select(Submission.submitter_id, Submission.device_id).join(Form)
        .where(Form.xml_form_id == "support_visit"))
    assert (submitter, device) == (sup1, None)
    [(entity,)] = site.rows(select(Entity).where(Entity.id == household["name"]))
    assert entity.version == 2 and household["__version"] == "1"
    assert entity.properties["last_visitor"] == "sup1"  # the page names the user to the form
    assert entity.properties["last_visit_date"] == site.today
    assert entity.properties["needs_followup"] == "no"
    assert [v for (v,) in site.rows(select(EntityVersion.source)
                                     .where(EntityVersion.entity_id == entity.id)
                                     .order_by(EntityVersion.version))] == [
        "submission", "submission"]

    # its page, and the review list, name the team leader as the sender
    status.get_by_role("link", name="Xem phiếu vừa gửi").click()
    expect(page.locator("main")).to_contain_text("Lý Văn Tâm")
    page.get_by_role("navigation").get_by_role("link", name="Phiếu", exact=True).click()
    row = page.get_by_role("row").filter(has_text="Phiếu hỗ trợ cầm tay chỉ việc")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("Trần Văn Giám")
    [row] = export_rows(page, site, "support_visit", "support_visit")
    assert row["SubmitterName"] == "Trần Văn Giám"
    assert row["g_hh-hh"] == household["name"] and row["g_close-minutes"] == "35"
    assert row["e_last_visitor"] == "sup1"


def surveys_a_new_household_with_a_photo(page, site, tmp_path):
    open_fill_page(page, "Khảo sát hộ gia đình – Tổ Công nghệ số cộng đồng")
    pick(page, "Tổ dân phố", "tdp01")
    pick(page, "Hộ này đã có trong danh sách của tổ chưa?", "new")
    pick(page, "Kết quả tiếp cận hộ", "met")
    pick(page, "Sau khi nghe giới thiệu mục đích khảo sát, chủ hộ (hoặc người đại diện) có đồng ý "
         "cung cấp thông tin không?", "yes")
    pick(page, "Đường/phố", "st01")
    question(page, "Số nhà").locator("input").fill("45")
    question(page, "Họ và tên chủ hộ").locator("input").fill("Phan Văn Bình")
    type_number(question(page, "Năm sinh của chủ hộ"), "1970")
    pick(page, "Giới tính của chủ hộ", "male")
    pick(page, "Chủ hộ có đồng ý cung cấp số định danh cá nhân (12 số trên thẻ Căn cước/CCCD) để "
         "tránh ghi trùng hộ không?", "no")
    type_number(question(page, "Số người trong hộ (cùng ăn ở thường xuyên, kể cả chủ hộ)"), "2")

    head, child = (page.locator(".p-panel.is-repeat").nth(i) for i in (0, 1))
    pick(page, "Có điện thoại thông minh để dùng (riêng hoặc dùng chung)?", "yes", within=head)
    for skill in ("call_msg", "search"):
        pick(page, "Người này tự làm được những việc nào?", skill, within=head)
    pick(page, "Tài khoản định danh điện tử VNeID", "l1", within=head)
    for label in ("Có tài khoản và tự đăng nhập được Cổng Dịch vụ công quốc gia?",
                  "Trong 3 tháng qua có thanh toán không dùng tiền mặt (ứng dụng ngân hàng, "
                  "ví điện tử, mã QR)?",
                  "Có chữ ký số cá nhân (chữ ký số công cộng, kể cả ký số từ xa trên điện "
                  "thoại)?",
                  "Có cài và đăng nhập được ứng dụng VssID?",
                  "Đã xem được sổ sức khỏe điện tử của mình (trên VNeID)?",
                  "Đã đăng ký học trên nền tảng Bình dân học vụ số?"):
        pick(page, label, "no", within=head)
    question(page, "Họ và tên thành viên số 2", within=child).locator("input").fill("Phan Thị Hoa")
    pick(page, "Quan hệ với chủ hộ", "grandchild", within=child)
    type_number(question(page, "Năm sinh", within=child), "2020")
    pick(page, "Giới tính", "female", within=child)

    pick(page, "Hộ đã được thông tin về các chương trình chuyển đổi số (Đề án 06, Bình dân học vụ "
         "số, dịch vụ công trực tuyến...) chưa?", "now")
    pick(page, "Hộ truy cập Internet bằng cách nào?", "mobile")
    pick(page, "Hộ có con em đang đi học (mầm non đến THPT)?", "no")
    pick(page, "Hộ có kinh doanh, buôn bán hoặc làm dịch vụ (kể cả bán hàng tại nhà)?", "no")
    # nobody in the household is capable yet: a volunteer of volunteers.csv is assigned
    pick(page, "Thành viên Tổ được phân công hỗ trợ", "vol1")
    photo = tmp_path / "house.jpg"
    Image.new("RGB", (64, 48), (200, 120, 40)).save(photo, "JPEG")
    page.locator('input[type=file][accept="image/*"]').set_input_files(photo)
    expect(page.get_by_alt_text("Captured image preview")).to_be_visible()  # once it is read
    page.get_by_role("button", name="Send").click()
    expect(page.get_by_role("status")).to_contain_text("Đã gửi phiếu.")

    # a new household of tdp01, with the photo under the name Web Forms gave it
    [(entity,)] = site.rows(select(Entity).where(Entity.label.contains("Phan Văn Bình")))
    assert entity.version == 1 and entity.tdp == "tdp01"
    assert entity.properties["head_name"] == "Phan Văn Bình"
    assert entity.properties["n_members"] == "2" and entity.properties["helper"] == "vol1"
    [(created_by,)] = site.rows(select(EntityVersion.submission_version_id)
                                .where(EntityVersion.entity_id == entity.id))
    [(name, blob)] = site.rows(select(Attachment.name, Attachment.blob_sha256)
                               .where(Attachment.submission_version_id == created_by))
    assert re.fullmatch(r"\d+\.jpg", name) and blob is not None
    [(submitter,)] = site.rows(select(SV.submitter_id).where(SV.id == created_by))
    assert submitter == site.rows(select(User.id).where(User.username == "sup1"))[0][0]

    page.get_by_role("navigation").get_by_role("link", name="Phiếu", exact=True).click()
    row = page.get_by_role("row").filter(has=page.get_by_role("link", name=re.compile(
        "Phan Văn Bình")))
    expect(row).to_contain_text("Trần Văn Giám")
    [survey_row] = [r for r in export_rows(page, site, "household_survey", "household_survey")
                    if r["g_head-head_name"] == "Phan Văn Bình"]
    assert survey_row["g_addr-house_no"] == "45" and survey_row["g_members-n_members"] == "2"
    assert survey_row["g_end-house_photo"] == name
    assert survey_row["SubmitterName"] == "Trần Văn Giám"
    members = [r for r in export_rows(page, site, "household_survey",
                                      "household_survey-members")
               if r["PARENT_KEY"] == survey_row["KEY"]]
    assert [m["m_name_eff"] for m in members] == ["Phan Văn Bình", "Phan Thị Hoa"]


def export_rows(page, site, form_id: str, table: str) -> list[dict]:
    """A raw export table, downloaded with the team leader's session."""
    response = page.request.get(f"{site.base_url}/exports/submissions/{form_id}/{table}.csv")
    assert response.ok, response.status
    return list(csv.DictReader(io.StringIO(response.body().decode("utf-8-sig"))))
