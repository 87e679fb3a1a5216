"""A team leader's day in a real browser: log in, read the dashboard, review a submission,
decide a duplicate pair, download the month's report, and set up a volunteer's phone from
the QR code the page draws (openrosa.md §8). Then one page at a phone's width."""

from __future__ import annotations

import base64
import csv
import io
import re
import zlib

import zxingcpp
from PIL import Image
from playwright.sync_api import expect

from tests.support.collect import Collect, HttpTransport, decode_qr
from tests.support.factories import PASSWORD

expect.set_options(timeout=20_000)  # a busy CI machine; a pass is never slowed by it


def log_in(page, base_url: str, username: str = "sup1") -> None:
    page.goto(f"{base_url}/login")
    page.get_by_label("Tên đăng nhập").fill(username)
    page.get_by_label("Mật khẩu").fill(PASSWORD)
    page.get_by_role("button", name="Đăng nhập").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Tổng quan")


def menu(page, name: str):
    return page.get_by_role("navigation").get_by_role("link", name=name, exact=True)


def read_qr(png: bytes) -> str:
    found = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)).convert("L"))
    assert len(found) == 1, f"{len(found)} codes read from the screenshot"
    assert found[0].format == zxingcpp.BarcodeFormat.QRCode
    assert found[0].ec_level == "L"  # as Collect's own generator makes them
    return found[0].text


def test_team_leader_in_a_browser(browser, live, tmp_path):
    """One server for both runs: starting it is the slow part."""
    reviews_decides_downloads_and_sets_up_a_phone(browser, live, tmp_path)
    submissions_page_fits_a_phone(browser, live)


def reviews_decides_downloads_and_sets_up_a_phone(browser, live, tmp_path):
    context = browser.new_context(accept_downloads=True, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(20_000)
    page = context.new_page()
    try:
        # Vietnamese first, before anyone chose a language.
        page.goto(f"{live.base_url}/login")
        assert page.locator("html").get_attribute("lang") == "vi"
        expect(page.get_by_role("heading", level=1)).to_have_text("Đăng nhập")
        log_in(page, live.base_url)
        expect(page.locator("header .who")).to_contain_text("Trần Văn Giám · Tổ dân phố 1")
        # I00 for the leader's own tổ: 3 households known of the 400 on the ward's list
        i00 = page.locator("table.indicators tbody tr").filter(
            has=page.get_by_role("rowheader", name="Tổ dân phố 1")).get_by_role("cell").first
        expect(i00).to_contain_text("3/400")

        # A submission: set its review state with a comment.
        menu(page, "Phiếu").click()
        page.get_by_role("link", name=re.compile("Lý Văn Tâm")).first.click()
        expect(page.get_by_role("heading", level=1)).to_contain_text("Lý Văn Tâm")
        page.get_by_label("Trạng thái duyệt").select_option(label="Có vấn đề")
        page.get_by_label("Ý kiến").fill("Thiếu số điện thoại, gọi lại hộ.")
        page.get_by_role("button", name="Lưu").click()
        expect(page.get_by_role("status")).to_have_text("Đã lưu.")
        expect(page.locator("ol.thread")).to_contain_text("Thiếu số điện thoại, gọi lại hộ.")
        expect(page.locator("ol.thread")).to_contain_text("Có vấn đề")

        # The duplicate queue: compare the pair and merge it.
        menu(page, "Hộ trùng").click()
        expect(page.locator("main")).to_contain_text("1 cặp chờ quyết định")
        page.get_by_role("link", name="So sánh").click()
        expect(page.locator("table.compare")).to_contain_text("Nguyễn Văn Hưng")
        expect(page.locator("tr.differ th")).to_contain_text(["Chủ hộ"])
        page.get_by_label("Gộp làm một hộ").check()
        page.get_by_role("button", name="Ghi quyết định").click()
        expect(page.get_by_role("status")).to_have_text("Đã ghi quyết định.")
        expect(page.locator("main")).to_contain_text("Không có cặp nào chờ quyết định.")
        menu(page, "Tổng quan").click()
        expect(i00).to_contain_text("2/400")  # the merged household counts once

        # The month's report from /exports: two households of tdp01 now, not three.
        month = live.today.strftime("%Y-%m")
        menu(page, "Tải dữ liệu").click()
        page.get_by_label("Kỳ báo cáo").fill(month)
        page.get_by_role("button", name="Áp dụng").click()
        with page.expect_download() as info:
            page.get_by_role("link", name="report_wide.csv").click()
        download = info.value
        assert download.suggested_filename == "report_wide.csv"
        raw = (tmp_path / "report_wide.csv")
        download.save_as(raw)
        data = raw.read_bytes()
        assert data.startswith(b"\xef\xbb\xbf")  # Excel reads the Vietnamese right
        rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
        header = data.decode("utf-8-sig").splitlines()[0].split(",")
        assert header[:5] == ["period_type", "period_start", "period_end", "tdp_code",
                              "tdp_name"]
        tdp01 = next(r for r in rows if r["tdp_code"] == "tdp01" and r["period_type"] == "month")
        assert tdp01["period_start"] == f"{month}-01"
        assert tdp01["n_households_known"] == "2"  # the merge reached the report
        assert tdp01["A01_households_surveyed"] == "2"

        # Set up vol1's phone: the QR code as drawn, read back by a decoder.
        menu(page, "Cài Collect").click()
        page.get_by_role("link", name="Hà Thị Thu").click()
        svg = page.locator("figure.qrcode svg")
        expect(svg).to_be_visible()
        text = read_qr(svg.screenshot())
        assert text == page.locator("figure.qrcode").get_attribute("data-qr")
        assert re.fullmatch(r"[A-Za-z0-9+/]+={0,2}", text) and len(text) <= 4000
        assert base64.b64encode(base64.b64decode(text)).decode() == text  # standard, padded
        settings = decode_qr(text)
        assert zlib.decompress(base64.b64decode(text)).startswith(b"{")
        assert settings["general"]["server_url"] == live.token_url
        assert settings["general"]["server_url"] == page.locator("code.url").first.inner_text()
        assert settings["project"]["name"] == live.project_name
        # what Collect's schema accepts: one bad type would reject the whole code
        general, admin = settings["general"], settings["admin"]
        assert general.get("form_update_mode", "match_exactly") in (
            "manual", "previously_downloaded", "match_exactly")
        assert general.get("autosend", "off") in (
            "off", "wifi_only", "cellular_only", "wifi_and_cellular")
        assert all(isinstance(v, str) for k, v in general.items()
                   if k in ("server_url", "username", "password", "metadata_username"))
        assert all(isinstance(general[k], bool) for k in ("delete_send", "automatic_update")
                   if k in general)
        assert isinstance(admin, dict) and all(
            isinstance(v, str if k == "admin_pw" else bool) for k, v in admin.items())
        assert re.fullmatch(r"#([a-fA-F0-9]{6}|[a-fA-F0-9]{3})",
                            settings["project"].get("color", "#fff"))
        # and a phone set up from it reaches the server with that token
        with HttpTransport() as transport:
            phone = Collect.from_qr(text, transport)
            assert {f["formID"] for f in phone.form_list()} == {"household_survey",
                                                               "support_visit"}
    finally:
        context.close()


def submissions_page_fits_a_phone(browser, live):
    context = browser.new_context(viewport={"width": 360, "height": 740}, is_mobile=True,
                                  has_touch=True, device_scale_factor=2)
    context.set_default_timeout(20_000)
    page = context.new_page()
    try:
        log_in(page, live.base_url)
        page.goto(f"{live.base_url}/submissions")
        expect(page.get_by_role("link", name=re.compile("Lý Văn Tâm")).first).to_be_visible()
        # nothing wider than the screen: wide tables scroll inside their own box
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 360, f"the page is {width} px wide on a 360 px screen"
        expect(menu(page, "Hộ trùng")).to_be_in_viewport()
        box = page.get_by_role("button", name="Lọc").bounding_box()
        assert 0 <= box["x"] and box["x"] + box["width"] <= 360
    finally:
        context.close()
