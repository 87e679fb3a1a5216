"""A seeded, deterministic synthetic ward: the households, the volunteers and every upload.

It follows the synthetic-ward recipe of the domain specification (§8): 20 tổ dân phố with their
teams, about 8,000 households with Vietnamese names, phones, identity numbers and digital status,
the survey wave, support visits, re-surveys, and the duplicates and hard negatives that measure
de-duplication (§7). Each upload is real submission XML built from the primary instance of the
XForm the caller passes in, filled the way ODK Collect fills it: non-relevant groups and fields
are left out, calculations are computed, and ``meta/entity`` carries ``create``/``update``
(``1``/``0``), the entity id, the label and the ``baseVersion`` read from the device's list.

Usage::

    ward = generate(survey_xform, visit_xform, households=120)
    for upload in ward.uploads:              # in upload-time order
        post(upload.username, upload.xml, upload.attachments)
    truth = true_duplicate_pairs(ward)       # entity-id pairs of the same true household

Modelling choices that the recipe leaves open:

* Streets and tổ come from the XForm's own ``street`` and ``tdp`` choice lists (generated from
  the ward configuration), so every street code in a submission is a valid choice.
* Member UUIDs of ``members.csv`` are assigned by the server, so a support visit names the
  member it helped in ``svc_member_other`` (the field Collect offers when the member is not yet
  in the list) and leaves ``svc_members`` empty.
* ``baseVersion`` counts the form-driven changes the device could have seen when the form was
  filled (creates, survey updates, visits with ``update_status = yes``), never server-side
  recomputes or merges. Devices of other volunteers see an entity only after it was uploaded;
  the creator's own device sees it at once (offline entities).
* A duplicate whose head birth year was typed ±1 carries no identity number: the form's check
  of digits 5–6 against the birth year would refuse it on the device.
* The on-device duplicate guard is not simulated: duplicates happen when the first survey was
  not yet on the second volunteer's phone.
* The household's "canonical" entity is its earliest uploaded create; the others are the ones a
  de-duplication would merge away. Some visits reference them, as happens offline.

Nothing is written to disk except by :meth:`SyntheticWard.write_to`.
"""

from __future__ import annotations

import bisect
import csv
import io
import json
import math
import random
import unicodedata
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from itertools import combinations
from pathlib import Path
from zoneinfo import ZoneInfo

from server.xml import local_name, parse_xml
from tests.support.instances import primary_instance

__all__ = [
    "DEFAULT_SEED",
    "Duplicate",
    "HardNegative",
    "Household",
    "OPERATORS",
    "Person",
    "StreetChoice",
    "SyntheticWard",
    "TZ",
    "Upload",
    "Volunteer",
    "generate",
    "hard_negative_pairs",
    "strip_marks",
    "true_duplicate_pairs",
    "write_to",
]

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
DEFAULT_SEED = 20260115
_JR = "http://openrosa.org/javarosa"
_XF = "{http://www.w3.org/2002/xforms}"

# --------------------------------------------------------------------------- recipe tables

#: Noise operators of duplicate surveys and their shares (each duplicate gets exactly one).
OPERATORS: tuple[tuple[str, float], ...] = (
    ("copy", 30), ("ascii", 10), ("upper", 5), ("nfd", 10), ("tone", 5), ("diacritic", 5),
    ("typo", 10), ("phone", 10), ("street_text", 7), ("house", 3), ("wrong_tdp", 3),
    ("reorder", 2),
)
_HARD_NEGATIVE_SHARES = (
    ("father_son", 0.005), ("shared_phone", 0.02), ("namesake", 0.003), ("same_address", 0.01),
)
_THIRD_SHARE = 0.01
_REFUSE_SHARE = 0.03
_ABSENT_SHARE = 0.08
_PHONE_SHARE = 0.92
_ID_SHARE = 0.60
_RESURVEY_SHARE = 0.20

_KINH = [
    ("Nguyễn", 36), ("Trần", 10), ("Lê", 9), ("Phạm", 6.5), ("Hoàng", 5), ("Vũ", 4),
    ("Đỗ", 2.5), ("Đặng", 2.5), ("Bùi", 2.5), ("Phan", 2), ("Ngô", 1.5), ("Dương", 1.5),
    ("Đinh", 1.5), ("Đào", 1.2), ("Trịnh", 1), ("Mai", 1), ("Lương", 1), ("Hà", 1),
    ("Cao", 0.8), ("Phùng", 0.7), ("Tạ", 0.6), ("Lý", 0.6), ("Chu", 0.6), ("Lưu", 0.5),
    ("Hồ", 0.5), ("Kiều", 0.4), ("Vương", 0.3),
] + [(n, 0.25) for n in ("Đoàn", "Trương", "Lâm", "Quách", "Nghiêm", "Tô", "Thân", "Khổng")]
_TAY = [
    ("Hoàng", 18), ("Nông", 14), ("Ma", 12), ("Hà", 10), ("Nguyễn", 8), ("Lý", 6),
    ("Lương", 6), ("Quan", 5), ("Chu", 5), ("Triệu", 4), ("Âu", 3), ("Lộc", 3), ("Ninh", 3),
    ("Mông", 3),
]
_DAO = [("Triệu", 30), ("Bàn", 25), ("Đặng", 20), ("Lý", 15), ("Phùng", 5), ("Chảo", 5)]
_OTHER = [
    ("Lâm", 15), ("Hoàng", 15), ("Trần", 15), ("Lý", 15), ("Đặng", 10), ("La", 10),
    ("Ninh", 10), ("Hà", 10),
]
_ETHNICITY = [("kinh", 80), ("tay", 10), ("dao", 4), ("san_chay", 3), ("other", 3)]
_FAMILY = {"kinh": _KINH, "tay": _TAY, "dao": _DAO, "san_chay": _OTHER, "other": _OTHER}
_MIDDLE = {
    ("male", False): [("Văn", 65), ("Đức", 6), ("Quang", 5), ("Minh", 5), ("Hữu", 4),
                      ("Công", 4), ("Xuân", 3), ("Đình", 3), ("Thế", 2), ("Ngọc", 2),
                      ("Mạnh", 1)],
    ("male", True): [("Văn", 15), ("Minh", 15), ("Đức", 10), ("Quang", 8), ("Gia", 8),
                     ("Duy", 7), ("Anh", 6), ("Hoàng", 6), ("Tuấn", 5), ("Trung", 5),
                     ("Bảo", 5), ("Thành", 5), ("Hải", 5)],
    ("female", False): [("Thị", 80), ("Thu", 5), ("Thanh", 4), ("Ngọc", 4), ("Kim", 3),
                        ("Hồng", 2), ("Minh", 2)],
    ("female", True): [("Thị", 25), ("Ngọc", 10), ("Thu", 8), ("Thanh", 8), ("Phương", 8),
                       ("Minh", 8), ("Bảo", 7), ("Khánh", 7), ("Thùy", 6), ("Diệu", 5),
                       ("Hà", 4), ("Mai", 4)],
}
_GIVEN = {
    ("male", False): "Hùng Dũng Tuấn Minh Nam Hải Long Thắng Sơn Cường Đức Trung Thành Bình "
                     "Tâm Vinh Lợi Tiến Hưng Toàn Việt Lâm Phúc Tùng Quý Thanh Chiến".split(),
    ("male", True): "Minh Anh Huy Khôi Bảo Đạt Khoa Phúc Long Quân Hiếu Phong Kiên Tùng Đăng "
                    "Nam Dũng Tuấn Hưng Khánh Lâm Vinh Sơn Tú Hải".split(),
    ("female", False): "Lan Hương Hoa Hà Hạnh Hằng Thảo Mai Nga Thủy Yến Phương Huyền Loan "
                       "Hồng Nhung Thu Vân Lụa Liên Tuyết Dung Bích Oanh".split(),
    ("female", True): "Linh Trang Ngọc Anh Chi Ngân Vy My Hân Như Quỳnh Nhi Thư Thảo Hà "
                      "Phương Huyền Mai Yến Trâm Diệp Ánh Hoa An".split(),
}
_SIZES = [(1, 10), (2, 18), (3, 20), (4, 27), (5, 14), (6, 7), (7, 3), (8, 1)]

_CARRIERS = [
    (("086", "096", "097", "098", "032", "033", "034", "035", "036", "037", "038", "039"), 55),
    (("088", "091", "094", "081", "082", "083", "084", "085"), 25),
    (("089", "090", "093", "070", "076", "077", "078", "079"), 15),
    (("092", "056", "058", "099", "059", "087"), 5),
]
#: New 3-digit mobile prefix -> the old 11-digit prefix it replaced in 2018.
_OLD_PREFIX = {
    "032": "0162", "033": "0163", "034": "0164", "035": "0165", "036": "0166", "037": "0167",
    "038": "0168", "039": "0169", "070": "0120", "079": "0121", "077": "0122", "076": "0126",
    "078": "0128", "083": "0123", "084": "0124", "085": "0125", "081": "0127", "082": "0129",
    "056": "0186", "058": "0188", "059": "0199",
}
_PROVINCES = [("008", 70), ("002", 8)] + [
    (c, 22 / 8) for c in ("001", "004", "006", "010", "015", "019", "025", "026")
]

# Age bands 10-14, 15-29, 30-44, 45-59, 60-69, 70+.
_SMART = (.70, .97, .95, .85, .60, .30)
_BASIC = (.50, .90, .85, .65, .40, .15)
_VNEID = ((.10, .10, .80), (.05, .10, .85), (.05, .10, .85), (.08, .10, .82), (.15, .10, .75),
          (.35, .10, .55))
_DVC_L2 = (.45, .45, .45, .35, .20, .05)
_CASHLESS = (.85, .85, .85, .65, .35, .10)
_DIGISIG = (.05, .05, .12, .08, .03, .01)
_VSSID = (.40, .40, .55, .45, .20, .10)
_EHEALTH_L2 = (.35, .35, .35, .30, .25, .15)
_BDHVS = (.25, .25, .15, .10, .05, .02)
_DK_SHARE = 0.03

_TYPICAL_REASON = {
    "vneid_l1": ("otp_phone", "no_device"), "vneid_l2": ("need_police",),
    "vneid_use": ("not_ready",), "dvc_account": ("otp_phone", "system_error"),
    "dvc_procedure": ("missing_docs",), "cashless": ("not_ready",), "biz_qr": ("missing_docs",),
    "digisig": ("missing_docs",), "vssid": ("otp_phone",), "ehealth": ("need_police",),
    "school_app": ("system_error",), "ecommerce": ("missing_docs",), "bdhvs": ("not_ready",),
    "safety": ("not_ready",), "other": ("not_ready",),
}
_REASONS = ("no_device", "no_internet", "missing_docs", "need_police", "otp_phone",
            "system_error", "not_ready", "absent", "other")
_LANDMARKS = ("cạnh nhà văn hóa tổ {n}", "gần chợ tổ {n}", "sau trường tiểu học",
              "đối diện trạm y tế", "cuối ngõ, cạnh ao", "gần cầu tổ {n}", "cạnh cây xăng",
              "đầu dốc tổ {n}", "sau đình làng", "cạnh bãi gửi xe")
_OCOP = ("Chè Shan tuyết", "Cam sành Hàm Yên", "Miến dong", "Mật ong bạc hà", "Bưởi Xuân Vân",
         "Rượu ngô men lá")
_NOTES = ("Hẹn quay lại hướng dẫn định danh mức 2.", "Hộ cần hỗ trợ cài VNeID.",
          "Đã phát tờ rơi Bình dân học vụ số.", "Chủ hộ đi làm, gặp vợ.")
_OTHER_SERVICES = ("Hướng dẫn dùng Zalo", "Cài ứng dụng Điện lực", "Tra cứu điểm thi")

_WAVE = (date(2026, 1, 5), date(2026, 3, 31))
_RESURVEY = (date(2026, 9, 1), date(2026, 10, 31))
_LATER = (date(2026, 4, 1), date(2026, 10, 31))
_VISITS = (date(2026, 2, 1), date(2026, 12, 31))


class _Pick:
    """Weighted choice from a [(value, weight)] table with one precomputed cumulative list."""

    def __init__(self, table):
        self.values = [v for v, _ in table]
        self.cum = []
        total = 0.0
        for _, w in table:
            total += w
            self.cum.append(total)

    def __call__(self, rng: random.Random):
        return rng.choices(self.values, cum_weights=self.cum)[0]


_PICK_FAMILY = {k: _Pick(v) for k, v in _FAMILY.items()}
_PICK_MIDDLE = {k: _Pick(v) for k, v in _MIDDLE.items()}
_PICK_ETH = _Pick(_ETHNICITY)
_PICK_SIZE = _Pick(_SIZES)
_PICK_CARRIER = _Pick(_CARRIERS)
_PICK_PROVINCE = _Pick(_PROVINCES)

# --------------------------------------------------------------------------- public records


@dataclass(frozen=True)
class Volunteer:
    """A team member account."""

    username: str
    display_name: str
    team: str  # tdp01… or "ward"
    leader: bool
    trained_on: date | None
    device_id: str

    @property
    def label(self) -> str:
        """The ``label`` of ``volunteers.csv``: ``Hà Thị Thu – Tổ 3`` (``– Phường`` for ward)."""
        team = f"Tổ {int(self.team[3:])}" if self.team.startswith("tdp") else "Phường"
        return f"{self.display_name} – {team}"


@dataclass(frozen=True)
class StreetChoice:
    """One street of the form's ``street`` choice list."""

    code: str
    label_vi: str
    tdps: tuple[str, ...]


@dataclass
class Person:
    """A true household member. ``status`` holds the member answers of the first survey."""

    person_id: str
    household_id: str
    position: int
    name: str  # NFC, the true spelling
    birth_year: int
    sex: str  # male | female
    relation: str  # head, spouse, child, child_in_law, grandchild, parent, sibling, other
    status: dict[str, str]
    since: date | None = None  # joined after the first survey (a birth)
    changes: list[tuple[date, str, str]] = field(default_factory=list)

    def status_at(self, day: date) -> dict[str, str]:
        """Member answers on ``day``: ``status`` plus the services completed before it."""
        out = dict(self.status)
        for when, key, value in self.changes:
            if when < day:
                out[key] = value
        return out


@dataclass
class Household:
    """A true household, with its first-survey answers and its trap role."""

    household_id: str
    tdp: str
    street: str  # street code of the form
    alley: str
    house_no: str
    landmark: str
    ethnicity: str
    members: list[Person]
    phone: str = ""  # national format, "" = none
    phone_owner: str = ""
    pid: str = ""  # raw 12-digit identity number of the head ("" = none); truth only
    id_given: bool = False  # the head gives the number in the first survey
    consent: bool = True
    absent_first: bool = False
    answers: dict[str, str] = field(default_factory=dict)
    location: tuple[float, float] = (0.0, 0.0)
    helper: str = ""  # assigned helper's username when nobody is a digital citizen
    trap: str = ""  # hard-negative kind when this household is the "b" side of a trap
    trap_of: str = ""  # the "a" household of that trap
    entity_ids: list[str] = field(default_factory=list)  # creates, in survey order
    answer_changes: list[tuple[date, str, str]] = field(default_factory=list)

    @property
    def head(self) -> Person:
        return self.members[0]

    def members_at(self, day: date) -> list[Person]:
        return [p for p in self.members if p.since is None or p.since <= day]

    def answers_at(self, day: date) -> dict[str, str]:
        out = dict(self.answers)
        for when, key, value in self.answer_changes:
            if when < day:
                out[key] = value
        return out


@dataclass(frozen=True)
class HardNegative:
    """Two distinct households that look alike and must never be merged."""

    kind: str  # father_son | shared_phone | namesake | same_address
    household_a: str
    household_b: str


@dataclass(frozen=True)
class Duplicate:
    """One extra ``hh_mode = new`` survey of an already surveyed household."""

    household_id: str
    entity_id: str
    original_entity_id: str
    ordinal: int  # 2 = second survey, 3 = third
    operator: str  # one of OPERATORS
    no_id: bool  # the volunteer did not ask for the identity number (30 %)
    year_shift: int  # -1, 0 or +1 on the head's birth year (then no number either)
    member_change: str  # "", "missing" or "added"
    as_resurvey: bool  # a later re-survey entered as new (Apr-Oct)
    username: str


@dataclass(frozen=True)
class Upload:
    """One submission as a volunteer's phone sends it."""

    seq: int
    form_id: str
    form_version: str
    instance_id: str
    xml: bytes
    attachments: dict[str, bytes]
    username: str  # the uploading (authenticated) account
    received_at: datetime  # Asia/Ho_Chi_Minh
    event_date: date  # survey_date / visit_date
    kind: str  # survey | absent | refusal | duplicate | resurvey | withdrawal | visit
    true_household: str
    entity_id: str | None  # created, updated or (visit) referenced entity
    entity_action: str  # create | update | none
    base_version: int | None
    noise: str = ""  # duplicate operator, or "alias" for a visit to a non-canonical entity


@dataclass
class SyntheticWard:
    """The generated ward: truth, ground-truth relations and uploads in upload-time order."""

    seed: int
    year: int
    tdps: tuple[str, ...]
    streets: tuple[StreetChoice, ...]
    official_households: dict[str, int]
    volunteers: list[Volunteer]
    households: list[Household]
    hard_negatives: list[HardNegative]
    duplicates: list[Duplicate]
    uploads: list[Upload]
    canonical_entity: dict[str, str]  # household id -> its earliest uploaded entity
    entity_household: dict[str, str]  # entity id -> true household id

    @property
    def persons(self) -> list[Person]:
        return [p for h in self.households for p in h.members]

    @property
    def survey_uploads(self) -> list[Upload]:
        return [u for u in self.uploads if u.form_id != "support_visit"]

    @property
    def visit_uploads(self) -> list[Upload]:
        return [u for u in self.uploads if u.form_id == "support_visit"]

    def household(self, household_id: str) -> Household:
        return self._by_id()[household_id]

    def _by_id(self) -> dict[str, Household]:
        cache = self.__dict__.get("_hh_cache")
        if cache is None or len(cache) != len(self.households):
            cache = {h.household_id: h for h in self.households}
            self.__dict__["_hh_cache"] = cache
        return cache

    def summary(self) -> dict[str, object]:
        kinds = Counter(u.kind for u in self.uploads)
        visits = self.visit_uploads
        return {
            "seed": self.seed,
            "households": len(self.households),
            "trap_households": sum(1 for h in self.households if h.trap),
            "members": len(self.persons),
            "volunteers": len(self.volunteers),
            "uploads": len(self.uploads),
            "uploads_by_kind": dict(sorted(kinds.items())),
            "entities": len(self.entity_household),
            "snapshots": sum(1 for u in self.survey_uploads if u.entity_action != "none"),
            "consented_snapshots": sum(
                1 for u in self.survey_uploads if u.kind in ("survey", "duplicate", "resurvey")),
            "duplicates": len(self.duplicates),
            "duplicates_by_operator": dict(sorted(Counter(d.operator for d in self.duplicates)
                                                  .items())),
            "true_duplicate_pairs": len(true_duplicate_pairs(self)),
            "hard_negatives": len(self.hard_negatives),
            "hard_negatives_by_kind": dict(sorted(Counter(n.kind for n in self.hard_negatives)
                                                  .items())),
            "visits": len(visits),
            "visits_to_alias": sum(1 for u in visits if u.noise == "alias"),
            "service_blocks": sum(u.xml.count(b"<svc>") for u in visits),
        }

    def write_to(self, folder: str | Path) -> Path:
        return write_to(self, folder)


def true_duplicate_pairs(ward: SyntheticWard) -> set[tuple[str, str]]:
    """Pairs (sorted) of entity ids created for the same true household."""
    return {
        (a, b) if a < b else (b, a)
        for h in ward.households
        for a, b in combinations(h.entity_ids, 2)
    }


def hard_negative_pairs(ward: SyntheticWard) -> set[tuple[str, str]]:
    """Pairs (sorted) of entity ids of the two households of every hard negative."""
    out = set()
    for neg in ward.hard_negatives:
        for a in ward.household(neg.household_a).entity_ids:
            for b in ward.household(neg.household_b).entity_ids:
                out.add((a, b) if a < b else (b, a))
    return out


# --------------------------------------------------------------------------- Vietnamese text

_TONES = ("\u0301", "\u0300", "\u0309", "\u0303", "\u0323")
_TONE_SET = frozenset(_TONES)
_QUALITY = {  # (base, quality mark) -> alternative quality marks
    ("u", ""): ("\u031b",), ("u", "\u031b"): ("",),
    ("o", ""): ("\u0302", "\u031b"), ("o", "\u0302"): ("", "\u031b"),
    ("o", "\u031b"): ("", "\u0302"),
    ("a", ""): ("\u0306", "\u0302"), ("a", "\u0306"): ("", "\u0302"),
    ("a", "\u0302"): ("", "\u0306"),
    ("e", ""): ("\u0302",), ("e", "\u0302"): ("",),
}
_MOVABLE = frozenset({("o", "a"), ("o", "e"), ("u", "y")})


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def _clusters(word: str) -> list[str]:
    """Letters of a word in NFD, each with its combining marks."""
    out: list[str] = []
    for ch in unicodedata.normalize("NFD", word):
        if unicodedata.combining(ch) and out:
            out[-1] += ch
        else:
            out.append(ch)
    return out


def strip_marks(text: str) -> str:
    """``Nguyễn Văn Đức`` -> ``Nguyen Van Duc``."""
    bare = "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c))
    return _nfc(bare.replace("đ", "d").replace("Đ", "D"))


def _has_marks(text: str) -> bool:
    return strip_marks(text) != _nfc(text)


def _move_tone(word: str) -> str | None:
    """Old/new tone placement (``hòa`` <-> ``hoà``, ``thúy`` <-> ``thuý``); None if n/a."""
    cl = _clusters(word)
    if len(cl) < 2 or (cl[-2][0].lower(), cl[-1][0].lower()) not in _MOVABLE:
        return None
    first, last = cl[-2][1:], cl[-1][1:]
    if any(m not in _TONE_SET for m in first + last):
        return None
    if first and not last:
        cl[-2], cl[-1] = cl[-2][0], cl[-1] + first
    elif last and not first:
        cl[-2], cl[-1] = cl[-2] + last, cl[-1][0]
    else:
        return None
    return _nfc("".join(cl))


def _tone_variant(name: str) -> str | None:
    words = name.split(" ")
    changed = False
    for i, w in enumerate(words):
        moved = _move_tone(w)
        if moved is not None:
            words[i], changed = moved, True
    return " ".join(words) if changed else None


def _change_vowel(word: str, rng: random.Random) -> str:
    """Change one vowel's quality or tone (``Hùng`` -> ``Hưng``, ``Tâm`` -> ``Tám``)."""
    cl = _clusters(word)
    quality: list[tuple[int, str]] = []
    tone: list[tuple[int, str]] = []
    toned = [i for i, c in enumerate(cl) if any(m in _TONE_SET for m in c[1:])]
    vowels = [i for i, c in enumerate(cl) if c[0].lower() in "aeiouy"]
    for i in vowels:
        base, marks = cl[i][0], cl[i][1:]
        q = "".join(m for m in marks if m not in _TONE_SET)
        t = "".join(m for m in marks if m in _TONE_SET)
        for alt in _QUALITY.get((base.lower(), q), ()):
            quality.append((i, base + alt + t))
        if i in toned or (not toned and i == vowels[-1]):
            for alt in ("", *_TONES):
                if alt != t:
                    tone.append((i, base + q + alt))
    options = quality if quality and (rng.random() < 0.6 or not tone) else tone
    if not options:
        return word + word[-1]
    i, new = rng.choice(options)
    cl[i] = new
    return _nfc("".join(cl))


def _typo(word: str, rng: random.Random) -> str:
    """Delete, duplicate or swap one letter."""
    cl = [_nfc(c) for c in _clusters(word)]
    for _ in range(10):
        op = rng.choice(("delete", "duplicate", "swap"))
        i = rng.randrange(1, len(cl)) if len(cl) > 1 else 0  # keep the capital letter
        out = list(cl)
        if op == "delete" and len(cl) > 2:
            del out[i]
        elif op == "duplicate":
            out.insert(i + 1, cl[i])
        elif op == "swap" and i + 1 < len(cl) and cl[i] != cl[i + 1]:
            out[i], out[i + 1] = out[i + 1], out[i]
        else:
            continue
        result = "".join(out)
        if result != word:
            return result
    return word + cl[-1]


def _xml_text(value: str) -> str:
    if "&" not in value and "<" not in value and ">" not in value:
        return value
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _xml_attr(value: str) -> str:
    return _xml_text(value).replace('"', "&quot;")


# --------------------------------------------------------------------------- XForm templates


@dataclass
class _Node:
    name: str
    rel: str  # path below the root, or below the repeat row for nodes inside a repeat
    path: str  # path below the root
    default: str
    attrs: tuple[tuple[str, str], ...]
    children: list[_Node] | None  # None: a leaf
    repeat: bool = False


class _Template:
    """The primary instance of an XForm, compiled for fast Collect-like serialisation."""

    def __init__(self, xform: bytes):
        data = primary_instance(xform)
        self.root = local_name(data)
        self.form_id = data.get("id") or ""
        self.version = data.get("version") or ""
        self.root_attrs = [(k.rsplit("}", 1)[-1], v) for k, v in data.attrib.items()]
        self.known: dict[str, set[str]] = {"": set()}
        self.nodes = self._compile(data, "", "", "")

    def _compile(self, el, rel: str, path: str, scope: str) -> list[_Node]:
        nodes: list[_Node] = []
        seen: set[str] = set()
        for child in el:
            if not isinstance(child.tag, str):
                continue
            name = local_name(child)
            if name in seen:  # pyxform's plain copy of a repeat
                continue
            seen.add(name)
            crel = f"{rel}/{name}" if rel else name
            cpath = f"{path}/{name}" if path else name
            is_repeat = child.get(f"{{{_JR}}}template") is not None or child.get("template") \
                is not None
            attrs = tuple((k.rsplit("}", 1)[-1], v) for k, v in child.attrib.items()
                          if k.rsplit("}", 1)[-1] != "template")
            self.known[scope].add(crel)
            if is_repeat:
                self.known[cpath] = set()
                nodes.append(_Node(name, crel, cpath, "", (),
                                   self._compile(child, "", cpath, cpath), True))
            elif any(isinstance(c.tag, str) for c in child):
                nodes.append(_Node(name, crel, cpath, "", attrs,
                                   self._compile(child, crel, cpath, scope)))
            else:
                nodes.append(_Node(name, crel, cpath, (child.text or "").strip(), attrs, None))
        return nodes

    def render(
        self,
        values: dict[str, str],
        *,
        repeats: dict[str, list[tuple[dict[str, str], set[str]]]] | None = None,
        drop: set[str] = frozenset(),
        attrs: dict[str, dict[str, str]] | None = None,
    ) -> bytes:
        """Serialise like Collect: one line, absent = not relevant, ``<x/>`` when empty."""
        self._check("", values, drop)
        out = ["<?xml version='1.0' encoding='UTF-8' ?>",
               f'<{self.root} xmlns:jr="{_JR}" xmlns:orx="http://openrosa.org/xforms"']
        out.extend(f' {k}="{_xml_attr(v)}"' for k, v in self.root_attrs)
        out.append(">")
        self._emit(self.nodes, values, drop, repeats or {}, attrs or {}, out)
        out.append(f"</{self.root}>")
        return "".join(out).encode("utf-8")

    def _check(self, scope: str, values, drop) -> None:
        known = self.known[scope]
        unknown = [k for k in (*values, *drop) if k not in known]
        if unknown:
            raise KeyError(f"{self.form_id}: no element {unknown[0]!r} in the form")

    def _emit(self, nodes, values, drop, repeats, attrs, out) -> None:
        for n in nodes:
            if n.rel in drop:
                continue
            if n.repeat:
                for row, row_drop in repeats.get(n.path, ()):
                    self._check(n.path, row, row_drop)
                    out.append(f"<{n.name}>")
                    self._emit(n.children, row, row_drop, repeats, {}, out)
                    out.append(f"</{n.name}>")
                continue
            extra = attrs.get(n.rel)
            pairs = n.attrs if extra is None else tuple((k, extra.get(k, v)) for k, v in n.attrs)
            attr_text = "".join(f' {k}="{_xml_attr(v)}"' for k, v in pairs)
            if n.children is None:
                value = values.get(n.rel, n.default)
                out.append(f"<{n.name}{attr_text}>{_xml_text(value)}</{n.name}>" if value
                           else f"<{n.name}{attr_text}/>")
            else:
                out.append(f"<{n.name}{attr_text}>")
                self._emit(n.children, values, drop, repeats, attrs, out)
                out.append(f"</{n.name}>")


def _choice_lists(xform: bytes) -> tuple[dict[str, list[dict[str, str]]], dict[str, str]]:
    """Secondary-instance choice lists ({list: [item fields]}) and default-language itext."""
    root = parse_xml(xform)
    lists: dict[str, list[dict[str, str]]] = {}
    for inst in root.iter(f"{_XF}instance"):
        if inst.get("id") and inst.get("src") is None:
            items = []
            for item in inst.iter(f"{_XF}item"):
                items.append({local_name(c): (c.text or "") for c in item
                              if isinstance(c.tag, str)})
            lists[inst.get("id")] = items
    texts: dict[str, str] = {}
    translations = list(root.iter(f"{_XF}translation"))
    default = next((t for t in translations if t.get("default")), None)
    if default is None and translations:
        default = translations[0]
    if default is not None:
        for text in default.iter(f"{_XF}text"):
            value = text.find(f"{_XF}value")
            if value is not None:
                texts[text.get("id")] = "".join(value.itertext())
    return lists, texts


# --------------------------------------------------------------------------- internal records


@dataclass
class _Snap:
    """What a volunteer typed in one household survey."""

    tdp: str
    mode: str = "new"
    existing: str = ""
    contact: str = "met"
    consent: str = "yes"
    street: str = ""
    street_other: str = ""
    alley: str = ""
    house_no: str = ""
    landmark: str = ""
    head_name: str = ""
    head_by: int = 0
    head_sex: str = ""
    phone: str = ""
    phone_owner: str = ""
    id_ok: str = "no"
    head_id: str = ""
    members: list[tuple[str, str, int, str, dict[str, str]]] = field(default_factory=list)
    answers: dict[str, str] = field(default_factory=dict)
    helper: str = ""
    location: str = ""
    photo: bool = False
    notes: str = ""


@dataclass
class _Entity:
    id: str
    household: Household
    creator: Volunteer
    event: _Event
    tdp: str
    ordinal: int
    props: dict[str, str] = field(default_factory=dict)


@dataclass
class _Event:
    seq: int
    kind: str
    household: Household
    volunteer: Volunteer
    start: datetime
    day: date  # survey_date / visit_date
    end: datetime = None  # type: ignore[assignment]
    received: datetime = None  # type: ignore[assignment]
    entity: _Entity | None = None
    action: str = "none"
    snap: _Snap | None = None
    visit: dict | None = None
    noise: str = ""
    dup: dict | None = None


# --------------------------------------------------------------------------- generator


def _largest_remainder(weights: list[float], total: int) -> list[int]:
    s = sum(weights)
    if total <= 0 or s <= 0:
        return [0] * len(weights)
    raw = [w * total / s for w in weights]
    base = [int(math.floor(r)) for r in raw]
    order = sorted(range(len(raw)), key=lambda i: (-(raw[i] - base[i]), i))
    for i in order[: total - sum(base)]:
        base[i] += 1
    return base


def _band(age: int) -> int:
    return 0 if age < 15 else 1 if age < 30 else 2 if age < 45 else 3 if age < 60 else \
        4 if age < 70 else 5


def _clip(value: int, lo: int, hi: int) -> int:
    return max(lo, min(hi, value))


def _uuid4(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _iso_dt(moment: datetime) -> str:
    """ODK's date-time: ``2026-01-12T09:15:23.123+07:00``."""
    return moment.isoformat(timespec="milliseconds")


def _between(rng: random.Random, lo: date, hi: date) -> date:
    if hi <= lo:
        return lo
    return lo + timedelta(days=rng.randint(0, (hi - lo).days))


class _Generator:
    def __init__(self, survey_xform: bytes, visit_xform: bytes | None, *, seed: int,
                 households: int, tdps: int, dup_share: float, year: int):
        self.rng = random.Random(seed)
        self.seed, self.n_base, self.dup_share, self.year = seed, households, dup_share, year
        self.survey = _Template(survey_xform)
        self.visit_tpl = _Template(visit_xform) if visit_xform is not None else None
        lists, _ = _choice_lists(survey_xform)
        form_tdps = [i["name"] for i in lists.get("tdp", [])]
        if tdps > len(form_tdps):
            raise ValueError(f"the survey form lists {len(form_tdps)} tổ, {tdps} requested")
        self.tdps = tuple(form_tdps[:tdps])
        self.streets = tuple(
            StreetChoice(i["name"], i.get("label_vi") or i["name"],
                         tuple(i.get("tdp_list", "").split()))
            for i in lists.get("street", []) if i["name"] != "other")
        self.street_by_code = {s.code: s for s in self.streets}
        self.services: dict[str, tuple[str, str]] = {}
        if visit_xform is not None:
            vlists, vtexts = _choice_lists(visit_xform)
            for item in vlists.get("service", []):
                label = vtexts.get(item.get("itextId", ""), item["name"])
                self.services[item["name"]] = (label, item.get("level", "person"))
        self.used_addresses: set[tuple] = set()
        self.used_phones: set[str] = set()
        self.used_pids: set[str] = set()
        self.events: list[_Event] = []
        self.entities: dict[str, _Entity] = {}
        self.hh_seq = 0
        self._feasible: dict[tuple[str, str], bool] = {}

    # ----------------------------------------------------------------- people and names

    def name(self, family: str, sex: str, by: int, avoid=()) -> str:
        rng = self.rng
        young = by >= 1985
        name = ""
        for _ in range(30):
            parts = [family, _PICK_MIDDLE[(sex, young)](rng)]
            if sex == "female" and parts[1] == "Thị" and rng.random() < 0.12:
                second = _PICK_MIDDLE[(sex, young)](rng)
                if second != "Thị":
                    parts.append(second)
            given = rng.choice(_GIVEN[(sex, young)])
            if given == parts[-1]:
                continue
            name = " ".join([*parts, given])
            if name not in avoid:
                return name
        return name

    def status(self, age: int) -> dict[str, str]:
        """Member answers for the fields relevant at ``age`` (§8.5)."""
        rng = self.rng
        if age < 10:
            return {}
        b = _band(age)

        def yn(p: float, dk: bool = True) -> str:
            if dk and rng.random() < _DK_SHARE:
                return "dk"
            return "yes" if rng.random() < p else "no"

        s: dict[str, str] = {}
        smart = rng.random() < _SMART[b]
        s["m_smartphone"] = "yes" if smart else "no"
        four = ["call_msg", "search", "install", "safety"]
        if smart and rng.random() < _BASIC[b]:
            skills = [*four, "online_form"] if rng.random() < 0.5 else four
        elif smart:
            skills = [k for k in four if rng.random() < 0.6]
            if len(skills) == 4:
                skills = skills[:3]
            skills = skills or ["call_msg"]
        else:
            skills = ["call_msg"] if rng.random() < 0.3 else ["none"]
        s["m_skills"] = " ".join(skills)
        if age >= 14:
            p_none, p_l1, _ = _VNEID[b]
            r = rng.random()
            s["m_vneid"] = "none" if r < p_none else "l1" if r < p_none + p_l1 else "l2"
            s["m_ehealth"] = yn(_EHEALTH_L2[b] if s["m_vneid"] == "l2" else 0.0)
        if age >= 15:
            s["m_dvc"] = yn(_DVC_L2[b] if s["m_vneid"] == "l2" else 0.02)
            s["m_cashless"] = yn(_CASHLESS[b])
            s["m_vssid"] = yn(_VSSID[b])
            s["m_bdhvs"] = yn(_BDHVS[b])
        if age >= 18:
            s["m_digisig"] = yn(_DIGISIG[b])
        if 14 <= age <= 20:
            p = 0.92 if 15 <= age <= 17 else 0.10 if age == 18 else 0.05
            s["m_student"] = "yes" if rng.random() < p else "no"
            if s["m_student"] == "yes":
                s["m_student_trained"] = yn(0.70)
        if age >= 14:
            s["m_needs"] = " ".join(self.needs(s, age))
        return s

    def needs(self, s: dict[str, str], age: int) -> list[str]:
        rng = self.rng
        p = 0.006 if age >= 70 else 0.012
        if _Generator.capable(s):
            p /= 4
        out = []
        vneid = s.get("m_vneid")
        if vneid == "none" and rng.random() < p * 2:
            out.append("vneid_l1" if rng.random() < 0.5 else "vneid_l2")
        elif vneid == "l1" and rng.random() < p * 2:
            out.append("vneid_l2")
        elif vneid == "l2" and rng.random() < p / 3:
            out.append("vneid_use")
        if age >= 15:
            if s.get("m_dvc") != "yes" and rng.random() < p * 1.5:
                out.append("dvc_account")
            if s.get("m_dvc") == "yes" and rng.random() < 0.05:
                out.append("dvc_procedure")
            if s.get("m_cashless") != "yes" and rng.random() < p:
                out.append("cashless")
            if s.get("m_vssid") != "yes" and rng.random() < p / 2:
                out.append("vssid")
            if s.get("m_bdhvs") != "yes" and rng.random() < p / 2:
                out.append("bdhvs")
        if age >= 18 and s.get("m_digisig") != "yes" and rng.random() < 0.02:
            out.append("digisig")
        if s.get("m_ehealth") != "yes" and rng.random() < p / 3:
            out.append("ehealth")
        if "safety" not in s.get("m_skills", "") and rng.random() < p:
            out.append("safety")
        return out

    def new_phone(self, landline: bool = False) -> str:
        rng = self.rng
        while True:
            if landline:
                number = "0207" + "".join(rng.choice("0123456789") for _ in range(7))
            else:
                prefix = rng.choice(_PICK_CARRIER(rng))
                number = prefix + "".join(rng.choice("0123456789") for _ in range(7))
            if number not in self.used_phones:
                self.used_phones.add(number)
                return number

    def new_pid(self, sex: str, by: int) -> str:
        rng = self.rng
        century = 0 if by < 2000 else 2
        head = f"{_PICK_PROVINCE(rng)}{century + (1 if sex == 'female' else 0)}{by % 100:02d}"
        while True:
            pid = head + f"{rng.randrange(1_000_000):06d}"
            if pid not in self.used_pids:
                self.used_pids.add(pid)
                return pid

    # ----------------------------------------------------------------- households

    def new_address(self, tdp: str) -> tuple[str, str, str, str]:
        rng = self.rng
        streets = [s.code for s in self.streets if tdp in s.tdps] or ["other"]
        n = int(tdp[3:]) if tdp[3:].isdigit() else 1
        for _ in range(1000):
            street = rng.choice(streets)
            if rng.random() < 0.03:
                landmark = rng.choice(_LANDMARKS).format(n=n)
                key = (tdp, street, "", "", landmark)
                if key not in self.used_addresses:
                    self.used_addresses.add(key)
                    return street, "", "", landmark
                continue
            alley = ""
            if rng.random() < 0.30:
                alley = str(rng.randint(1, 40))
                if rng.random() < 0.2:
                    alley += f"/{rng.randint(1, 20)}"
            house = str(rng.randint(1, 400))
            if rng.random() < 0.05:
                house += rng.choice("ABC")
            key = (tdp, street, alley, house, "")
            if key not in self.used_addresses:
                self.used_addresses.add(key)
                return street, alley, house, ""
        raise RuntimeError(f"no free address left in {tdp}")

    def location(self, tdp: str) -> tuple[float, float]:
        i = self.tdps.index(tdp)
        lat = 21.80 + 0.008 * (i // 5) + self.rng.uniform(-0.003, 0.003)
        lon = 105.19 + 0.008 * (i % 5) + self.rng.uniform(-0.003, 0.003)
        return round(lat, 7), round(lon, 7)

    def next_hid(self) -> str:
        self.hh_seq += 1
        return f"H{self.hh_seq:05d}"

    def make_household(self, tdp: str, *, head: tuple[str, int, str] | None = None,
                       size: int | None = None, ethnicity: str | None = None,
                       family: str | None = None, address=None,
                       parents: bool = True) -> Household:
        """A household (§8.2). ``head`` = (name, birth year, sex) forces the head."""
        rng, year = self.rng, self.year
        hid = self.next_hid()
        eth = ethnicity or _PICK_ETH(rng)
        fam_pick = _PICK_FAMILY[eth]
        size = size or _PICK_SIZE(rng)
        rows: list[tuple[str, int, str, str]] = []  # name, by, sex, relation
        if head is None:
            head_sex = "male" if rng.random() < 0.72 else "female"
            if size == 1 and rng.random() < 0.6:
                age = rng.randint(65, 90)
            else:
                age = _clip(round(rng.gauss(52, 14)), 22, 64 if size == 1 else 90)
            head_by = year - age
            head_fam = family or fam_pick(rng)
            head_name = self.name(head_fam, head_sex, head_by)
        else:
            head_name, head_by, head_sex = head
            head_fam = head_name.split(" ")[0]
        names = {head_name}
        rows.append((head_name, head_by, head_sex, "head"))
        slots = size - 1
        spouse = None
        if slots > 0 and rng.random() < 0.85:
            sp_sex = "female" if head_sex == "male" else "male"
            gap = round(rng.gauss(2, 3))
            sp_by = head_by + gap if head_sex == "male" else head_by - gap
            sp_by = _clip(sp_by, year - 95, year - 18)
            sp_fam = fam_pick(rng)
            spouse = (self.name(sp_fam, sp_sex, sp_by, names), sp_by, sp_sex, "spouse")
            names.add(spouse[0])
            rows.append(spouse)
            slots -= 1
        if parents and size >= 5 and slots > 0 and year - head_by <= 70 and rng.random() < 0.4:
            p_by = head_by - rng.randint(22, 35)
            if year - p_by <= 98:
                p_sex = "female" if rng.random() < 0.65 else "male"
                p_fam = head_fam if p_sex == "male" else fam_pick(rng)
                parent = (self.name(p_fam, p_sex, p_by, names), p_by, p_sex, "parent")
                names.add(parent[0])
                rows.append(parent)
                slots -= 1
        if head_sex == "male":
            father_fam = head_fam
            mother_by = spouse[1] if spouse else head_by + 2
        else:
            father_fam = spouse[0].split(" ")[0] if spouse else (
                head_fam if rng.random() < 0.3 else fam_pick(rng))
            mother_by = head_by
        kids: list[tuple[str, int, str, str]] = []
        tail: list[tuple[str, int, str, str]] = []
        lo, hi = mother_by + 20, min(mother_by + 40, year)
        if year - head_by >= 55 and slots >= 3 and rng.random() < 0.5 and lo <= year - 22:
            c_sex = "male" if rng.random() < 0.8 else "female"
            c_by = rng.randint(lo, min(mother_by + 30, year - 22))
            child = (self.name(father_fam, c_sex, c_by, names), c_by, c_sex, "child")
            names.add(child[0])
            kids.append(child)
            il_sex = "female" if c_sex == "male" else "male"
            il_by = _clip(c_by + round(rng.gauss(2 if il_sex == "female" else -2, 2)),
                          year - 90, year - 18)
            il_fam = fam_pick(rng)
            in_law = (self.name(il_fam, il_sex, il_by, names), il_by, il_sex, "child_in_law")
            names.add(in_law[0])
            tail.append(in_law)
            slots -= 2
            g_fam = father_fam if c_sex == "male" else il_fam
            g_mother = il_by if c_sex == "male" else c_by
            g_lo, g_hi = g_mother + 20, min(g_mother + 40, year)
            for _ in range(rng.randint(1, slots) if g_lo <= g_hi else 0):
                g_sex = rng.choice(("male", "female"))
                g_by = rng.randint(g_lo, g_hi)
                g = (self.name(g_fam, g_sex, g_by, names), g_by, g_sex, "grandchild")
                names.add(g[0])
                tail.append(g)
                slots -= 1
        for _ in range(slots):
            if lo <= hi:
                c_sex = rng.choice(("male", "female"))
                c_by = rng.randint(lo, hi)
                row = (self.name(father_fam, c_sex, c_by, names), c_by, c_sex, "child")
            else:
                s_sex = rng.choice(("male", "female"))
                s_by = _clip(head_by + rng.randint(-10, 10), year - 90, year - 10)
                row = (self.name(head_fam, s_sex, s_by, names), s_by, s_sex, "sibling")
            names.add(row[0])
            kids.append(row)
        kids.sort(key=lambda r: r[1])
        rows.extend(kids)
        rows.extend(tail)
        members = [
            Person(f"{hid}-{i + 1}", hid, i + 1, name, by, sex, rel, self.status(year - by))
            for i, (name, by, sex, rel) in enumerate(rows)
        ]
        street, alley, house, landmark = address or self.new_address(tdp)
        h = Household(hid, tdp, street, alley, house, landmark, eth, members)
        h.location = self.location(tdp) if address is None else (0.0, 0.0)
        return h

    def household_answers(self, h: Household) -> None:
        rng, year = self.rng, self.year
        a: dict[str, str] = {}
        r = rng.random()
        a["hh_informed"] = "before" if r < 0.6 else "now" if r < 0.9 else "no"
        if a["hh_informed"] == "before":
            channels = ["loudspeaker", "meeting", "zalo", "leaflet", "team_visit", "tv_press",
                        "social", "school", "other"]
            weights = [30, 25, 30, 10, 15, 15, 15, 8, 2]
            chosen: list[str] = []
            for _ in range(rng.randint(1, 3)):
                c = rng.choices(channels, weights=weights)[0]
                if c not in chosen:
                    chosen.append(c)
            a["hh_channels"] = " ".join(c for c in channels if c in chosen)
        smart = any(p.status.get("m_smartphone") == "yes" for p in h.members)
        internet = []
        if rng.random() < 0.65:
            internet.append("fixed")
        if smart and rng.random() < 0.85:
            internet.append("mobile")
        a["hh_internet"] = " ".join(internet) or "none"
        pupils = any(3 <= year - p.birth_year <= 17 for p in h.members)
        a["hh_pupils"] = "yes" if (pupils and rng.random() < 0.95) else "no"
        if a["hh_pupils"] == "yes":
            a["hh_school_app"] = "dk" if rng.random() < _DK_SHARE else (
                "yes" if rng.random() < 0.7 else "no")
        a["hh_business"] = "yes" if rng.random() < 0.18 else "no"
        if a["hh_business"] == "yes":
            a["biz_registered"] = "dk" if rng.random() < _DK_SHARE else (
                "yes" if rng.random() < 0.6 else "no")
            a["biz_type"] = rng.choices(("retail", "food", "service", "agri", "craft", "other"),
                                        weights=(35, 20, 20, 12, 8, 5))[0]
            a["biz_cashless"] = "yes" if rng.random() < 0.65 else "no"
            if a["biz_cashless"] == "yes":
                methods = [m for m, p in (("qr_bank", .9), ("ewallet", .3), ("card", .05))
                           if rng.random() < p]
                a["biz_pay_methods"] = " ".join(methods or ["qr_bank"])
            a["biz_ocop"] = "yes" if rng.random() < 0.04 else "no"
            if a["biz_ocop"] == "yes":
                a["biz_ocop_name"] = rng.choice(_OCOP)
            if rng.random() < 0.3:
                online = [c for c, p in (("social", .8), ("marketplace", .35), ("postmart", .05),
                                         ("voso", .05), ("website", .05)) if rng.random() < p]
                a["biz_online"] = " ".join(online or ["social"])
            else:
                a["biz_online"] = "none"
        h.answers = a

    def give_phone(self, h: Household, number: str | None = None) -> None:
        rng = self.rng
        h.phone = number or self.new_phone(landline=rng.random() < 0.02)
        head_smart = h.head.status.get("m_smartphone") == "yes"
        others = [p for p in h.members[1:] if p.status.get("m_smartphone") == "yes"]
        if h.phone.startswith("02") or (head_smart and rng.random() < 0.85) or not others:
            h.phone_owner = "head"
        else:
            h.phone_owner = "member"

    # ----------------------------------------------------------------- the ward

    def volunteers(self) -> list[Volunteer]:
        rng = self.rng
        out: list[Volunteer] = []
        names: set[str] = set()

        def make(username: str, team: str, leader: bool) -> Volunteer:
            sex = rng.choice(("male", "female"))
            by = rng.randint(1968, 2004)
            name = self.name(_PICK_FAMILY[_PICK_ETH(rng)](rng), sex, by, names)
            names.add(name)
            trained = None
            if rng.random() < 0.9:
                trained = _between(rng, date(self.year, 1, 5), date(self.year, 6, 30))
            device = "collect:" + "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmn"
                                                     "opqrstuvwxyz0123456789") for _ in range(16))
            return Volunteer(username, name, team, leader, trained, device)

        for tdp in self.tdps:
            for k in range(1, 6):
                out.append(make(f"{tdp}-{k}", tdp, k == 1))
        for k in range(1, 11):
            out.append(make(f"ward-{k:02d}", "ward", False))
        return out

    def build_truth(self) -> None:
        rng = self.rng
        self.vols = self.volunteers()
        self.by_username = {v.username: v for v in self.vols}
        self.team = {t: [v for v in self.vols if v.team == t] for t in self.tdps}
        self.ward_team = [v for v in self.vols if v.team == "ward"]
        weights = [_clip(round(rng.gauss(400, 60)), 250, 550) for _ in self.tdps]
        counts = _largest_remainder(weights, self.n_base)
        self.households: list[Household] = []
        for tdp, n in zip(self.tdps, counts, strict=True):
            for _ in range(n):
                self.households.append(self.make_household(tdp))
        base = list(self.households)
        for h in rng.sample(base, round(_REFUSE_SHARE * len(base))):
            h.consent = False
        self.hard_negatives: list[HardNegative] = []
        self.make_traps(base)
        everyone = self.households
        for h in everyone:
            if not h.answers:
                self.household_answers(h)
        phoneless = [h for h in everyone if not h.phone and not h.trap]
        n_phone = round(_PHONE_SHARE * len(everyone)) - sum(1 for h in everyone if h.phone)
        for h in rng.sample(phoneless, max(0, min(n_phone, len(phoneless)))):
            self.give_phone(h)
        consented = [h for h in everyone if h.consent]
        for h in rng.sample(consented, round(_ID_SHARE * len(consented))):
            h.id_given = True
        for h in everyone:  # the raw number exists for every head; only some give it
            h.pid = self.new_pid(h.head.sex, h.head.birth_year)
        for h in rng.sample(everyone, round(_ABSENT_SHARE * len(everyone))):
            h.absent_first = True
        for h in consented:
            if not any(self.capable(p.status) for p in h.members):
                pool = self.team[h.tdp][1:] or self.team[h.tdp]
                h.helper = (rng.choice(self.ward_team) if rng.random() < 0.1 else
                            rng.choice(pool)).username
        official = {}
        for tdp in self.tdps:
            true = sum(1 for h in everyone if h.tdp == tdp)
            official[tdp] = true + round(true * rng.uniform(0, 0.03))
        self.official = official

    @staticmethod
    def capable(s: dict[str, str]) -> bool:
        skills = s.get("m_skills", "").split()
        basic = all(k in skills for k in ("call_msg", "search", "install", "safety"))
        return basic and s.get("m_vneid") in ("l1", "l2") and s.get("m_dvc") == "yes"

    def make_traps(self, base: list[Household]) -> None:
        rng, year = self.rng, self.year
        pool = [h for h in base if h.consent]
        used: set[str] = set()
        n = {kind: round(share * len(base)) for kind, share in _HARD_NEGATIVE_SHARES}
        def candidates(ok) -> list[Household]:
            return [h for h in pool if h.household_id not in used and ok(h)]

        def add(kind: str, a: Household, b: Household) -> None:
            used.add(a.household_id)
            b.trap, b.trap_of = kind, a.household_id
            self.households.append(b)
            self.hard_negatives.append(HardNegative(kind, a.household_id, b.household_id))

        # Father and son with the same full name at the same address, two households.
        fathers = candidates(lambda h: h.head.sex == "male" and bool(h.house_no)
                             and year - h.head.birth_year >= 48)
        for a in rng.sample(fathers, min(n["father_son"], len(fathers))):
            son_by = min(a.head.birth_year + rng.randint(24, 32), year - 22)
            size = rng.choice((2, 3, 3, 4, 4, 5))
            b = self.make_household(a.tdp, head=(a.head.name, son_by, "male"), size=size,
                                    ethnicity=a.ethnicity, parents=False,
                                    address=(a.street, a.alley, a.house_no, a.landmark))
            b.location = a.location
            self.ensure_phone(a)
            self.give_phone(b)
            add("father_son", a, b)
        # A relative's household that uses this household's phone.
        anyone = candidates(lambda h: True)
        relatives = rng.sample(anyone, min(n["shared_phone"], len(anyone)))
        flagged = [k < round(0.6 * len(relatives)) for k in range(len(relatives))]
        rng.shuffle(flagged)
        for a, flag in zip(relatives, flagged, strict=True):
            self.ensure_phone(a, mobile=True)
            head = a.head
            age = year - head.birth_year
            r = rng.random()
            fam = head.name.split(" ")[0]
            if r < 0.3:  # a sibling, 2-8 years apart, another given name
                sex = rng.choice(("male", "female"))
                by = _clip(head.birth_year + rng.choice((-1, 1)) * rng.randint(2, 8),
                           year - 95, year - 22)
                given = head.name.split(" ")[-1]
                name = head.name
                for _ in range(30):
                    name = self.name(fam, sex, by)
                    if strip_marks(name.split(" ")[-1]) != strip_marks(given):
                        break
                b_head, size = (name, by, sex), rng.choice((1, 2, 3, 4))
            elif r < 0.8 and age <= 65:  # an elderly parent living alone or as a couple
                sex = "female" if rng.random() < 0.6 else "male"
                by = head.birth_year - rng.randint(22, 35)
                pfam = fam if sex == "male" else _PICK_FAMILY[a.ethnicity](rng)
                b_head, size = (self.name(pfam, sex, by, {head.name}), by, sex), \
                    rng.choice((1, 1, 2))
            else:  # a grown-up child's household
                sex = "male" if rng.random() < 0.7 else "female"
                by = min(head.birth_year + rng.randint(22, 35), year - 22)
                b_head, size = (self.name(fam, sex, by, {head.name}), by, sex), \
                    rng.choice((2, 3, 4))
            b = self.make_household(a.tdp, head=b_head, size=size, ethnicity=a.ethnicity,
                                    parents=False)
            b.phone = a.phone
            b.phone_owner = "other_hh" if flag else rng.choice(("head", "member"))
            add("shared_phone", a, b)
        # A namesake in the same tổ: same full name, birth year ±1, another address.
        numbered = candidates(lambda h: bool(h.house_no))
        for a in rng.sample(numbered, min(n["namesake"], len(numbered))):
            by = _clip(a.head.birth_year + rng.choice((-1, 0, 1)), 1900, year - 22)
            b = self.make_household(a.tdp, head=(a.head.name, by, a.head.sex),
                                    ethnicity=a.ethnicity)
            while not b.house_no:
                self.used_addresses.discard((b.tdp, b.street, "", "", b.landmark))
                b.street, b.alley, b.house_no, b.landmark = self.new_address(b.tdp)
            self.ensure_phone(a)
            self.give_phone(b)
            add("namesake", a, b)
        # Two households at one address (multi-family house), different heads.
        anyone = candidates(lambda h: True)
        for a in rng.sample(anyone, min(n["same_address"], len(anyone))):
            b = self.make_household(a.tdp, address=(a.street, a.alley, a.house_no, a.landmark))
            while self.similar_heads(a.head.name, b.head.name):
                self.hh_seq -= 1  # the retry takes the same id
                b = self.make_household(a.tdp, address=(a.street, a.alley, a.house_no,
                                                        a.landmark))
            b.location = a.location
            if rng.random() < 0.85:
                self.give_phone(b)
            add("same_address", a, b)

    @staticmethod
    def similar_heads(a: str, b: str) -> bool:
        """Same given name once the marks are gone (``Hùng``/``Hưng``), or the same name."""
        ta, tb = strip_marks(a).lower().split(), strip_marks(b).lower().split()
        return ta[-1] == tb[-1] or ta == tb

    def ensure_phone(self, h: Household, mobile: bool = False) -> None:
        if not h.phone or (mobile and h.phone.startswith("02")):
            if h.phone:
                self.used_phones.discard(h.phone)
            h.phone = ""
            self.give_phone(h, self.new_phone())

    # ----------------------------------------------------------------- time

    def work_time(self, day: date, after: datetime | None = None) -> datetime:
        rng = self.rng
        moment = datetime(day.year, day.month, day.day, rng.randint(7, 18), rng.randint(0, 59),
                          rng.randint(0, 59), rng.randrange(1000) * 1000, tzinfo=TZ)
        if after is not None and moment <= after:
            moment = after + timedelta(minutes=rng.randint(5, 90), seconds=rng.randint(0, 59))
        return moment

    def delay(self) -> timedelta:
        rng = self.rng
        r = rng.random()
        if r < 0.70:
            return timedelta(minutes=rng.randint(2, 360), seconds=rng.randint(0, 59))
        if r < 0.90:
            return timedelta(days=rng.randint(1, 3), minutes=rng.randint(0, 600))
        if r < 0.98:
            return timedelta(days=rng.randint(4, 14), minutes=rng.randint(0, 600))
        return timedelta(days=rng.randint(15, 60), minutes=rng.randint(0, 600))

    def event(self, kind: str, h: Household, vol: Volunteer, start: datetime, day: date,
              minutes: tuple[int, int] = (10, 35)) -> _Event:
        ev = _Event(len(self.events), kind, h, vol, start, day)
        ev.end = start + timedelta(minutes=self.rng.randint(*minutes),
                                   seconds=self.rng.randint(0, 59))
        ev.received = ev.end + self.delay()
        self.events.append(ev)
        return ev

    def create_entity(self, ev: _Event, tdp: str, ordinal: int) -> _Entity:
        ent = _Entity(_uuid4(self.rng), ev.household, ev.volunteer, ev, tdp, ordinal)
        ev.entity, ev.action = ent, "create"
        self.entities[ent.id] = ent
        ev.household.entity_ids.append(ent.id)
        return ent

    def avail(self, ent: _Entity, vol: Volunteer) -> datetime:
        """When ``vol``'s phone can first show ``ent``."""
        if vol.username == ent.creator.username:
            return ent.event.end + timedelta(minutes=15)
        return ent.event.received + timedelta(hours=self.rng.randint(2, 48))

    # ----------------------------------------------------------------- surveys

    def surveyor(self, tdp: str, exclude=()) -> Volunteer:
        team = self.team[tdp]
        pool = [v for v in team if v.username not in exclude] or team
        if pool[0].leader and self.rng.random() < 0.30:
            return pool[0]
        return self.rng.choice(pool[1:] or pool)

    def surveys(self) -> None:
        rng = self.rng
        self.first_event: dict[str, _Event] = {}
        for h in self.households:
            vol = self.surveyor(h.tdp)
            lo = _WAVE[0] + timedelta(days=7) if h.absent_first else _WAVE[0]
            day = _between(rng, lo, _WAVE[1])
            if h.absent_first:
                a_day = day - timedelta(days=rng.randint(1, 7))
                self.event("absent", h, vol, self.work_time(a_day), a_day, (2, 6))
            ev = self.event("survey" if h.consent else "refusal", h, vol, self.work_time(day),
                            day, (15, 40) if h.consent else (3, 8))
            self.create_entity(ev, h.tdp, 1)
            self.first_event[h.household_id] = ev

    def duplicates(self) -> None:
        rng = self.rng
        everyone = self.households
        pool: dict[str, list[Household]] = {t: [] for t in self.tdps}
        for h in everyone:
            if h.consent:
                pool[h.tdp].append(h)
        n_dup = round(self.dup_share * len(everyone))
        n_third = round(_THIRD_SHARE * len(everyone))
        left = dict(zip(self.tdps, _largest_remainder(
            [sum(1 for h in everyone if h.tdp == t) for t in self.tdps], n_dup), strict=True))
        for tdp in self.tdps:
            left[tdp] = min(left[tdp], len(pool[tdp]))
        n_dup = sum(left.values())
        ops = [op for (op, _), k in zip(OPERATORS, _largest_remainder(
            [w for _, w in OPERATORS], n_dup + n_third), strict=True) for _ in range(k)]
        rng.shuffle(ops)
        # Operators that need something of the household (a tone mark to move, a phone, a
        # house number...) choose first; the tổ keep their proportional share.
        scarce = {"tone": 0, "house": 1, "wrong_tdp": 1, "phone": 2, "ascii": 3, "nfd": 3}
        seconds, thirds = ops[:n_dup], ops[n_dup:]
        seconds.sort(key=lambda op: scarce.get(op, 9))
        thirds.sort(key=lambda op: scarce.get(op, 9))
        picked: set[str] = set()
        slots: list[list] = []
        for op in seconds:
            fits = [t for t in self.tdps if left[t] and any(
                x.household_id not in picked and self.feasible(op, x) for x in pool[t])]
            if not fits:
                op = "copy"
                fits = [t for t in self.tdps if left[t]]
            tdp = rng.choices(fits, weights=[left[t] for t in fits])[0]
            h = rng.choice([x for x in pool[tdp]
                            if x.household_id not in picked and self.feasible(op, x)])
            picked.add(h.household_id)
            left[tdp] -= 1
            slots.append([h, 2, op])
        with_third: set[str] = set()
        chosen = [slot[0] for slot in slots]
        for op in thirds:
            fits = [h for h in chosen if h.household_id not in with_third
                    and self.feasible(op, h)]
            if not fits:
                op = "copy"
                fits = [h for h in chosen if h.household_id not in with_third]
            if not fits:
                break
            h = rng.choice(fits)
            with_third.add(h.household_id)
            slots.append([h, 3, op])
        rng.shuffle(slots)
        n = len(slots)
        no_id = set(rng.sample(range(n), round(0.30 * n)))
        shift = set(rng.sample(range(n), round(0.15 * n)))
        change = set(rng.sample(range(n), round(0.10 * n)))
        slots.sort(key=lambda s: s[1])  # second surveys before third ones
        last_day: dict[str, date] = {}
        self.dups: list[Duplicate] = []
        for i, (h, ordinal, op) in enumerate(slots):
            first = self.first_event[h.household_id]
            prev_day = last_day.get(h.household_id, first.day)
            as_resurvey = rng.random() < 0.25
            if as_resurvey:
                day = _between(rng, max(_LATER[0], prev_day + timedelta(days=1)), _LATER[1])
            else:
                day = prev_day + timedelta(days=rng.randint(1, 40))
            last_day[h.household_id] = day
            done = [self.entities[e].creator.username for e in h.entity_ids]
            vol = self.surveyor(h.tdp, exclude=done)
            ev = self.event("duplicate", h, vol, self.work_time(day), day, (15, 40))
            member_change = ""
            if i in change:
                member_change = "added" if len(h.members) == 1 or rng.random() < 0.5 \
                    else "missing"
                if member_change == "added":
                    self.add_newborn(h, day)
            tdp = h.tdp
            if op == "wrong_tdp":
                k = self.tdps.index(h.tdp)
                near = [self.tdps[j] for j in (k - 1, k + 1) if 0 <= j < len(self.tdps)]
                tdp = rng.choice(near)
            ent = self.create_entity(ev, tdp, ordinal)
            ev.noise = op
            ev.dup = {"operator": op, "no_id": i in no_id,
                      "year_shift": rng.choice((-1, 1)) if i in shift else 0,
                      "member_change": member_change}
            self.dups.append(Duplicate(h.household_id, ent.id, h.entity_ids[0], ordinal, op,
                                       i in no_id, ev.dup["year_shift"], member_change,
                                       as_resurvey, vol.username))

    def feasible(self, op: str, h: Household) -> bool:
        key = (op, h.household_id)
        known = self._feasible.get(key)
        if known is None:
            known = self._feasible[key] = self._check_feasible(op, h)
        return known

    def _check_feasible(self, op: str, h: Household) -> bool:
        name = h.head.name
        if op == "tone":
            return _tone_variant(name) is not None
        if op in ("ascii", "nfd"):
            return _has_marks(name)
        if op == "phone":
            return bool(h.phone)
        if op == "house":
            return bool(h.house_no)
        if op == "wrong_tdp":
            return len(self.tdps) > 1
        return True

    def add_newborn(self, h: Household, day: date) -> None:
        fathers = [p for p in h.members if p.sex == "male" and p.relation in
                   ("head", "child", "spouse") and 20 <= self.year - p.birth_year <= 50]
        family = (fathers[-1] if fathers else h.head).name.split(" ")[0]
        sex = self.rng.choice(("male", "female"))
        name = self.name(family, sex, day.year, {p.name for p in h.members})
        rel = "child" if 20 <= self.year - h.head.birth_year <= 50 else "grandchild"
        h.members.append(Person(f"{h.household_id}-{len(h.members) + 1}", h.household_id,
                                len(h.members) + 1, name, day.year, sex, rel, {}, since=day))

    # ----------------------------------------------------------------- visits and re-surveys

    def canonical(self) -> dict[str, str]:
        out = {}
        for h in self.households:
            ents = [self.entities[e] for e in h.entity_ids]
            out[h.household_id] = min(ents, key=lambda e: (e.event.received, e.event.seq)).id
        return out

    def needs_pool(self, h: Household, day: date) -> list[tuple[str, Person | None]]:
        pool: list[tuple[str, Person | None]] = []
        for p in h.members_at(day):
            for code in p.status_at(day).get("m_needs", "").split():
                pool.append((code, p))
        answers = h.answers_at(day)
        if answers.get("hh_business") == "yes":
            if answers.get("biz_cashless") != "yes":
                pool.append(("biz_qr", None))
            if answers.get("biz_online") == "none" and self.rng.random() < 0.5:
                pool.append(("ecommerce", None))
        if answers.get("hh_school_app") == "no":
            parents = [p for p in h.members[:2] if p.status.get("m_smartphone") == "yes"]
            if parents:
                pool.append(("school_app", parents[0]))
        return pool

    def fallback_pool(self, h: Household, day: date) -> list[tuple[str, Person | None]]:
        adults = [p for p in h.members_at(day) if 15 <= self.year - p.birth_year]
        out: list[tuple[str, Person | None]] = []
        for p in adults:
            s = p.status_at(day)
            if s.get("m_vneid") in ("none", "dk"):
                out.append(("vneid_l1", p))
            elif s.get("m_vneid") == "l1":
                out.append(("vneid_l2", p))
            if s.get("m_dvc") != "yes":
                out.append(("dvc_account", p))
        return out or [("safety", h.head)]

    def visits(self) -> None:
        if self.visit_tpl is None:
            return
        rng = self.rng
        canon = self.canonical()
        for h in self.households:
            if not h.consent:
                continue
            needy = any(p.status.get("m_needs") for p in h.members)
            if not needy and h.helper == "":
                continue
            k = self.poisson(1.5)
            ents = [self.entities[e] for e in h.entity_ids]
            main = self.entities[canon[h.household_id]]
            aliases = [e for e in ents if e is not main and e.tdp == h.tdp]
            day = None
            followup: date | None = None
            retry: list[tuple[str, Person | None]] = []
            n = 0
            stop = self.withdrawn.get(h.household_id, _VISITS[1] + timedelta(days=1))
            while True:
                honoured = followup is not None and rng.random() < 0.7
                # A follow-up still pending after the planned visits gets one more, 30 % of
                # the time; the day of every follow-up keeps the grace period 70 % of the time.
                if n >= k and (followup is None or n > k or rng.random() >= 0.3):
                    break
                n += 1
                ent = main
                if aliases and rng.random() < 0.25:
                    ent = rng.choice(aliases)
                if ent is main:
                    r = rng.random()
                    if h.helper and r < 0.6:
                        vol = self.by_username[h.helper]
                    elif r < 0.95:
                        vol = rng.choice(self.team[h.tdp])
                    else:
                        vol = rng.choice(self.ward_team)
                else:
                    vol = ent.creator
                ready = self.avail(ent, vol)
                if followup is not None:
                    late = (0, 3) if honoured else (4, 30)
                    vday = followup + timedelta(days=rng.randint(*late))
                elif day is None:
                    vday = max(_VISITS[0], ready.date()) + timedelta(days=rng.randint(0, 60))
                else:
                    vday = day + timedelta(days=rng.randint(10, 90))
                vday = max(vday, ready.date() + timedelta(days=1), _VISITS[0])
                if vday > _VISITS[1] or vday >= stop:
                    break
                day = vday
                fill_day = vday + timedelta(days=rng.randint(1, 5) if rng.random() < 0.1 else 0)
                start = self.work_time(fill_day, after=ready)
                if start.date() > fill_day:  # the form may be filled a day later
                    fill_day = start.date()
                ev = self.event("visit", h, vol, start, vday, (3, 12))
                ev.entity, ev.action = ent, "update"
                if ent is not main:
                    ev.noise = "alias"
                followup, retry = self.visit_content(ev, retry)

    def poisson(self, lam: float) -> int:
        limit, k, p = math.exp(-lam), 0, 1.0
        while True:
            p *= self.rng.random()
            if p <= limit:
                return k
            k += 1

    def visit_content(self, ev: _Event, retry):
        rng, h, day = self.rng, ev.household, ev.day
        pool = self.needs_pool(h, day) or self.fallback_pool(h, day)
        wanted = rng.choices((1, 2, 3), weights=(35, 40, 25))[0]
        blocks: list[tuple[str, Person | None]] = []
        codes: list[str] = []
        for code, person in [*retry, *rng.sample(pool, len(pool))]:
            if code in codes or code not in self.services or len(blocks) >= wanted:
                continue
            codes.append(code)
            blocks.append((code, person))
        if not blocks:
            blocks.append(("safety" if "safety" in self.services else next(iter(self.services)),
                           h.head))
        if rng.random() < 0.02 and len(blocks) < 3 and "other" in self.services:
            adults = [p for p in h.members_at(day) if self.year - p.birth_year >= 15]
            blocks.append(("other", rng.choice(adults) if adults else h.head))
        rows = []
        pending: list[tuple[str, Person | None]] = []
        for code, person in blocks:
            r = rng.random()
            outcome = "done" if r < 0.60 else "partial" if r < 0.75 else "followup"
            reason = ""
            if outcome != "done":
                reason = (rng.choice(_TYPICAL_REASON[code]) if rng.random() < 0.6
                          else rng.choice(_REASONS))
                pending.append((code, person))
            else:
                self.complete(h, code, person, day)
            dossier = ""
            if code == "dvc_procedure" and outcome != "followup":
                serial = rng.randint(1, 9999)
                dossier = f"000.00.{rng.randint(10, 99)}.H66-{day:%y%m%d}-{serial:04d}"
            other = rng.choice(_OTHER_SERVICES) if code == "other" else ""
            rows.append({"code": code, "person": person, "outcome": outcome, "reason": reason,
                         "dossier": dossier, "other": other})
        follow = day + timedelta(days=rng.randint(7, 30)) if pending else None
        minutes = _clip(round(math.exp(rng.gauss(math.log(25), 0.55))), 5, 180)
        ev.visit = {
            "rows": rows, "followup": follow, "minutes": minutes,
            "mode": rng.choices(("home", "ward_center", "community", "remote"),
                                weights=(65, 10, 10, 15))[0],
            "satisfaction": rng.choices(("very", "yes", "neutral", "no", "na"),
                                        weights=(35, 45, 12, 3, 5))[0],
            "photo": rng.random() < 0.3,
            "notes": rng.choice(_NOTES) if rng.random() < 0.05 else "",
            "update": "yes" if rng.random() < 0.95 else "no",
            "username": ev.volunteer.username if rng.random() < 0.97 else "",
        }
        return follow, pending

    def complete(self, h: Household, code: str, person: Person | None, day: date) -> None:
        """A service done on ``day`` changes the truth from the next day on."""
        if person is not None:
            s = person.status_at(day + timedelta(days=1))
            changes = {
                "vneid_l1": ("m_vneid", "l2" if s.get("m_vneid") == "l2" else "l1"),
                "vneid_l2": ("m_vneid", "l2"), "dvc_account": ("m_dvc", "yes"),
                "cashless": ("m_cashless", "yes"), "digisig": ("m_digisig", "yes"),
                "vssid": ("m_vssid", "yes"), "ehealth": ("m_ehealth", "yes"),
                "bdhvs": ("m_bdhvs", "yes"),
            }
            if code in changes and changes[code][0] in s:
                person.changes.append((day, *changes[code]))
            if code == "safety" and "m_skills" in s and "safety" not in s["m_skills"].split():
                skills = [k for k in s["m_skills"].split() if k != "none"] + ["safety"]
                person.changes.append((day, "m_skills", " ".join(skills)))
            needs = s.get("m_needs", "").split()
            if code in needs:
                person.changes.append((day, "m_needs", " ".join(n for n in needs if n != code)))
        if code == "school_app":
            h.answer_changes.append((day, "hh_school_app", "yes"))
        elif code == "biz_qr":
            h.answer_changes.append((day, "biz_cashless", "yes"))
            h.answer_changes.append((day, "biz_pay_methods", "qr_bank"))
        elif code == "ecommerce":
            h.answer_changes.append((day, "biz_online", "social"))

    def resurveys(self) -> None:
        rng = self.rng
        canon = self.canonical()
        self.withdrawn: dict[str, date] = {}
        consented = [h for h in self.households if h.consent]
        chosen = rng.sample(consented, round(_RESURVEY_SHARE * len(consented)))
        chosen.sort(key=lambda h: h.household_id)
        for h in chosen:
            ent = self.entities[canon[h.household_id]]
            others = [self.entities[e] for e in h.entity_ids
                      if e != ent.id and self.entities[e].tdp == h.tdp]
            if others and rng.random() < 0.1:
                ent = rng.choice(others)
            vol = self.surveyor(ent.tdp)
            ready = self.avail(ent, vol)
            day = max(_between(rng, *_RESURVEY), ready.date() + timedelta(days=1))
            withdraw = rng.random() < 0.02
            ev = self.event("withdrawal" if withdraw else "resurvey", h, vol,
                            self.work_time(day, after=ready), day, (12, 35))
            ev.entity, ev.action = ent, "update"
            if ent.ordinal > 1 or ent.id != canon[h.household_id]:
                ev.noise = "alias"
            if withdraw:  # nobody visits a household after it withdrew its consent
                self.withdrawn[h.household_id] = ev.day

    # ----------------------------------------------------------------- snapshots

    def snapshot(self, ev: _Event) -> _Snap:
        rng, h, day = self.rng, ev.household, ev.day
        ent = ev.entity
        snap = _Snap(tdp=ent.tdp if ent else h.tdp)
        snap.street, snap.alley, snap.house_no, snap.landmark = (h.street, h.alley, h.house_no,
                                                                 h.landmark)
        if snap.street == "other":
            snap.street_other = f"Đường tổ dân phố {int(h.tdp[3:])}"
        if ev.kind == "absent":
            snap.contact, snap.consent = "absent", ""
            return snap
        if ev.kind in ("refusal", "withdrawal"):
            snap.consent = "no"
            if ev.kind == "withdrawal":
                snap.mode, snap.existing = "existing", ent.id
                self.prefill(snap, ent)
            snap.answers = {"hh_informed": rng.choice(("before", "now", "no"))}
            return snap
        members = h.members_at(day)
        head = members[0]
        snap.head_name, snap.head_by, snap.head_sex = head.name, head.birth_year, head.sex
        snap.phone, snap.phone_owner = h.phone, h.phone_owner if h.phone else ""
        if h.id_given and (ev.kind != "resurvey" or rng.random() < 0.8):
            snap.id_ok, snap.head_id = "yes", h.pid
        snap.members = [(p.name, p.relation, p.birth_year, p.sex, p.status_at(day))
                        for p in members]
        snap.answers = h.answers_at(day)
        snap.helper = h.helper
        if not any(self.capable(m[4]) for m in snap.members) and not snap.helper:
            snap.helper = rng.choice(self.team[h.tdp]).username
        if rng.random() < 0.95:
            acc = rng.uniform(3, 15) if rng.random() < 0.85 else (
                rng.uniform(15, 30) if rng.random() < 0.67 else rng.uniform(30, 60))
            lat = h.location[0] + rng.gauss(0, acc / 111_000)
            lon = h.location[1] + rng.gauss(0, acc / 103_000)
            snap.location = f"{lat:.7f} {lon:.7f} {rng.uniform(40, 90):.1f} {acc:.1f}"
        snap.photo = rng.random() < 0.6
        snap.notes = rng.choice(_NOTES) if rng.random() < 0.05 else ""
        if ev.kind == "resurvey":
            snap.mode, snap.existing = "existing", ent.id
            self.prefill(snap, ent)
        if ev.dup:
            self.add_noise(snap, ev)
        return snap

    @staticmethod
    def prefill(snap: _Snap, ent: _Entity) -> None:
        """``trigger`` prefills from the entity: the address and the head as listed."""
        p = ent.props
        for key in ("street", "street_other", "alley", "house_no", "landmark"):
            setattr(snap, key, p.get(key, getattr(snap, key)))
        if snap.consent == "yes" and p.get("head_name"):
            snap.head_name = p["head_name"]
            snap.members[0] = (p["head_name"], *snap.members[0][1:])

    def add_noise(self, snap: _Snap, ev: _Event) -> None:
        rng, h, d = self.rng, ev.household, ev.dup
        if d["member_change"] == "missing" and len(snap.members) > 1:
            young = [i for i, m in enumerate(snap.members) if m[1] in ("child", "grandchild")]
            idx = max(young, key=lambda i: snap.members[i][2]) if young else \
                len(snap.members) - 1
            del snap.members[idx]
        if d["year_shift"]:
            snap.head_by += d["year_shift"]
        if d["no_id"] or d["year_shift"]:
            snap.id_ok, snap.head_id = "no", ""
        op = d["operator"]
        names = [m[0] for m in snap.members]
        names[0] = snap.head_name

        def all_names(fn) -> None:
            new = [fn(n) for n in names]
            snap.head_name = new[0]
            snap.members = [(n, *m[1:]) for n, m in zip(new, snap.members, strict=True)]

        def head_only(new: str) -> None:
            snap.head_name = new

        words = snap.head_name.split(" ")
        if op == "copy":
            r = rng.random()
            legacy = "Đ" in snap.head_name or "đ" in snap.head_name
            if r < 0.2 and legacy:
                head_only(snap.head_name.replace("Đ", "Ð" if rng.random() < 0.8 else "Ɖ")
                          .replace("đ", "ð"))
            elif r < 0.45:
                head_only(snap.head_name + rng.choice((" ", "  ")))
            elif r < 0.7:
                i = rng.randrange(len(words) - 1)
                head_only(" ".join(words[: i + 1]) + "\u00a0" + " ".join(words[i + 1:]))
            else:
                i = rng.randrange(len(words) - 1)
                head_only(" ".join(words[: i + 1]) + "  " + " ".join(words[i + 1:]))
        elif op == "ascii":
            all_names(strip_marks)
        elif op == "upper":
            all_names(str.upper)
        elif op == "nfd":
            all_names(lambda n: unicodedata.normalize("NFD", n))
        elif op == "tone":
            all_names(lambda n: _tone_variant(n) or n)
        elif op == "diacritic":
            head_only(" ".join([*words[:-1], _change_vowel(words[-1], rng)]))
        elif op == "typo":
            head_only(" ".join([*words[:-1], _typo(words[-1], rng)]))
        elif op == "reorder":
            if rng.random() < 0.5:
                head_only(" ".join([words[-1], *words[:-1]]))
            else:
                head_only(("Ông " if snap.head_sex == "male" else "Bà ") + snap.head_name)
        elif op == "phone":
            if rng.random() < 0.3:
                snap.phone, snap.phone_owner = "", ""
            else:
                snap.phone = self.phone_variant(snap.phone)
        elif op == "street_text":
            street = self.street_by_code.get(snap.street)
            if street is not None:
                bare = street.label_vi
                if bare.lower().startswith("đường "):
                    bare = bare[len("đường "):]
                snap.street, snap.street_other = "other", rng.choice(
                    (f"đường {bare}", strip_marks(bare), f"đ. {bare}", bare, f"Đường {bare}"))
        elif op == "house":
            house, alley = snap.house_no, snap.alley
            digits = house.rstrip("ABC")
            r = rng.random()
            if alley and "/" not in alley and r < 0.5:
                snap.house_no, snap.alley = f"{house}/{alley}", ""
            elif digits[::-1].lstrip("0") not in ("", digits) and r < 0.8:  # 21 -> 12
                snap.house_no = digits[::-1].lstrip("0") + house[len(digits):]
            else:
                snap.house_no = ""
                snap.landmark = rng.choice(_LANDMARKS).format(n=int(h.tdp[3:]))
        elif op == "wrong_tdp":
            street = self.street_by_code.get(snap.street)
            if street is not None and snap.tdp not in street.tdps:
                snap.street, snap.street_other = "other", street.label_vi
        if op in ("ascii", "upper", "nfd", "tone") or snap.head_name != names[0]:
            snap.members[0] = (snap.head_name, *snap.members[0][1:])

    def phone_variant(self, phone: str) -> str:
        rng = self.rng
        if phone.startswith("02"):
            return rng.choice((f"+84 {phone[1:4]} {phone[4:7]} {phone[7:]}", "84" + phone[1:],
                               f"{phone[:4]}.{phone[4:7]}.{phone[7:]}"))
        options = [f"+84 {phone[1:4]} {phone[4:7]} {phone[7:]}", "84" + phone[1:],
                   f"{phone[:4]}.{phone[4:7]}.{phone[7:]}", phone[1:]]
        if phone[:3] in _OLD_PREFIX:
            options.append(_OLD_PREFIX[phone[:3]] + phone[3:])
        return rng.choice(options)

    # ----------------------------------------------------------------- rendering

    def render_all(self) -> list[Upload]:
        for ev in self.events:  # snapshots first: they draw from the RNG in event order
            if ev.kind != "visit":
                ev.snap = self.snapshot(ev)
                if ev.action == "create":
                    s = ev.snap
                    ev.entity.props = {
                        "street": s.street, "street_other": s.street_other, "alley": s.alley,
                        "house_no": s.house_no, "landmark": s.landmark,
                        "head_name": s.head_name if s.consent == "yes" else ""}
        for ev in self.events:  # an update is uploaded after the create it refers to
            if ev.action == "update":
                floor = ev.entity.event.received + timedelta(seconds=self.rng.randint(1, 600))
                ev.received = max(ev.received, floor)
        order = sorted(self.events, key=lambda e: (e.received, e.seq))
        history: dict[str, list[tuple[datetime, dict[str, str]]]] = {}
        uploads = []
        for seq, ev in enumerate(order, start=1):
            state = None
            if ev.entity is not None and ev.action == "update":
                hist = history[ev.entity.id]
                at = bisect.bisect_right([t for t, _ in hist], ev.start) - 1
                state = hist[max(at, 0)][1]
            if ev.kind == "visit":
                upload, change = self.render_visit(seq, ev, state)
            else:
                upload, change = self.render_survey(seq, ev, state)
            uploads.append(upload)
            if change is not None:
                hist = history.setdefault(ev.entity.id, [])
                new = dict(hist[-1][1]) if hist else {"version": "0", "followup_date": ""}
                new.update(change)
                new["version"] = str(int(new["version"]) + 1)
                hist.append((ev.received, new))
        return uploads

    def instance_meta(self, ev: _Event) -> dict[str, str]:
        return {
            "start": _iso_dt(ev.start), "end": _iso_dt(ev.end),
            "today": ev.start.date().isoformat(), "deviceid": ev.volunteer.device_id,
            "meta/instanceID": f"uuid:{_uuid4(self.rng)}",
        }

    def photo(self, ev: _Event, k: int) -> tuple[str, bytes]:
        rng = self.rng
        name = f"{int(ev.end.timestamp() * 1000) + k}.jpg"
        body = (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
                + rng.randbytes(rng.randint(64, 256)) + b"\xff\xd9")
        return name, body

    def street_text(self, snap: _Snap) -> str:
        if snap.street == "other":
            return snap.street_other
        street = self.street_by_code.get(snap.street)
        return street.label_vi if street else ""

    def render_survey(self, seq: int, ev: _Event, state):
        s, rng = ev.snap, self.rng
        v = self.instance_meta(ev)
        v["username"] = ev.volunteer.username
        v["cur_year"] = str(ev.start.year)
        drop: set[str] = set()
        v["g_intro/tdp"] = s.tdp
        v["g_intro/hh_mode"] = s.mode
        if s.mode == "existing":
            v["g_intro/hh_existing"] = s.existing
        else:
            drop.add("g_intro/hh_existing")
        v["g_intro/contact_result"] = s.contact
        if s.contact != "absent":
            drop.add("g_intro/absent_note")
        if s.contact == "met":
            v["g_intro/consent"] = s.consent
        else:
            drop.add("g_intro/consent")
        if s.contact == "met" or s.mode == "new":
            v.update({"g_addr/street": s.street, "g_addr/alley": s.alley,
                      "g_addr/house_no": s.house_no, "g_addr/landmark": s.landmark})
            if s.street == "other":
                v["g_addr/street_other"] = s.street_other
            else:
                drop.add("g_addr/street_other")
        else:
            drop.add("g_addr")
        repeats = {}
        consent = s.consent == "yes"
        attachments: dict[str, bytes] = {}
        capable = "no"
        if consent:
            v.update({"g_head/head_name": s.head_name, "g_head/head_birth_year": str(s.head_by),
                      "g_head/head_sex": s.head_sex, "g_head/phone": s.phone,
                      "g_head/phone_tail": s.phone[-3:] if len(s.phone) >= 3 else "",
                      "g_head/id_ok": s.id_ok})
            if s.phone:
                v["g_head/phone_owner"] = s.phone_owner
            else:
                drop.add("g_head/phone_owner")
            if s.id_ok == "yes":
                v["g_head/head_id"] = s.head_id
            else:
                drop.add("g_head/head_id")
            rows = []
            n_capable = 0
            for pos, (name, rel, by, sex, status) in enumerate(s.members, start=1):
                if pos == 1:
                    name, by, sex = s.head_name, s.head_by, s.head_sex
                row, row_drop, cap = self.member_row(pos, name, rel, by, sex, status,
                                                     ev.start.year)
                n_capable += cap
                rows.append((row, row_drop))
            repeats["g_members/members"] = rows
            v["g_members/n_members"] = str(len(rows))
            v["g_members/hh_n_capable"] = str(n_capable)
            capable = "yes" if n_capable else "no"
            v["g_members/hh_capable"] = capable
        else:
            drop.update(("g_head", "g_members"))
        if s.contact == "met":
            a = s.answers
            v["g_hh/hh_informed"] = a["hh_informed"]
            self.hh_answers(v, drop, a, consent)
            if consent:
                v["g_end/location"] = s.location
                if s.photo:
                    name, body = self.photo(ev, 0)
                    v["g_end/house_photo"] = name
                    attachments[name] = body
            else:
                drop.update(("g_end/location", "g_end/house_photo"))
            v["g_end/notes"] = s.notes
        else:
            drop.update(("g_hh", "g_end"))
        helper = ""
        if consent and capable == "no":
            helper = s.helper
            v["g_help/assigned_helper"] = helper
        else:
            drop.add("g_help")
        street_text = self.street_text(s) if "g_addr" not in drop else ""
        address = "g_addr" not in drop
        house = s.house_no if address else ""
        landmark = s.landmark if address else ""
        alley = s.alley if address else ""
        label = (
            (f"Số {house} " if house else f"{landmark}, " if landmark else "")
            + (f"ngõ {alley} " if alley else "") + street_text + " – "
            + (f"{s.head_name} ({s.head_by})" if consent else "(chưa có thông tin chủ hộ)"))
        new_id = _uuid4(rng)
        entity_id = s.existing if s.mode == "existing" else (
            ev.entity.id if ev.action == "create" else new_id)
        if ev.action == "create":
            new_id = entity_id
        v.update({"street_text": street_text, "hh_label": label,
                  "survey_date": ev.start.date().isoformat(), "hh_new_id": new_id,
                  "entity_id": entity_id, "meta/instanceName": f"{s.tdp} – {label}",
                  "meta/entity/label": label})
        base = state["version"] if state else ""
        attrs = {"meta/entity": {
            "create": "1" if ev.action == "create" else "0",
            "update": "1" if ev.action == "update" else "0",
            "baseVersion": base, "trunkVersion": "", "branchId": "", "id": entity_id}}
        xml = self.survey.render(v, repeats=repeats, drop=drop, attrs=attrs)
        change = None
        if ev.action in ("create", "update"):
            change = {"label": label, "helper": helper, "tdp": s.tdp}
        kind = ev.kind
        upload = Upload(
            seq, self.survey.form_id, self.survey.version, v["meta/instanceID"], xml,
            attachments, ev.volunteer.username, ev.received, ev.start.date(), kind,
            ev.household.household_id, ev.entity.id if ev.entity else None, ev.action,
            int(base) if base else None, ev.noise)
        return upload, change

    def member_row(self, pos, name, rel, by, sex, status, year):
        age = year - by
        row = {"m_pos": str(pos), "m_name_eff": name, "m_birth_year_eff": str(by),
               "m_sex_eff": sex, "m_age": str(age)}
        drop = set()
        if pos == 1:
            drop.update(("m_name", "m_rel", "m_birth_year", "m_sex"))
        else:
            drop.add("m_head_note")
            row.update({"m_name": name, "m_rel": rel, "m_birth_year": str(by), "m_sex": sex})
        defaults = {"m_smartphone": "no", "m_skills": "none", "m_vneid": "none",
                    "m_student": "no"}
        gates = (("m_smartphone", 10), ("m_skills", 10), ("m_vneid", 14), ("m_dvc", 15),
                 ("m_cashless", 15), ("m_digisig", 18), ("m_vssid", 15), ("m_ehealth", 14),
                 ("m_bdhvs", 15), ("m_needs", 14))
        for key, gate in gates:
            if age >= gate:
                row[key] = status.get(key, defaults.get(key, "" if key == "m_needs" else "no"))
            else:
                drop.add(key)
        if 14 <= age <= 20:
            row["m_student"] = status.get("m_student", "no")
            if row["m_student"] == "yes":
                row["m_student_trained"] = status.get("m_student_trained", "no")
            else:
                drop.add("m_student_trained")
        else:
            drop.update(("m_student", "m_student_trained"))
        skills = row.get("m_skills", "").split()
        basic = all(k in skills for k in ("call_msg", "search", "install", "safety"))
        row["m_basic"] = "yes" if basic else "no"
        cap = int(basic and row.get("m_vneid") in ("l1", "l2") and row.get("m_dvc") == "yes")
        row["m_capable"] = str(cap)
        return row, drop, cap

    @staticmethod
    def hh_answers(v: dict[str, str], drop: set[str], a: dict[str, str], consent: bool) -> None:
        if a.get("hh_informed") == "before" and consent:
            v["g_hh/hh_channels"] = a.get("hh_channels", "other")
        else:
            drop.add("g_hh/hh_channels")
        keys = ("hh_internet", "hh_pupils", "hh_business")
        if not consent:
            drop.update(f"g_hh/{k}" for k in keys)
        else:
            for k in keys:
                v[f"g_hh/{k}"] = a[k]
        if consent and a.get("hh_pupils") == "yes":
            v["g_hh/hh_school_app"] = a["hh_school_app"]
        else:
            drop.add("g_hh/hh_school_app")
        biz = ("biz_registered", "biz_type", "biz_cashless", "biz_ocop", "biz_online")
        business = consent and a.get("hh_business") == "yes"
        for k in biz:
            if business:
                v[f"g_hh/{k}"] = a[k]
            else:
                drop.add(f"g_hh/{k}")
        if business and a.get("biz_cashless") == "yes":
            v["g_hh/biz_pay_methods"] = a.get("biz_pay_methods", "qr_bank")
        else:
            drop.add("g_hh/biz_pay_methods")
        if business and a.get("biz_ocop") == "yes":
            v["g_hh/biz_ocop_name"] = a["biz_ocop_name"]
        else:
            drop.add("g_hh/biz_ocop_name")

    def render_visit(self, seq: int, ev: _Event, state):
        tpl, x = self.visit_tpl, ev.visit
        v = self.instance_meta(ev)
        v["username"] = x["username"]
        helper = state.get("helper", "")
        helper_label = self.by_username[helper].label if helper in self.by_username else helper
        label = state.get("label", "")
        v.update({
            "g_hh/tdp": state.get("tdp", ev.household.tdp), "g_hh/hh": ev.entity.id,
            "g_hh/hh_label": label, "g_hh/hh_helper": helper,
            "g_hh/hh_helper_label": helper_label,
            "g_hh/hh_prev_followup": state.get("followup_date", ""),
            "g_hh/visit_date": ev.day.isoformat(), "g_hh/visit_mode": x["mode"]})
        rows = []
        not_done = 0
        attachments: dict[str, bytes] = {}
        for r in x["rows"]:
            label_vi, level = self.services[r["code"]]
            row = {"svc_code": r["code"], "svc_name": label_vi, "svc_level": level,
                   "svc_outcome": r["outcome"], "svc_not_done": "0" if r["outcome"] == "done"
                   else "1"}
            drop = {"svc_members_done"}
            if r["code"] == "other":
                row["services_other"] = r["other"]
            else:
                drop.add("services_other")
            if level == "person":
                person = r["person"] or ev.household.head
                row.update({"svc_members": "", "svc_member_other": person.name})
            else:
                drop.update(("svc_members", "svc_member_other"))
            if r["outcome"] != "done":
                row["svc_reason"] = r["reason"]
                not_done += 1
            else:
                drop.add("svc_reason")
            if r["code"] == "dvc_procedure":
                row["svc_dossier"] = r["dossier"]
            else:
                drop.add("svc_dossier")
            rows.append((row, drop))
        v["g_svc/services"] = " ".join(r["code"] for r in x["rows"])
        v["g_svc/n_not_done"] = str(not_done)
        drop = set()
        v["g_close/minutes"] = str(x["minutes"])
        follow = x["followup"].isoformat() if not_done else ""
        if not_done:
            v["g_close/followup_date"] = follow
        else:
            drop.add("g_close/followup_date")
        v["g_close/satisfaction"] = x["satisfaction"]
        if x["photo"]:
            name, body = self.photo(ev, 1)
            v["g_close/photo"] = name
            attachments[name] = body
        v["g_close/notes"] = x["notes"]
        v["g_close/update_status"] = x["update"]
        v.update({"e_needs_followup": "yes" if not_done else "no", "e_followup_date": follow,
                  "e_last_visit": ev.day.isoformat(), "e_last_visitor": x["username"],
                  "meta/instanceName": f"{ev.day.isoformat()} – {label}"})
        base = state["version"]
        update = x["update"] == "yes"
        attrs = {"meta/entity": {"update": "1" if update else "0", "baseVersion": base,
                                 "trunkVersion": "", "branchId": "", "id": ev.entity.id}}
        xml = tpl.render(v, repeats={"g_svc/svc": rows}, drop=drop, attrs=attrs)
        upload = Upload(
            seq, tpl.form_id, tpl.version, v["meta/instanceID"], xml, attachments,
            ev.volunteer.username, ev.received, ev.day, "visit", ev.household.household_id,
            ev.entity.id, "update" if update else "none", int(base), ev.noise)
        change = {"followup_date": follow} if update else None
        return upload, change

    # ----------------------------------------------------------------- all

    def run(self) -> SyntheticWard:
        self.build_truth()
        self.surveys()
        self.duplicates()
        self.resurveys()
        self.visits()
        uploads = self.render_all()
        canon = self.canonical()
        return SyntheticWard(
            seed=self.seed, year=self.year, tdps=self.tdps, streets=self.streets,
            official_households=self.official, volunteers=self.vols,
            households=self.households, hard_negatives=self.hard_negatives,
            duplicates=sorted(self.dups, key=lambda d: (d.household_id, d.ordinal)),
            uploads=uploads, canonical_entity=canon,
            entity_household={e.id: e.household.household_id for e in self.entities.values()})


def generate(
    survey_xform: bytes,
    visit_xform: bytes | None = None,
    *,
    seed: int = DEFAULT_SEED,
    households: int = 8000,
    tdps: int = 20,
    dup_share: float = 0.08,
    year: int = 2026,
) -> SyntheticWard:
    """Generate the synthetic ward.

    ``survey_xform``/``visit_xform`` are the published XForms (bytes) of ``household_survey``
    and ``support_visit``; without ``visit_xform`` no visits are generated. ``households`` is
    the number of ordinary households; the hard-negative households come on top of it
    (about 3.8 %). The same arguments give the same bytes.
    """
    if households < 1:
        raise ValueError("households must be at least 1")
    if year != 2026:
        raise ValueError("the timeline is the 2026 plan year's")
    gen = _Generator(survey_xform, visit_xform, seed=seed, households=households, tdps=tdps,
                     dup_share=dup_share, year=year)
    return gen.run()


# --------------------------------------------------------------------------- files


def _csv(path: Path, header: list[str], rows) -> None:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    path.write_text(out.getvalue(), encoding="utf-8")


def write_to(ward: SyntheticWard, folder: str | Path) -> Path:
    """Write the ward: truth CSVs, ``summary.json``, one XML per upload and its attachments.

    Layout: ``households.csv``, ``members.csv``, ``volunteers.csv``, ``duplicates.csv``,
    ``true_duplicate_pairs.csv``, ``hard_negatives.csv``, ``uploads.csv`` (the index, in
    upload order), ``uploads/<seq>.xml`` and ``uploads/<seq>/<attachment>``.
    """
    root = Path(folder)
    (root / "uploads").mkdir(parents=True, exist_ok=True)
    _csv(root / "households.csv",
         ["household_id", "tdp", "street", "alley", "house_no", "landmark", "ethnicity",
          "head_name", "head_birth_year", "head_sex", "n_members", "phone", "phone_owner",
          "pid", "id_given", "consent", "absent_first", "trap", "trap_of", "helper",
          "entity_ids", "canonical_entity", "lat", "lon"],
         ([h.household_id, h.tdp, h.street, h.alley, h.house_no, h.landmark, h.ethnicity,
           h.head.name, h.head.birth_year, h.head.sex, len(h.members), h.phone, h.phone_owner,
           h.pid, int(h.id_given), int(h.consent), int(h.absent_first), h.trap, h.trap_of,
           h.helper, " ".join(h.entity_ids), ward.canonical_entity.get(h.household_id, ""),
           h.location[0], h.location[1]] for h in ward.households))
    _csv(root / "members.csv",
         ["person_id", "household_id", "position", "name", "birth_year", "sex", "relation",
          "since", "status_json"],
         ([p.person_id, p.household_id, p.position, p.name, p.birth_year, p.sex, p.relation,
           p.since.isoformat() if p.since else "", json.dumps(p.status, ensure_ascii=False,
                                                              sort_keys=True)]
          for p in ward.persons))
    _csv(root / "volunteers.csv",
         ["username", "display_name", "team", "leader", "trained_on", "device_id"],
         ([v.username, v.display_name, v.team, int(v.leader),
           v.trained_on.isoformat() if v.trained_on else "", v.device_id]
          for v in ward.volunteers))
    _csv(root / "duplicates.csv",
         ["household_id", "entity_id", "original_entity_id", "ordinal", "operator", "no_id",
          "year_shift", "member_change", "as_resurvey", "username"],
         ([d.household_id, d.entity_id, d.original_entity_id, d.ordinal, d.operator,
           int(d.no_id), d.year_shift, d.member_change, int(d.as_resurvey), d.username]
          for d in ward.duplicates))
    _csv(root / "true_duplicate_pairs.csv", ["entity_a", "entity_b", "household_id"],
         ([a, b, ward.entity_household[a]] for a, b in sorted(true_duplicate_pairs(ward))))
    _csv(root / "hard_negatives.csv", ["kind", "household_a", "household_b"],
         ([n.kind, n.household_a, n.household_b] for n in ward.hard_negatives))
    _csv(root / "uploads.csv",
         ["seq", "file", "form_id", "instance_id", "username", "received_at", "event_date",
          "kind", "true_household", "entity_id", "entity_action", "base_version", "noise",
          "attachments"],
         ([u.seq, f"uploads/{u.seq:06d}.xml", u.form_id, u.instance_id, u.username,
           u.received_at.isoformat(), u.event_date.isoformat(), u.kind, u.true_household,
           u.entity_id or "", u.entity_action, "" if u.base_version is None else u.base_version,
           u.noise, " ".join(u.attachments)] for u in ward.uploads))
    for u in ward.uploads:
        (root / "uploads" / f"{u.seq:06d}.xml").write_bytes(u.xml)
        if u.attachments:
            media = root / "uploads" / f"{u.seq:06d}"
            media.mkdir(exist_ok=True)
            for name, body in u.attachments.items():
                (media / name).write_bytes(body)
    summary = ward.summary()
    summary["official_households"] = ward.official_households
    (root / "summary.json").write_text(json.dumps(summary, ensure_ascii=False, indent=2),
                                       encoding="utf-8")
    return root
