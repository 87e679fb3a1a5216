"""Errors met before any page is found (an unknown address, a method the page does not take)
are readable pages in the person's language, not the framework's English."""

from __future__ import annotations


def test_unknown_address_and_wrong_method_are_readable_pages(admin):
    missing = admin.get("/no-such-page")
    assert missing.status_code == 404
    text = missing.get_data(as_text=True)
    assert "Không tìm thấy trang hoặc bản ghi này." in text and "<html" in text

    wrong = admin.client.post("/exports")  # a page that is only read
    assert wrong.status_code == 405
    assert "Thao tác này không được phép ở đây." in wrong.get_data(as_text=True)
    assert "Allow" in wrong.headers  # what the page does take

