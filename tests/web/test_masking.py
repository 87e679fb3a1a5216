"""Phone numbers in full only for the admin and the household's own team leader; everyone else
(the ward office) sees `09xx xxx 678` in pages and exports; identity numbers show only
`•••• 1234`, to everyone."""

from __future__ import annotations

import csv
import io
import re
import zipfile

import pytest

from server.db.models import SubmissionVersion
from server.domain.masking import mask_phone, pid_tail, sees_full_phone
from tests.openrosa.conftest import rows
from tests.support.factories import PASSWORD

PHONE, MASKED = "0912345678", "09xx xxx 678"
PID = "001171012345"


@pytest.fixture
def office(app, ward, browser, cli):
    """The ward office: a supervisor of the whole ward, who reads reports."""
    assert cli("user", "add", "office", "--role", "supervisor", "--team", "ward",
               "--password-stdin", input=PASSWORD + "\n").exit_code == 0
    b = browser(remote_addr="10.0.0.3")
    assert b.login("office").status_code == 302
    return b


@pytest.fixture
def household(add_household):
    return add_household("Phạm Thị Xuyến", **{"g_head/phone": PHONE, "g_head/phone_tail": "678",
                                              "g_head/phone_owner": "head",
                                              "g_head/head_id": PID})


def _csv(browser, path) -> list[dict]:
    response = browser.get(path)
    assert response.status_code == 200
    data = response.get_data()
    response.close()
    return list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))


def test_mask_formats():
    assert mask_phone("0912345678") == MASKED
    assert mask_phone("0912 345 678") == MASKED
    assert mask_phone("02073812345") == "02xx xxxx 345"
    assert mask_phone("12345") == "xxxxx" and mask_phone("") == ""
    assert pid_tail("2345") == "•••• 2345" and pid_tail(None) == ""


def test_the_rule():
    class U:
        def __init__(self, role, team):
            self.role, self.team = role, team

    assert sees_full_phone(U("admin", None), "tdp02")
    assert sees_full_phone(None, "tdp02")  # the operator's command line
    assert sees_full_phone(U("supervisor", "tdp01"), "tdp01")
    assert not sees_full_phone(U("supervisor", "tdp01"), "tdp02")
    assert not sees_full_phone(U("supervisor", "ward"), "tdp01")
    assert not sees_full_phone(U("supervisor", None), "tdp01")
    assert not sees_full_phone(U("volunteer", "tdp01"), "tdp01")


def test_pages_mask_the_phone_for_the_office_only(app, sup1, admin, office, household):
    sid = rows(app, SubmissionVersion)[0].submission_id
    for path in (f"/submissions/{sid}", f"/households/{household}"):
        assert MASKED in office.get(path).get_data(as_text=True), path
        assert PHONE not in office.get(path).get_data(as_text=True), path
        for reader in (sup1, admin):
            html = reader.get(path).get_data(as_text=True)
            assert PHONE in html and MASKED not in html, path
    house = office.get(f"/households/{household}").get_data(as_text=True)
    assert "•••• 2345" in house and PID not in house and "71012345" not in house


def test_duplicate_pair_compares_full_numbers_but_shows_masked(app, office, admin,
                                                               add_household):
    add_household("Nguyễn Văn Hùng", house="5", year="1970", **{"g_head/phone": PHONE})
    add_household("Nguyễn Văn Hưng", house="5", year="1970", **{"g_head/phone": "0912345999"})
    [pair] = re.findall(r'href="/duplicates/(\d+)"', office.get("/duplicates").get_data(
        as_text=True))
    html = office.get(f"/duplicates/{pair}").get_data(as_text=True)
    assert PHONE not in html and html.count("09xx xxx") == 2
    assert 'class="differ"><th>Điện thoại' in html  # the full numbers differ
    assert PHONE in admin.get(f"/duplicates/{pair}").get_data(as_text=True)


def test_exports_mask_the_phone_for_the_office(app, sup1, admin, office, household):
    register = "/exports/households/households_register.csv"
    assert [r["phone_norm"] for r in _csv(office, register)] == [MASKED]
    assert [r["phone_norm"] for r in _csv(sup1, register)] == [PHONE]
    assert [r["phone_norm"] for r in _csv(admin, register)] == [PHONE]
    assert [r["pid_last4"] for r in _csv(office, register)] == ["2345"]
    raw = "/exports/submissions/household_survey/household_survey.csv"
    assert [r["g_head-phone"] for r in _csv(office, raw)] == [MASKED]
    assert [r["g_head-phone"] for r in _csv(admin, raw)] == [PHONE]
    assert all(r["g_head-head_id"] == "" for r in _csv(admin, raw))  # never stored
    zipped = office.get("/exports/submissions/household_survey.zip")
    with zipfile.ZipFile(io.BytesIO(zipped.get_data())) as zf:
        text = zf.read("household_survey.csv").decode("utf-8-sig")
    zipped.close()
    assert MASKED in text and PHONE not in text
