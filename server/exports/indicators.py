"""Indicators I00–I17 and A01–A08 per tổ and for the ward, and the E1/E2 tables (§6.2–§6.4).

Why three-valued statuses: `dk` answers and blanks count as "no" in a numerator but must be
reported in `n_unknown`, while a member whose known answers already rule it out (basic skills =
no) is a plain "no". Every status is True / False / None and statuses are combined with
Kleene's AND/OR, so a unit is unknown exactly when its result is None.

Why per-tổ counts: a ward figure is the sum of the tổ numerators over the sum of their
denominators (§2.5), never an average of percentages, so everything is counted per tổ and the
ward row is added up (I07 is the one exception the spec makes: ward-level members count only
in the ward row).
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from operator import attrgetter, itemgetter
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from server.db.models import utcnow
from server.domain.ward import EssentialRule, WardConfig
from server.exports.facts import (
    DEFAULT_TIMEZONE,
    Facts,
    HouseholdFact,
    MemberRecord,
    SnapshotFact,
    facts_for_ward,
)
from server.exports.tables import Table

__all__ = [
    "ACTIVITY_CODES",
    "E1_COLUMNS",
    "E2_COLUMNS",
    "INDICATOR_NAMES",
    "STATUS_CODES",
    "Tri",
    "WARD",
    "Count",
    "HouseholdAt",
    "MemberAt",
    "Period",
    "Report",
    "household_at",
    "local_iso",
    "parse_period",
    "pct",
    "period_span",
    "report_tables",
    "tri",
]

WARD = "WARD"
Tri = bool | None

E1_COLUMNS = (
    "period_type,period_start,period_end,scope,tdp_code,tdp_name,indicator_code,"
    "indicator_name_vi,indicator_name_en,numerator,denominator,n_unknown,value_pct,target_pct,"
    "target_rule,met,prev_value_pct,change_pp,pending_review_pairs,data_cutoff,generated_at"
).split(",")
E2_COLUMNS = (
    "period_type,period_start,period_end,tdp_code,tdp_name,n_households_official,"
    "n_households_known,n_households_consented,n_members,n_adults,I00_pct,I01_num,I01_den,"
    "I01_pct,I02_num,I02_den,I02_pct,I02a_pct,I02b_pct,I03_num,I03_den,I03_pct,I04_num,I04_den,"
    "I04_pct,I05_num,I05_den,I05_pct,I06_num,I06_den,I06_pct,I07_num,I07_den,I07_pct,I08_num,"
    "I08_den,I08_pct,A01_households_surveyed,A02_new_households,A03_visits,"
    "A04_households_helped,A05_unique_completions,A06_minutes,A07_followups_due,"
    "A08_followups_on_time,pending_review_pairs,data_cutoff"
).split(",")

STATUS_CODES = ("I00", "I01", "I02", "I02a", "I02b", "I03", "I04", "I04a", "I04b", "I04c",
                "I05", "I06", "I06a", "I07", "I08", "I09", "I10", "I11", "I12", "I13", "I14",
                "I15", "I16", "I17")
ACTIVITY_CODES = ("A01", "A02", "A03", "A04", "A05", "A06", "A07", "A08")

INDICATOR_NAMES: dict[str, tuple[str, str]] = {
    "I00": ("Tỷ lệ hộ đã được khảo sát", "Survey coverage"),
    "I01": ("Học sinh THPT được đào tạo kỹ năng số", "Upper-secondary students trained"),
    "I02": ("Người trưởng thành có kỹ năng số cơ bản và sử dụng dịch vụ số thiết yếu",
            "Adults with basic skills who use essential services"),
    "I02a": ("Người trưởng thành có kỹ năng số cơ bản", "Adults with basic digital skills"),
    "I02b": ("Người trưởng thành sử dụng dịch vụ số thiết yếu",
             "Adults using essential services"),
    "I03": ("Hộ được thông tin về các chương trình CĐS", "Households informed"),
    "I04": ("Hộ có ít nhất 1 \"công dân số\"", "Households with a digital citizen"),
    "I04a": ("Hộ có ≥ 1 thành viên có kỹ năng số cơ bản",
             "Households with a member with basic digital skills"),
    "I04b": ("Hộ có ≥ 1 thành viên có VNeID", "Households with a member with a VNeID account"),
    "I04c": ("Hộ có ≥ 1 thành viên có tài khoản DVC",
             "Households with a member with a public-service portal account"),
    "I05": ("Hộ chưa có công dân số đã được phân công người hỗ trợ",
            "Households without a digital citizen that have an assigned helper"),
    "I06": ("Hộ kinh doanh được hỗ trợ thanh toán không dùng tiền mặt",
            "Business households supported to go cashless"),
    "I06a": ("Hộ kinh doanh đã nhận thanh toán không tiền mặt",
             "Business households that accept cashless payment"),
    "I07": ("Thành viên Tổ được tập huấn trong năm", "Team members trained this year"),
    "I08": ("Người từ 18 tuổi có chữ ký số cá nhân",
            "Adults 18+ with a personal digital signature"),
    "I09": ("VNeID mức 2 (≥ 14 tuổi)", "VNeID level 2 (aged 14+)"),
    "I10": ("Tài khoản DVC (≥ 15)", "Public-service portal account (aged 15+)"),
    "I11": ("Thanh toán không tiền mặt (≥ 15)", "Cashless payment (aged 15+)"),
    "I12": ("VssID (≥ 15)", "VssID (aged 15+)"),
    "I13": ("Sổ sức khỏe điện tử (≥ 14)", "Electronic health record (aged 14+)"),
    "I14": ("Hộ có con đi học dùng ứng dụng nhà trường",
            "Households with pupils that use the school app"),
    "I15": ("Hộ có sản phẩm OCOP bán trực tuyến", "OCOP households selling online"),
    "I16": ("Đăng ký Bình dân học vụ số (≥ 15)", "Registered on Bình dân học vụ số (aged 15+)"),
    "I17": ("Có điện thoại thông minh (người trưởng thành)", "Adults with a smartphone"),
    "A01": ("Hộ được khảo sát trong kỳ", "Households surveyed in the period"),
    "A02": ("Hộ mới trong kỳ", "New households in the period"),
    "A03": ("Lượt hỗ trợ", "Support visits"),
    "A04": ("Hộ được hỗ trợ hoàn thành", "Households with a completion"),
    "A05": ("Lượt hoàn thành duy nhất", "Unique completions"),
    "A06": ("Số phút hỗ trợ", "Minutes of support"),
    "A07": ("Lịch hẹn đến hạn", "Follow-ups due"),
    "A08": ("Lịch hẹn được thực hiện đúng hạn", "Follow-ups met on time"),
}

BASIC_SKILLS = ("call_msg", "search", "install", "safety")
#: Person-level services that turn a member's status on (§6.2).
MEMBER_EFFECTS = {"dvc_account": "dvc", "dvc_procedure": "dvc", "cashless": "cashless",
                  "digisig": "digisig", "vssid": "vssid", "ehealth": "ehealth", "bdhvs": "bdhvs"}
VNEID_CODES = ("none", "l1", "l2")
INFORMED = ("before", "now")


# --------------------------------------------------------------------------- three-valued logic


def tri(answer: str) -> Tri:
    """yes → True, no → False; `dk` and blanks are unknown."""
    return True if answer == "yes" else False if answer == "no" else None


def t_and(*values: Tri) -> Tri:
    unknown = False
    for v in values:  # a plain loop: called for every member at every date
        if v is False:
            return False
        if v is None:
            unknown = True
    return None if unknown else True


def t_or(*values: Tri) -> Tri:
    unknown = False
    for v in values:
        if v is True:
            return True
        if v is None:
            unknown = True
    return None if unknown else False


_BASIC_SKILLS = frozenset(BASIC_SKILLS)


def basic_of(skills: str) -> Tri:
    """`m_basic`, recomputed from the four checklist skills; unanswered is unknown."""
    chosen = set(skills.split())
    return _BASIC_SKILLS <= chosen if chosen else None


# --------------------------------------------------------------------------- effective status


@dataclass(slots=True)
class MemberAt:
    """One member of M(T) with the effective status at T (§6.2)."""

    record: MemberRecord
    age: int | None
    smartphone: Tri
    basic: Tri
    vneid: str  # none | l1 | l2, or the unknown answer as given (dk, '')
    dvc: Tri
    cashless: Tri
    digisig: Tri
    vssid: Tri
    ehealth: Tri
    bdhvs: Tri
    student: Tri
    trained: Tri
    last_upgrade: dt.date | None = None

    def vneid_in(self, levels: Iterable[str]) -> Tri:
        if self.vneid in levels:
            return True
        return False if self.vneid in VNEID_CODES else None

    @property
    def has_vneid(self) -> Tri:
        return self.vneid_in(("l1", "l2"))

    @property
    def capable(self) -> Tri:
        """A digital citizen: basic skills, a VNeID account and a DVC account, one person."""
        return t_and(self.basic, self.has_vneid, self.dvc)

    def essential(self, rule: EssentialRule) -> Tri:
        return t_and(self.vneid_in(rule.vneid_levels),
                     t_or(*(getattr(self, status) for status in rule.any_of)))

    def aged(self, years: int) -> bool:
        return self.age is not None and self.age >= years


@dataclass(slots=True)
class HouseholdAt:
    """A household of U(T) at T: its latest snapshot and, when consented, its members."""

    household: HouseholdFact
    # a date T of this state: every date with the same `_state` gives the same household,
    # so one object serves all of them (Report.households_at)
    day: dt.date
    tdp: str
    snapshot: SnapshotFact  # latest snapshot on or before T
    status: str  # active | moved_out | dissolved
    informed: Tri
    members: list[MemberAt] = field(default_factory=list)
    school_app: Tri = None
    biz_cashless: Tri = None
    online_supported: bool = False
    _flags: tuple[Tri, Tri, Tri, Tri, Tri] | None = field(default=None, repr=False,
                                                          compare=False)

    @property
    def known(self) -> bool:
        """In U(T): surveyed by T and not moved out or dissolved by T."""
        return self.status == "active"

    @property
    def consented(self) -> bool:
        """In C(T): known, and the latest snapshot by T has consent."""
        return self.known and self.snapshot.consent

    def any_member(self, status: Callable[[MemberAt], Tri]) -> Tri:
        return t_or(*map(status, self.members))  # no members: False

    def member_flags(self) -> tuple[Tri, Tri, Tri, Tri, Tri]:
        """Whether some member has a smartphone, basic skills, a VNeID account, a DVC account,
        and whether one is a digital citizen: counted (I04) and shown (E3), so computed once."""
        if self._flags is None:
            members = self.members
            basic = [m.basic for m in members]
            vneid = [m.has_vneid for m in members]
            dvc = [m.dvc for m in members]
            self._flags = (t_or(*[m.smartphone for m in members]), t_or(*basic), t_or(*vneid),
                           t_or(*dvc), t_or(*map(t_and, basic, vneid, dvc)))
        return self._flags

    @property
    def capable(self) -> Tri:
        return self.member_flags()[4]


def _member_at(m: MemberRecord, day: dt.date) -> MemberAt:
    # positional, in MemberAt's field order: built for every member at every date
    return MemberAt(
        m, None if m.birth_year is None else day.year - m.birth_year, tri(m.smartphone),
        basic_of(m.skills), m.vneid, tri(m.dvc), tri(m.cashless), tri(m.digisig), tri(m.vssid),
        tri(m.ehealth), tri(m.bdhvs), tri(m.student), tri(m.student_trained))


_SURVEY_DAY = attrgetter("survey_date")
_VISIT_DAY = attrgetter("visit_date")
_EVENT_DAY = attrgetter("visit.visit_date")
_FIRST = itemgetter(0)  # the date of a (date, …) pair


def _state(h: HouseholdFact, day: dt.date) -> tuple[int, int, int, int, int]:
    """All that `household_at(h, day)` depends on: the year (ages, I06's year) and how many
    surveys, visits, service events and office records are dated by `day` (each list of the
    household is in date order). From one month end to the next most households keep it."""
    return (day.year, bisect_right(h.snapshots, day, key=_SURVEY_DAY),
            bisect_right(h.visits, day, key=_VISIT_DAY),
            bisect_right(h.events, day, key=_EVENT_DAY),
            bisect_right(h.statuses, day, key=_FIRST))


def household_at(h: HouseholdFact, day: dt.date) -> HouseholdAt | None:
    """The household at T = `day`, or None when it had no snapshot by then (§6.1, §6.2)."""
    snap = h.latest_until(day)
    if snap is None:
        return None
    informed = t_or(*(True if s.informed in INFORMED else False if s.informed == "no" else None
                      for s in h.snapshots_until(day)))
    if any(v.visit_date <= day for v in h.visits):
        informed = True
    at = HouseholdAt(household=h, day=day, tdp=snap.tdp, snapshot=snap,
                     status=h.status_at(day), informed=informed)
    if not at.consented:
        return at
    at.members = [_member_at(m, day) for m in snap.members]
    at.school_app = tri(snap.school_app)
    at.biz_cashless = tri(snap.biz_cashless)
    by_key = {m.record.key: m for m in at.members}
    for e in h.events:  # in visit order; visits only ever turn a status on
        if not e.member_done or not snap.survey_date < e.visit.visit_date <= day:
            continue
        code = e.service_code
        if code == "biz_qr":
            at.biz_cashless = True
        elif code == "ecommerce":
            at.online_supported = True
        elif code == "school_app":
            at.school_app = True
        member = by_key.get(e.member_key) if e.member_key else None
        if member is None:
            continue  # an unmatched name is activity only
        before = (member.vneid, *(getattr(member, a) for a in MEMBER_EFFECTS.values()))
        if code == "vneid_l1" and member.vneid != "l2":
            member.vneid = "l1"
        elif code == "vneid_l2":
            member.vneid = "l2"
        elif code in MEMBER_EFFECTS:
            setattr(member, MEMBER_EFFECTS[code], True)
        if before != (member.vneid, *(getattr(member, a) for a in MEMBER_EFFECTS.values())):
            member.last_upgrade = e.visit.visit_date
    return at


# --------------------------------------------------------------------------- counting


@dataclass(slots=True)
class Count:
    """Numerator, denominator and unknown units of one indicator in one scope."""

    num: int = 0
    den: int = 0
    unknown: int = 0

    def add(self, value: Tri) -> None:
        self.den += 1
        self.num += value is True
        self.unknown += value is None

    def __iadd__(self, other: Count) -> Count:
        self.num += other.num
        self.den += other.den
        self.unknown += other.unknown
        return self


@dataclass(slots=True)
class ScopeStatus:
    """Status indicators of one scope at T, with the sizes E2 shows."""

    codes: dict[str, Count] = field(default_factory=lambda: defaultdict(Count))
    known: int = 0
    consented: int = 0
    members: int = 0
    adults: int = 0

    def __getitem__(self, code: str) -> Count:
        return self.codes[code]

    def __iadd__(self, other: ScopeStatus) -> ScopeStatus:
        for code, count in other.codes.items():
            self.codes[code] += count
        self.known += other.known
        self.consented += other.consented
        self.members += other.members
        self.adults += other.adults
        return self


def _count_household(c: ScopeStatus, at: HouseholdAt, ward: WardConfig) -> None:
    count = c.codes  # the Count of each code (c[code] without the call, for every member)
    c.known += 1
    count["I00"].num += 1
    count["I03"].add(at.informed)
    if not at.consented:
        return
    c.consented += 1
    c.members += len(at.members)
    _, basic, vneid, dvc, capable = at.member_flags()
    count["I04"].add(capable)
    count["I04a"].add(basic)
    count["I04b"].add(vneid)
    count["I04c"].add(dvc)
    if capable is not True:
        count["I05"].add(bool(at.snapshot.helper))
    snap = at.snapshot
    eligible = snap.business == "yes" and (
        ward.eligible_biz != "registered" or snap.biz_registered == "yes")
    if eligible:
        year_start = dt.date(at.day.year, 1, 1)
        qr = any(e.service_code == "biz_qr" and year_start <= e.visit.visit_date <= at.day
                 for e in at.household.events)
        count["I06"].add(t_or(at.biz_cashless, qr))
        count["I06a"].add(at.biz_cashless)
    if snap.pupils == "yes":
        count["I14"].add(at.school_app)
    if snap.ocop == "yes":
        online = snap.biz_online.split()
        count["I15"].add(t_or(at.online_supported,
                              (any(ch != "none" for ch in online) if online else None)))
    adult_age, rule = ward.adult_min_age, ward.essential
    for m in at.members:
        if m.student is True:
            count["I01"].add(m.trained)
        age = m.age
        if age is None:
            continue  # in no age group
        if age >= adult_age:
            essential = m.essential(rule)
            c.adults += 1
            count["I02"].add(t_and(m.basic, essential))
            count["I02a"].add(m.basic)
            count["I02b"].add(essential)
            count["I17"].add(m.smartphone)
        if age >= 14:
            count["I09"].add(m.vneid_in(("l2",)))
            count["I13"].add(m.ehealth)
        if age >= 15:
            count["I10"].add(m.dvc)
            count["I11"].add(m.cashless)
            count["I12"].add(m.vssid)
            count["I16"].add(m.bdhvs)
        if age >= 18:
            count["I08"].add(m.digisig)


def _count_volunteers(c: ScopeStatus, facts: Facts, day: dt.date,
                      teams: Callable[[str], bool]) -> None:
    start = dt.date(day.year, 1, 1)
    for v in facts.volunteers:
        if teams(v.team) and v.active_at(day):
            c["I07"].add(v.trained_between(start, day))


def distinct_visits(h: HouseholdFact) -> dict[tuple[str, dt.date], dt.date | None]:
    """§6.6 visits = distinct (volunteer, date); same-day submissions are combined, and the
    visit's follow-up is the earliest one promised."""
    visits: dict[tuple[str, dt.date], dt.date | None] = {}
    for v in h.visits:
        key = (v.volunteer_id, v.visit_date)
        due = visits.get(key)
        if v.followup_date is not None and (due is None or v.followup_date < due):
            due = v.followup_date
        visits[key] = due
    return visits


@dataclass(frozen=True, slots=True)
class _Flows:
    """The dated activity of one household (A01–A08), every list in date order, so that a
    period (of the 12 months, 4 quarters and the year) takes a few bisections."""

    surveys: list[dt.date]
    created: dt.date | None  # A02: first created
    visits: list[dt.date]  # one date per §6.6 visit (volunteer, date)
    completions: list[dt.date]
    unique: list[dt.date]  # unique completions
    minutes: list[tuple[dt.date, int]]  # per visit submission
    followups: list[tuple[dt.date, bool]]  # (due, met on time) per visit with a follow-up


def _flows(h: HouseholdFact, grace: int) -> _Flows:
    visits = distinct_visits(h)
    grace_days = dt.timedelta(days=grace)
    return _Flows(
        surveys=sorted(s.survey_date for s in h.snapshots), created=h.first_created,
        visits=sorted(day for _, day in visits),
        completions=sorted(e.visit.visit_date for e in h.events if e.is_completion),
        unique=sorted(e.visit.visit_date for e in h.events if e.is_unique_completion),
        minutes=sorted(((v.visit_date, v.minutes or 0) for v in h.visits), key=_FIRST),
        followups=sorted(((due, any(day < v.visit_date <= due + grace_days for v in h.visits))
                          for (_, day), due in visits.items() if due is not None), key=_FIRST))


def _dated(items: list, start: dt.date, end: dt.date, key: Callable | None = None) -> list:
    """The items dated `start` to `end` (both included) of a list in date order."""
    return items[bisect_left(items, start, key=key):bisect_right(items, end, key=key)]


def _activity(f: _Flows, start: dt.date, end: dt.date) -> dict[str, int]:
    due = _dated(f.followups, start, end, _FIRST)
    return {
        "A01": int(bool(_dated(f.surveys, start, end))),
        "A02": int(f.created is not None and start <= f.created <= end),
        "A03": len(_dated(f.visits, start, end)),
        "A04": int(bool(_dated(f.completions, start, end))),
        "A05": len(_dated(f.unique, start, end)),
        "A06": sum(minutes for _, minutes in _dated(f.minutes, start, end, _FIRST)),
        "A07": len(due),
        "A08": sum(met for _, met in due),
    }


# --------------------------------------------------------------------------- periods


@dataclass(frozen=True)
class Period:
    type: str  # month | quarter | ytd
    start: dt.date
    end: dt.date

    def previous(self) -> Period:
        """The previous period of the same type: the month or quarter before; for year-to-date
        the same span one year earlier."""
        if self.type == "ytd":
            return Period("ytd", dt.date(self.start.year - 1, 1, 1), _year_before(self.end))
        months = 1 if self.type == "month" else 3
        start = _add_months(self.start, -months)
        return Period(self.type, start, self.start - dt.timedelta(days=1))


def _month_end(year: int, month: int) -> dt.date:
    return dt.date(year, month, calendar.monthrange(year, month)[1])


def _add_months(day: dt.date, months: int) -> dt.date:
    index = day.year * 12 + day.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)


def _year_before(day: dt.date) -> dt.date:
    """The same day a year earlier; a month end stays a month end (29 Feb → 28 Feb)."""
    last = _month_end(day.year - 1, day.month)
    if day == _month_end(day.year, day.month):
        return last
    return last.replace(day=min(day.day, last.day))


_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_QUARTER = re.compile(r"^(\d{4})-[Qq]([1-4])$")
_YEAR = re.compile(r"^(\d{4})$")


def period_bounds(text: str) -> tuple[str, dt.date, dt.date]:
    """`YYYY-MM`, `YYYY-Qn` or `YYYY` → (month|quarter|ytd, first day, last day)."""
    text = text.strip()
    if m := _MONTH.match(text):
        year, month = int(m.group(1)), int(m.group(2))
        if not 1 <= month <= 12:
            raise ValueError(f"period {text!r}: month must be 01–12")
        return "month", dt.date(year, month, 1), _month_end(year, month)
    if m := _QUARTER.match(text):
        year, quarter = int(m.group(1)), int(m.group(2))
        return ("quarter", dt.date(year, 3 * quarter - 2, 1),
                _month_end(year, 3 * quarter))
    if m := _YEAR.match(text):
        year = int(m.group(1))
        return "ytd", dt.date(year, 1, 1), dt.date(year, 12, 31)
    raise ValueError(f"period {text!r}: write YYYY-MM, YYYY-Qn or YYYY")


def parse_period(text: str | None, today: dt.date) -> list[Period]:
    """`2026-11` → November and year-to-date to 30 Nov; `2026-Q4` → Q4 and year-to-date to
    31 Dec; `2026` → year-to-date to 31 Dec. None means the current month."""
    if text is None:
        text = f"{today.year:04d}-{today.month:02d}"
    kind, start, end = period_bounds(text)
    ytd = Period("ytd", dt.date(end.year, 1, 1), end)
    return [ytd] if kind == "ytd" else [Period(kind, start, end), ytd]


def period_span(text: str | None, today: dt.date) -> tuple[dt.date | None, dt.date]:
    """The days a register covers: the month, quarter or year; without a period, up to today."""
    if text is None:
        return None, today
    _, start, end = period_bounds(text)
    return start, end


# --------------------------------------------------------------------------- formatting


def pct(num: int, den: int) -> str:
    """100 × num / den with one decimal (half up); empty when the denominator is 0."""
    if not den:
        return ""
    value = Decimal(100 * num) / Decimal(den)
    return str(value.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


def percentage_point_change(value: str, prev: str) -> str:
    if value == "" or prev == "":
        return ""
    return str((Decimal(value) - Decimal(prev)).quantize(Decimal("0.1")))


def _met(rule: str, target: float | None, cur: Count, prev: Count | None) -> int | str:
    if not cur.den:
        return ""
    if rule.startswith(">=") and target is not None:
        return int(Decimal(100 * cur.num) >= Decimal(str(target)) * cur.den)
    if rule == "increase":
        if prev is None or not prev.den:
            return ""
        return int(cur.num * prev.den > prev.num * cur.den)
    return ""


def local_iso(facts: Facts, moment: dt.datetime | None) -> str:
    """A moment in the report's zone, at full precision: `data_cutoff` must be usable as the
    `as_of` of a re-run, so it may not be rounded down."""
    local = facts.local(moment)
    return "" if local is None else local.isoformat()


# --------------------------------------------------------------------------- the report


class Report:
    """Indicator values of one set of facts, computed once per date and period."""

    def __init__(self, facts: Facts, ward: WardConfig) -> None:
        self.facts = facts
        self.ward = ward
        self.scopes = [*ward.tdp_codes, WARD]
        # shared by every report built from the same facts and ward configuration
        self._status: dict[dt.date, dict[str, ScopeStatus]] = facts.memo.setdefault(
            ("status", ward), {})
        self._activity: dict[tuple[dt.date, dt.date], dict[str, dict[str, int]]] = (
            facts.memo.setdefault(("activity", ward), {}))

    def households_at(self, day: dt.date) -> list[HouseholdAt]:
        """Every household with a snapshot by `day`, at `day` (including moved-out ones).

        The last two dates asked for are kept with the facts: the registers read the date the
        indicators have just counted. Older ones are dropped, since a ward's members at one
        date are a lot of objects."""
        recent = self.facts.memo.get("households_at", {})
        found = recent.get(day)
        if found is None:
            # a household in the same state as at the date asked before is the same object
            last = self.facts.memo.setdefault("household_states", {})
            found = []
            for hid, h in self.facts.households.items():
                state = _state(h, day)
                if not state[1]:
                    continue  # not surveyed by then
                known = last.get(hid)
                if known is None or known[0] != state:
                    known = last[hid] = (state, household_at(h, day))
                found.append(known[1])
            # replaced whole, never changed in place: another thread may be reading it
            self.facts.memo["households_at"] = {**dict(list(recent.items())[-1:]), day: found}
        return found

    def status(self, day: dt.date) -> dict[str, ScopeStatus]:
        if day in self._status:
            return self._status[day]
        out = {code: ScopeStatus() for code in self.ward.tdp_codes}
        for t in self.ward.tdps:
            out[t.code]["I00"].den = t.official_households
        for at in self.households_at(day):
            if at.known and at.tdp in out:
                _count_household(out[at.tdp], at, self.ward)
        for code, scope in out.items():
            _count_volunteers(scope, self.facts, day, lambda team, code=code: team == code)
        ward = ScopeStatus()
        for code in self.ward.tdp_codes:
            ward += out[code]
        ward.codes.pop("I07", None)  # the ward team counts too (§6.4, E2 note)
        _count_volunteers(ward, self.facts, day, lambda team: True)
        out[WARD] = ward
        self._status[day] = out
        return out

    def activity(self, period: Period) -> dict[str, dict[str, int]]:
        key = (period.start, period.end)
        if key in self._activity:
            return self._activity[key]
        out: dict[str, dict[str, int]] = {
            code: dict.fromkeys(ACTIVITY_CODES, 0) for code in self.ward.tdp_codes}
        flows = self._flows()
        for h in self.facts.households.values():
            tdp = h.tdp_at(period.end)
            if tdp not in out:
                continue
            for code, value in _activity(flows[h.household_id], period.start, period.end).items():
                out[tdp][code] += value
        out[WARD] = {code: sum(out[t][code] for t in self.ward.tdp_codes)
                     for code in ACTIVITY_CODES}
        self._activity[key] = out
        return out

    def _flows(self) -> dict[str, _Flows]:
        """Every household's dated activity, sorted out once for all periods."""
        grace = self.ward.followup_grace_days
        flows = self.facts.memo.get(("flows", grace))
        if flows is None:
            flows = self.facts.memo[("flows", grace)] = {
                hid: _flows(h, grace) for hid, h in self.facts.households.items()}
        return flows

    def pending(self, day: dt.date) -> dict[str, int]:
        """Unresolved review pairs touching a household of each scope (WARD: all, once)."""
        out = dict.fromkeys(self.scopes, 0)
        households = self.facts.households
        for pair in self.facts.pending_pairs:
            tdps = set()
            for hid, fallback in zip((pair.household_a, pair.household_b), pair.snapshot_tdps,
                                     strict=True):
                h = households.get(hid)
                tdps.add(h.tdp_at(day) if h is not None else fallback)
            for tdp in tdps & set(self.ward.tdp_codes):
                out[tdp] += 1
            out[WARD] += 1
        return out

    def tdp_name(self, scope: str) -> str:
        return "" if scope == WARD else self.ward.get_tdp(scope).label_vi

    # E1 -------------------------------------------------------------------------------------

    def long_rows(self, periods: list[Period], generated_at: str) -> Iterator[list]:
        cutoff = local_iso(self.facts, self.facts.data_cutoff)
        for p in periods:
            cur, prev = self.status(p.end), self.status(p.previous().end)
            act, pending = self.activity(p), self.pending(p.end)
            for scope in self.scopes:
                head = [p.type, p.start.isoformat(), p.end.isoformat(),
                        "ward" if scope == WARD else "tdp", scope, self.tdp_name(scope)]
                tail = [pending[scope], cutoff, generated_at]
                for code in STATUS_CODES:
                    yield [*head, code, *INDICATOR_NAMES[code],
                           *self._status_cells(code, cur[scope][code], prev[scope][code]),
                           *tail]
                for code in ACTIVITY_CODES:
                    yield [*head, code, *INDICATOR_NAMES[code], act[scope][code],
                           "", "", "", "", "", "", "", "", *tail]

    def _status_cells(self, code: str, cur: Count, prev: Count) -> list:
        target = self.ward.target(code)
        rule = target.rule if target else ""
        target_pct = target.target_pct if target else None
        value, before = pct(cur.num, cur.den), pct(prev.num, prev.den)
        return [cur.num, cur.den, cur.unknown, value,
                "" if target_pct is None else f"{target_pct:.1f}", rule,
                _met(rule, target_pct, cur, prev), before, percentage_point_change(value, before)]

    # E2 -------------------------------------------------------------------------------------

    def wide_rows(self, periods: list[Period]) -> Iterator[list]:
        cutoff = local_iso(self.facts, self.facts.data_cutoff)
        for p in periods:
            cur, act, pending = self.status(p.end), self.activity(p), self.pending(p.end)
            for scope in self.scopes:
                s = cur[scope]

                def ndp(code: str, s: ScopeStatus = s) -> list:
                    c = s[code]
                    return [c.num, c.den, pct(c.num, c.den)]

                yield [
                    p.type, p.start.isoformat(), p.end.isoformat(), scope, self.tdp_name(scope),
                    s["I00"].den, s.known, s.consented, s.members, s.adults,
                    pct(s["I00"].num, s["I00"].den), *ndp("I01"), *ndp("I02"),
                    pct(s["I02a"].num, s["I02a"].den), pct(s["I02b"].num, s["I02b"].den),
                    *ndp("I03"), *ndp("I04"), *ndp("I05"), *ndp("I06"), *ndp("I07"),
                    *ndp("I08"), *(act[scope][code] for code in ACTIVITY_CODES),
                    pending[scope], cutoff,
                ]


def report_tables(
    session: Session,
    project_id: int,
    ward: WardConfig,
    *,
    period: str | None = None,
    as_of: dt.datetime | None = None,
    timezone: str = DEFAULT_TIMEZONE,
    now: dt.datetime | None = None,
    facts: Facts | None = None,
) -> list[Table]:
    """E1 `indicators_long` and E2 `report_wide` for `period` (`YYYY-MM`, `YYYY-Qn`, `YYYY`;
    None = the current month), from the data uploaded by `as_of` (None = everything)."""
    now = now or utcnow()
    periods = parse_period(period, now.astimezone(ZoneInfo(timezone)).date())
    facts = facts_for_ward(session, project_id, ward, as_of=as_of, timezone=timezone,
                           facts=facts)
    report = Report(facts, ward)
    generated_at = now.astimezone(ZoneInfo(timezone)).isoformat(timespec="seconds")
    return [
        Table("indicators_long", list(E1_COLUMNS),
              lambda: report.long_rows(periods, generated_at)),
        Table("report_wide", list(E2_COLUMNS), lambda: report.wide_rows(periods)),
    ]
