"""Matching keys for de-duplication: names, phones, streets, house numbers, distances."""

from __future__ import annotations

import unicodedata

import pytest

from server.domain.normalize import (
    address_rel,
    clean_text,
    distance_m,
    fold_ascii,
    name_cmp,
    name_keys,
    normalize_phone,
    number_tokens,
    street_key,
)
from server.domain.ward import Street

STREETS = (
    Street("st01", "Đường Bình Thuận", "Binh Thuan street", ("tdp01", "tdp02")),
    Street("st02", "Đường 17 Tháng 8", "17 Thang 8 street", ("tdp04",)),
    Street("st03", "Đường Quang Trung", "Quang Trung street", ("tdp06",)),
    Street("st05", "Đường Chiến Thắng Sông Lô", "Chien Thang Song Lo street", ("tdp11",)),
)


# --------------------------------------------------------------------------- text and names


def test_clean_text_folds_blanks_case_punctuation_and_lookalikes():
    raw = "  NGUYỄN\u00a0\u00a0Văn\tHùng,\u200b (Ông)  "
    assert clean_text(raw) == "nguyễn văn hùng ông"
    assert clean_text("\u00d0ặng \u0189ỗ") == "đặng đỗ"
    assert clean_text(None) == ""


def test_fold_ascii_maps_d_stroke_explicitly():
    assert fold_ascii("đặng đỗ ưởng") == "dang do uong"


def test_nfc_and_nfd_give_identical_keys():
    nfc = "Nguyễn Văn Hùng"
    nfd = unicodedata.normalize("NFD", nfc)
    assert len(nfc) == 15 and len(nfd) == 19
    assert name_keys(nfc) == name_keys(nfd)._replace(display_nfc=nfc)


@pytest.mark.parametrize(
    ("old", "new", "k_tone"),
    [
        ("hoà", "hòa", "hoa2"),
        ("Thuý", "Thúy", "thuy1"),
        ("khoẻ", "khỏe", "khoe3"),
        ("Qúy", "Quý", None),
    ],
)
def test_tone_placement_variants_share_k_tone(old, new, k_tone):
    assert name_keys(old).k_tone == name_keys(new).k_tone
    if k_tone:
        assert name_keys(new).k_tone == k_tone


def test_k_tone_keeps_vowel_quality_and_d_stroke():
    keys = name_keys("Nguyễn Văn Hưởng Đức")
    assert keys.k_tone == "nguyên4 văn hương3 đưc1"
    assert keys.k_ascii == "nguyen van huong duc"
    assert keys.has_marks


@pytest.mark.parametrize(
    ("name", "k_ascii"),
    [
        ("Ông Nguyễn Văn Hùng", "nguyen van hung"),
        ("Bà Lê Thị Lan", "le thi lan"),
        ("Anh Trần Minh", "tran minh"),  # "anh" needs no marks, but the input has some
        ("Bà Lan", "ba lan"),  # only one token would remain
        ("Chu Van An", "chu van an"),  # ASCII-only: chu is a family name
        ("Ba Van Tu", "ba van tu"),
        ("Ong Nguyen Van Hung", "ong nguyen van hung"),
        ("Chu Văn An", "chu van an"),  # "chu" without its mark is not an honorific
        ("Bá Văn Tú", "ba van tu"),
        ("ông bà Nguyễn Hùng", "ba nguyen hung"),  # only one honorific is dropped
    ],
)
def test_honorific_rule(name, k_ascii):
    assert name_keys(name).k_ascii == k_ascii


def test_has_marks():
    assert name_keys("Đinh Lan").has_marks  # đ alone counts
    assert not name_keys("NGUYEN VAN HUNG").has_marks
    assert not name_keys("Bà Nguyen Thi Lan").has_marks  # the dropped honorific does not count


def test_name_cmp_equal_tone_key_is_100_without_conflict():
    assert name_cmp("Trần Thị Thuý Hoà", "TRẦN THỊ THÚY HÒA") == (100.0, False)


def test_name_cmp_reversed_order_scores_100():
    sim, conflict = name_cmp("\u00d0ặng Văn Tú", "Tú Đặng Văn")
    assert sim == 100.0 and not conflict


@pytest.mark.parametrize(
    ("a", "b", "conflict"),
    [
        ("Nguyễn Văn Hùng", "Nguyễn Văn Hưng", True),
        ("Lê Thị Lan", "Lê Thị Lân", True),
        ("Phạm Văn Tâm", "Phạm Văn Tám", True),
        ("Nguyễn Văn Hùng", "Nguyen Van Hung", False),  # no marks = missing information
        ("NGUYEN VAN HUNG", "Nguyễn Văn Hưng", False),
        ("Nguyễn Văn Hùng", "Nguyễn Văn Hùngg", False),  # a typo is not a diacritic conflict
    ],
)
def test_diacritic_conflict(a, b, conflict):
    sim, got = name_cmp(a, b)
    assert got is conflict
    assert sim >= 92


def test_name_cmp_typo_and_empty():
    sim, _ = name_cmp("Nguyễn Văn Hùng", "Nguyễn Văn Hùn")
    assert 92 <= sim < 100
    assert name_cmp("", "Nguyễn Văn Hùng") == (0.0, False)
    assert name_cmp(None, None) == (0.0, False)


def test_name_keys_ignore_a_stray_combining_mark():
    keys = name_keys("Lê \u0301 Lan")
    assert keys.k_ascii == "le lan"
    assert len(keys.tokens) == 2


# --------------------------------------------------------------------------- phones


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("0912345678", "0912345678"),
        ("+84 912 345 678", "0912345678"),
        ("+84912345678", "0912345678"),
        ("84912345678", "0912345678"),
        ("0084 912 345 678", "0912345678"),
        ("912345678", "0912345678"),
        ("0912.345.678", "0912345678"),
        ("0912-345-678", "0912345678"),
        ("(+84) 912 345 678", "0912345678"),
        ("+84 (0) 912 345 678", "0912345678"),
        ("０９１２３４５６７８", "0912345678"),  # full-width digits
        ("358777666", "0358777666"),
        ("01662345678", "0362345678"),  # Viettel 0166 → 036
        ("0162 123 4567", "0321234567"),
        ("0169 123 4567", "0391234567"),
        ("01201234567", "0701234567"),  # MobiFone
        ("01211234567", "0791234567"),
        ("01221234567", "0771234567"),
        ("01261234567", "0761234567"),
        ("01281234567", "0781234567"),
        ("01231234567", "0831234567"),  # VinaPhone
        ("01241234567", "0841234567"),
        ("01251234567", "0851234567"),
        ("01271234567", "0811234567"),
        ("01291234567", "0821234567"),
        ("01861234567", "0561234567"),  # Vietnamobile
        ("01881234567", "0581234567"),
        ("01991234567", "0591234567"),  # Gmobile
        ("+84 166 123 4567", "0361234567"),
        ("841661234567", "0361234567"),
        ("02073822123", "02073822123"),  # Tuyên Quang landline
        ("0207 382 2123", "02073822123"),
        ("+84 207 382 2123", "02073822123"),
        ("842073822123", "02073822123"),
        ("", None),
        (None, None),
        ("không có", None),
        ("12345", None),
        ("0123456789", None),  # 012 is not a mobile prefix any more
        ("01301234567", None),  # not an old prefix
        ("091234567", None),  # 9 digits with a leading 0 is too short
        ("09123456789", None),
        ("+1 202 555 0100", None),
        ("0912345678 / 0987654321", None),
        ("2073822123", None),
        ("0412345678", None),
        ("612345678", None),
    ],
)
def test_normalize_phone(raw, expected):
    assert normalize_phone(raw) == expected


# --------------------------------------------------------------------------- addresses


@pytest.mark.parametrize(
    ("code", "text", "expected"),
    [
        ("st03", "", "st03"),
        ("st03", "đường Bình Thuận", "st03"),  # the list choice wins
        ("other", "đường Bình Thuận", "st01"),
        ("other", "Binh Thuan", "st01"),
        ("other", "đ. Bình Thuận", "st01"),
        ("other", "Số 12, ngõ 5, đường Bình Thuận", "st01"),
        ("other", "BÌNH THUẬN, TP Tuyên Quang", "st01"),
        ("other", "phố 17 tháng 8", "st02"),
        ("other", "Chiến Thắng Sông Lô", "st05"),
        ("other", "Binh Thuan street", "txt:binh thuan street"),
        ("other", "Ngõ Chợ", "txt:cho"),
        ("other", "", "txt:"),
    ],
)
def test_street_key(code, text, expected):
    assert street_key(code, text, STREETS) == expected


def test_street_key_without_configured_streets():
    assert street_key("other", "đường Bình Thuận", ()) == "txt:binh thuan"


@pytest.mark.parametrize(
    ("house_no", "alley", "expected"),
    [
        ("12/5", "", ("5", "12")),
        ("12", "5", ("5", "12")),
        ("5/12", None, ("5", "12")),
        ("12", "ngõ 5", ("5", "12")),
        ("12A", "", ("12a",)),
        ("12", "", ("12",)),
        ("012", "", ("12",)),
        ("", "", ()),
        (None, None, ()),
        ("7", "3/12", ("3", "7", "12")),
    ],
)
def test_number_tokens(house_no, alley, expected):
    assert number_tokens(house_no, alley) == expected


def test_number_tokens_letter_suffix_differs():
    assert number_tokens("12A", "") != number_tokens("12", "")


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        (("st01", ("12",)), ("st02", ("12",)), "different_street"),
        (("st01", ()), ("st01", ("45",)), "unknown"),
        (("st01", ("5", "12")), ("st01", ("5", "12")), "same"),
        (("st01", ("12",)), ("st01", ("21",)), "different"),
        (("st01", ("17",)), ("st01", ("17a",)), "different"),
    ],
)
def test_address_rel(a, b, expected):
    assert address_rel(a[0], a[1], b[0], b[1]) == expected


def test_distance_m():
    assert distance_m(21.8, 105.2, 21.8, 105.2) == 0.0
    # 0.001° of latitude is about 111 m.
    assert distance_m(21.800, 105.2, 21.801, 105.2) == pytest.approx(111.2, abs=0.5)
