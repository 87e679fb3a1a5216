"""Matching keys for household de-duplication: names, phones, addresses, GPS.

The keys are derived values used only to compare records; they are never shown to users.
Vietnamese text arrives in many shapes (NFC or NFD, old or new tone placement, no diacritics,
upper case, legacy ``Ð`` look-alikes), so every comparison goes through the same folding here.

Pure functions, no I/O. :func:`name_keys` is cached because the same names recur across
snapshots and members.
"""

from __future__ import annotations

import functools
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from typing import NamedTuple, Protocol

from rapidfuzz import fuzz

__all__ = [
    "AddressRel",
    "NameKeys",
    "address_rel",
    "clean_text",
    "display_text",
    "distance_m",
    "fold_ascii",
    "name_cmp",
    "name_keys",
    "normalize_phone",
    "number_tokens",
    "street_key",
]

# --------------------------------------------------------------------------- text

#: Legacy look-alikes of Đ/đ (Icelandic eth, African D) found in old encodings and PDFs.
_LOOKALIKES = str.maketrans({"\u00d0": "\u0110", "\u00f0": "\u0111", "\u0189": "\u0110"})
#: Invisible characters that split words when pasted (zero-width space/joiners, BOM).
_ZERO_WIDTH = str.maketrans(dict.fromkeys("\u200b\u200c\u200d\u2060\ufeff", " "))


def display_text(value: str | None) -> str:
    """§2 storage form: NFC, no-break spaces as spaces, trimmed, inner whitespace collapsed."""
    if not value:
        return ""
    return " ".join(unicodedata.normalize("NFC", value).replace("\u00a0", " ").split())


def clean_text(value: str | None) -> str:
    """§7.3 step 1: NFC, Đ look-alikes fixed, blanks collapsed, casefolded, punctuation → space."""
    if not value:
        return ""
    text = unicodedata.normalize("NFC", value).translate(_LOOKALIKES).translate(_ZERO_WIDTH)
    text = unicodedata.normalize("NFC", text.casefold())
    # Keep letters, marks and digits; everything else (punctuation, symbols, controls) splits.
    chars = [ch if unicodedata.category(ch)[0] in "LMN" else " " for ch in text]
    return " ".join("".join(chars).split())


def fold_ascii(text: str) -> str:
    """Remove every combining mark and map đ→d (đ has no decomposition, so map it explicitly)."""
    decomposed = unicodedata.normalize("NFD", text)
    out = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return out.replace("đ", "d").replace("Đ", "D")


# --------------------------------------------------------------------------- names

#: Honorifics dropped from the start of a name, spelled with their diacritics (casefolded NFC).
_HONORIFICS = frozenset({"ông", "bà", "anh", "chị", "cụ", "cô", "chú", "bác"})
#: The five Vietnamese tone marks and their digits in K_tone.
_TONES = {"\u0301": "1", "\u0300": "2", "\u0309": "3", "\u0303": "4", "\u0323": "5"}


class NameKeys(NamedTuple):
    """Comparison keys of one person name (§7.3)."""

    display_nfc: str  # §2 storage form of the input
    k_tone: str  # tone-canonical key: tokens with tone digits, vowel marks and đ kept
    k_ascii: str  # no marks at all, đ→d
    has_marks: bool  # the name (after the honorific rule) carries any diacritic or đ

    @property
    def tokens(self) -> tuple[tuple[str, str], ...]:
        """(ascii, tone) per token, in name order."""
        return tuple(zip(self.k_ascii.split(), self.k_tone.split(), strict=True))


def _tone_token(token: str) -> str:
    decomposed = unicodedata.normalize("NFD", token)
    digits = "".join(_TONES[ch] for ch in decomposed if ch in _TONES)
    base = unicodedata.normalize("NFC", "".join(ch for ch in decomposed if ch not in _TONES))
    return base + digits


def _has_marks(text: str) -> bool:
    return "đ" in text or any(
        unicodedata.combining(ch) for ch in unicodedata.normalize("NFD", text)
    )


@functools.lru_cache(maxsize=65536)
def name_keys(name: str | None) -> NameKeys:
    """Keys of a name. One leading honorific is dropped only when the input has diacritics
    and at least two tokens remain, because ``Chu``/``Bá`` are also family and middle names."""
    # A stray combining mark alone is not a token: it would fold to nothing.
    tokens = [t for t in clean_text(name).split() if fold_ascii(t)]
    if len(tokens) >= 3 and tokens[0] in _HONORIFICS and _has_marks(" ".join(tokens)):
        tokens = tokens[1:]
    joined = " ".join(tokens)
    return NameKeys(
        display_nfc=display_text(name),
        k_tone=" ".join(_tone_token(t) for t in tokens),
        k_ascii=fold_ascii(joined),
        has_marks=_has_marks(joined),
    )


def _as_keys(name: str | NameKeys | None) -> NameKeys:
    return name if isinstance(name, NameKeys) else name_keys(name)


def name_cmp(a: str | NameKeys | None, b: str | NameKeys | None) -> tuple[float, bool]:
    """(similarity 0–100, diacritic conflict). Equal K_tone is 100 without conflict; otherwise
    the order-insensitive token_sort_ratio of K_ascii. A conflict needs marks on both sides and
    a token that folds to the same ASCII but differs in K_tone (Hùng vs Hưng)."""
    ka, kb = _as_keys(a), _as_keys(b)
    if not ka.k_ascii or not kb.k_ascii:
        return 0.0, False
    if ka.k_tone == kb.k_tone:
        return 100.0, False
    sim = fuzz.token_sort_ratio(ka.k_ascii, kb.k_ascii)
    return sim, ka.has_marks and kb.has_marks and _token_conflict(ka, kb)


def _token_conflict(a: NameKeys, b: NameKeys) -> bool:
    by_ascii_a: dict[str, Counter[str]] = {}
    for asc, tone in a.tokens:
        by_ascii_a.setdefault(asc, Counter())[tone] += 1
    by_ascii_b: dict[str, Counter[str]] = {}
    for asc, tone in b.tokens:
        by_ascii_b.setdefault(asc, Counter())[tone] += 1
    for asc, tones_a in by_ascii_a.items():
        tones_b = by_ascii_b.get(asc)
        # Pair equal spellings first; a conflict is a leftover on both sides.
        if tones_b is not None and tones_a - tones_b and tones_b - tones_a:
            return True
    return False


# --------------------------------------------------------------------------- phones

#: Old 11-digit mobile prefixes → the 3-digit prefixes of the 2018 conversion.
_OLD_PREFIXES = {
    **{f"016{d}": f"03{d}" for d in "23456789"},
    "0120": "070",
    "0121": "079",
    "0122": "077",
    "0126": "076",
    "0128": "078",
    "0123": "083",
    "0124": "084",
    "0125": "085",
    "0127": "081",
    "0129": "082",
    "0186": "056",
    "0188": "058",
    "0199": "059",
}
_MOBILE = re.compile(r"0[35789]\d{8}")
_LANDLINE = re.compile(r"02\d{9}")


def normalize_phone(raw: str | None) -> str | None:
    """National form (``0912345678``) of a Vietnamese phone, or None when missing or invalid.

    Accepts ``+84``/``0084``/``84`` prefixes (with or without the trunk ``0`` after them),
    9 digits without the leading ``0``, separators of any kind, and the old 11-digit mobile
    prefixes. An invalid number is treated as missing so it never links households.
    """
    if not raw:
        return None
    text = unicodedata.normalize("NFKC", str(raw))
    digits = "".join(ch for ch in text if "0" <= ch <= "9")
    if not digits:
        return None
    plus = text.find("+")
    international = False
    if plus != -1 and plus < text.find(digits[0]):
        if not digits.startswith("84"):
            return None  # another country
        digits, international = "0" + digits[2:], True
    elif digits.startswith("0084"):
        digits, international = "0" + digits[4:], True
    elif digits.startswith("84") and len(digits) in (11, 12):
        digits, international = "0" + digits[2:], True
    elif len(digits) == 9 and digits[0] in "35789":
        digits = "0" + digits
    if international and digits.startswith("00"):
        digits = digits[1:]  # "+84 (0) 912 …": the trunk zero was typed too
    if len(digits) == 11 and digits[:4] in _OLD_PREFIXES:
        digits = _OLD_PREFIXES[digits[:4]] + digits[4:]
    if _MOBILE.fullmatch(digits) or _LANDLINE.fullmatch(digits):
        return digits
    return None


# --------------------------------------------------------------------------- addresses


class StreetLike(Protocol):
    """What :func:`street_key` needs of a configured street (``ward.Street`` fits)."""

    @property
    def name(self) -> str: ...

    @property
    def label_vi(self) -> str: ...


AddressRel = str  # 'different_street' | 'unknown' | 'same' | 'different'

_STREET_STOPWORDS = frozenset(
    "duong pho d p so sn nha ngo ngach hem kiet to tdp dan phuong tp tuyen quang".split()
)
_HOUSE_TOKEN = re.compile(r"\d+[a-z]?")
_DIGITS = re.compile(r"\d+")
#: A configured street matches free text when rapidfuzz.fuzz.ratio reaches this.
STREET_MATCH_MIN = 90.0


def _fold_street(text: str | None) -> str:
    words = []
    for token in fold_ascii(clean_text(text)).split():
        if _HOUSE_TOKEN.fullmatch(token):
            continue  # a house or lane number such as 12 or 12a
        token = _DIGITS.sub("", token)
        if token and token not in _STREET_STOPWORDS:
            words.append(token)
    return " ".join(words)


@functools.lru_cache(maxsize=64)
def _folded_streets(streets: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
    return tuple((name, _fold_street(label)) for name, label in streets)


def street_key(code: str | None, other_text: str | None, streets: Iterable[StreetLike]) -> str:
    """The street code when chosen from the list; for ``other``, the configured street that the
    typed name matches (volunteers type listed streets as "other"), else ``txt:<folded>``."""
    code = (code or "").strip()
    if code and code != "other":
        return code
    folded = _fold_street(other_text)
    if not folded:
        return "txt:"
    best_name, best_ratio = None, STREET_MATCH_MIN
    for name, street_folded in _folded_streets(tuple((s.name, s.label_vi) for s in streets)):
        ratio = fuzz.ratio(folded, street_folded)
        if ratio >= best_ratio and (best_name is None or ratio > best_ratio):
            best_name, best_ratio = name, ratio
    return best_name if best_name is not None else f"txt:{folded}"


def number_tokens(house_no: str | None, alley: str | None) -> tuple[str, ...]:
    """Sorted ``\\d+[a-z]?`` tokens of house number and lane: ``12/5``, ``12`` + ngõ ``5`` and
    ``5/12`` are equal, which side-steps the northern/southern reading of "12/5"."""
    text = unicodedata.normalize("NFKC", f"{house_no or ''} {alley or ''}").casefold()
    tokens = []
    for token in _HOUSE_TOKEN.findall(text):
        digits = token.rstrip("abcdefghijklmnopqrstuvwxyz")
        tokens.append((int(digits), token[len(digits) :]))
    return tuple(f"{n}{suffix}" for n, suffix in sorted(tokens))


def address_rel(
    a_street_key: str,
    a_tokens: tuple[str, ...],
    b_street_key: str,
    b_tokens: tuple[str, ...],
) -> AddressRel:
    """Relation of two addresses within a street; the tổ is compared separately."""
    if a_street_key != b_street_key:
        return "different_street"
    if not a_tokens or not b_tokens:
        return "unknown"
    return "same" if tuple(a_tokens) == tuple(b_tokens) else "different"


# --------------------------------------------------------------------------- GPS

_EARTH_RADIUS_M = 6_371_008.8


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle (haversine) distance in metres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * _EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))
