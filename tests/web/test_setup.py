"""Collect set-up by QR code: the code carries openrosa.md §8 settings with the token URL."""

from __future__ import annotations

import html as html_lib
import re

import segno
from sqlalchemy import select

from server.db.models import User
from server.domain import accounts
from tests.support.collect import decode_qr


def _vol_id(app, username="vol1") -> int:
    session = app.extensions["db"].session()
    try:
        return session.scalar(select(User.id).where(User.username == username))
    finally:
        session.close()


def test_qr_code_carries_the_volunteers_token_url(app, ward, sup1):
    html = sup1.get(f"/setup/{_vol_id(app)}").get_data(as_text=True)
    text = html_lib.unescape(re.search(r'data-qr="([^"]+)"', html).group(1))
    settings = decode_qr(text)
    url = f"http://localhost/v1/key/{ward.token}/projects/{ward.project_id}"
    assert settings["general"]["server_url"] == url
    assert settings["admin"] == {} and settings["project"]["name"] == "Phường Bình Thuận"
    assert url in html
    # the SVG on the page is the QR code of exactly that text
    svg = re.search(r"<svg.*?</svg>", html, re.S).group(0)
    expected = segno.make(text, error="l", micro=False, boost_error=False)
    assert svg == expected.svg_inline(border=4, omitsize=True, title="ODK Collect")
    assert segno.make(text, error="l", boost_error=False).error == "L"


def test_the_qr_text_is_what_the_cli_prints(app, ward, sup1):
    from server.cli import collect_settings, qr_text

    html = sup1.get(f"/setup/{_vol_id(app)}").get_data(as_text=True)
    text = html_lib.unescape(re.search(r'data-qr="([^"]+)"', html).group(1))
    url = f"http://localhost/v1/key/{ward.token}/projects/{ward.project_id}"
    assert text == qr_text(collect_settings(url, "Phường Bình Thuận", "vol1"))


def test_leader_sets_up_only_its_own_volunteers(app, ward, sup1, admin):
    session = app.extensions["db"].session(write=True)
    accounts.create_user(session, "vol9", "volunteer", project_id=ward.project_id, team="tdp09")
    session.commit()
    session.close()
    assert "vol9" not in sup1.get("/setup").get_data(as_text=True)
    assert sup1.get(f"/setup/{_vol_id(app, 'vol9')}").status_code == 403
    assert "vol9" in admin.get("/setup").get_data(as_text=True)
    page = admin.get(f"/setup/{_vol_id(app, 'vol9')}").get_data(as_text=True)
    assert "data-qr" not in page  # no token yet: issued on purpose, with a POST
    uid = _vol_id(app, "vol9")
    assert admin.post(f"/setup/{uid}/token", page=f"/setup/{uid}").status_code == 302
    assert "data-qr" in admin.get(f"/setup/{uid}").get_data(as_text=True)


def test_revoke_from_the_page_cuts_the_phone_off(app, ward, sup1, collect):
    uid = _vol_id(app)
    assert sup1.post(f"/setup/{uid}/revoke", page=f"/setup/{uid}").status_code == 302
    response = collect.transport.send(
        "GET", f"http://localhost/v1/key/{ward.token}/projects/{ward.project_id}/formList",
        {"X-OpenRosa-Version": "1.0"}, None)
    assert response.status in (401, 403)
    assert "data-qr" not in sup1.get(f"/setup/{uid}").get_data(as_text=True)
