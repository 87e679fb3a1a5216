"""E6 `volunteer_activity`, E7 `team_activity` (domain §6.6) and the 10 October award tables.

Why from the facts and the indicator Report: a volunteer's figures must agree with what E2 and
E5 say about the same submissions, so surveys, visits, completions and their uniqueness are read
from the facts (after de-duplication, latest versions at the cut-off), and E7's outcome columns
are the tổ's indicator values at the two dates, not a second computation.

Why distinct keys instead of rows: two submissions for one household on one day by one
volunteer are one visit with their services combined (§6.6), so splitting or repeating a
submission cannot raise a count.
"""

from __future__ import annotations

import calendar
import datetime as dt
from bisect import bisect_left, bisect_right
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from operator import attrgetter, itemgetter
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from server.db.models import utcnow
from server.domain.ward import WardConfig
from server.exports.facts import (
    DEFAULT_TIMEZONE,
    Facts,
    ServiceEvent,
    SnapshotFact,
    VisitFact,
    Volunteer,
    completion_subject,
    facts_for_ward,
)
from server.exports.indicators import (
    WARD,
    Period,
    Report,
    distinct_visits,
    parse_period,
    pct,
    percentage_point_change,
    period_bounds,
)
from server.exports.tables import Table

__all__ = [
    "E6_COLUMNS",
    "E7_COLUMNS",
    "SERVICE_CODES",
    "activity_export",
    "activity_tables",
    "award_period",
    "award_tables",
]

SERVICE_CODES = ("vneid_l1", "vneid_l2", "vneid_use", "dvc_account", "dvc_procedure",
                 "cashless", "biz_qr", "digisig", "vssid", "ehealth", "school_app", "ecommerce",
                 "bdhvs", "safety", "other")
E6_COLUMNS = [
    "period_type", "period_start", "period_end", "volunteer_id", "volunteer_name", "tdp_code",
    "role", "active", "trained_this_year", "n_surveys", "n_households_surveyed",
    "n_new_households", "n_duplicate_surveys", "n_visits", "n_households_visited",
    "n_households_helped", "n_people_helped", "n_completions", "n_unique_completions",
    "n_partial", "n_followup", *(f"done_{code}" for code in SERVICE_CODES), "minutes_total",
    "n_followups_due", "n_followups_on_time", "followup_on_time_pct", "n_verified",
    "n_verified_ok", "satisfaction_n", "satisfaction_positive_pct", "active_days",
    "first_activity_date", "last_activity_date",
]
E7_COLUMNS = (
    "period_type,period_start,period_end,tdp_code,tdp_name,n_volunteers,n_active_volunteers,"
    "n_trained_volunteers,n_visits,n_households_helped,n_people_helped,n_unique_completions,"
    "minutes_total,n_followups_due,n_followups_on_time,I02_pct_start,I02_pct_end,"
    "I02_change_pp,I03_pct_start,I03_pct_end,I04_pct_start,I04_pct_end,I04_change_pp,"
    "I06_pct_start,I06_pct_end,households_per_active_volunteer"
).split(",")
WARD_TEAM = "ward"
POSITIVE = ("very", "yes")
NOT_ASKED = ("na", "")


def role_of(v: Volunteer) -> str:
    """member | leader | ward (§6.6): the team a person belongs to says the role."""
    if v.team == WARD_TEAM:
        return "ward"
    return "leader" if v.role == "supervisor" else "member"


def one_decimal(num: int, den: int) -> str:
    """num ÷ den with one decimal (half up); empty when the denominator is 0."""
    if not den:
        return ""
    return str((Decimal(num) / Decimal(den)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


def _iso(day: dt.date | None) -> str:
    return "" if day is None else day.isoformat()


# --------------------------------------------------------------------------- who did what


_SURVEY_DAY = attrgetter("survey_date")
_VISIT_DAY = attrgetter("visit_date")
_EVENT_DAY = attrgetter("visit.visit_date")
_DUE_DAY = itemgetter(0)


def _between(records: list, start: dt.date, end: dt.date, day: Callable) -> list:
    """The records dated `start` to `end` (both included) of a list sorted by `day`."""
    return records[bisect_left(records, start, key=day):bisect_right(records, end, key=day)]


@dataclass(slots=True)
class _Work:
    """One account's own records, sorted out once, each list by date: a period is a slice."""

    surveys: list[SnapshotFact] = field(default_factory=list)
    visits: list[VisitFact] = field(default_factory=list)
    events: list[ServiceEvent] = field(default_factory=list)
    followups: list[tuple[dt.date, bool]] = field(default_factory=list)  # (due, met on time)

    def sort(self) -> None:
        self.surveys.sort(key=_SURVEY_DAY)
        self.visits.sort(key=_VISIT_DAY)
        self.events.sort(key=_EVENT_DAY)
        self.followups.sort(key=_DUE_DAY)


class _Index:
    """Every survey, visit, service event and promised follow-up, by the account credited."""

    def __init__(self, facts: Facts, grace_days: int) -> None:
        self.work: dict[str, _Work] = defaultdict(_Work)
        self.creators: set[int] = set()  # the survey that created each household
        self.duplicates: set[int] = set()
        grace = dt.timedelta(days=grace_days)
        for h in facts.households.values():
            creator = next((s for s in h.snapshots if s.new_household),
                           h.snapshots[0] if h.snapshots else None)
            if creator is not None:
                self.creators.add(creator.submission_id)
            for s in h.snapshots:
                self.work[s.volunteer_id].surveys.append(s)
                if s.new_household and any(t.entity_id != s.entity_id
                                           and t.order_key() < s.order_key()
                                           for t in h.snapshots):
                    # a new household that turned out to exist already (§6.6)
                    self.duplicates.add(s.submission_id)
            # A07/A08 as the indicators count them, credited to whoever promised the date
            for (volunteer, day), due in distinct_visits(h).items():
                if due is not None:
                    met = any(day < v.visit_date <= due + grace for v in h.visits)
                    self.work[volunteer].followups.append((due, met))
        for v in facts.visits:
            self.work[v.volunteer_id].visits.append(v)
        for e in facts.events:
            self.work[e.visit.volunteer_id].events.append(e)
        for w in self.work.values():
            w.sort()

    def of(self, volunteers: Iterable[Volunteer]) -> list[_Work]:
        return [self.work[v.username] for v in volunteers if v.username in self.work]


@dataclass(slots=True)
class _Figures:
    """What a volunteer or a team did in one period."""

    surveys: int = 0
    households_surveyed: set = field(default_factory=set)
    new_households: int = 0
    duplicate_surveys: int = 0
    visits: dict = field(default_factory=dict)  # (volunteer, household, date) → submissions
    households_helped: set = field(default_factory=set)
    people_helped: set = field(default_factory=set)
    completions: set = field(default_factory=set)
    unique: Counter = field(default_factory=Counter)  # by service
    partial: set = field(default_factory=set)
    followup: set = field(default_factory=set)
    minutes: int = 0
    due: int = 0
    on_time: int = 0
    verified: int = 0
    verified_ok: int = 0
    days: set = field(default_factory=set)

    def satisfaction(self) -> tuple[int, int]:
        """(answers, positive answers), one answer per visit: the latest submission's, so a
        visit sent in two parts is asked once."""
        answered = positive = 0
        for submissions in self.visits.values():
            answers = [v.satisfaction for v in sorted(submissions, key=lambda v: v.order_key())
                       if v.satisfaction]
            answer = answers[-1] if answers else ""
            if answer not in NOT_ASKED:
                answered += 1
                positive += answer in POSITIVE
        return answered, positive


def _figures(works: Iterable[_Work], index: _Index, start: dt.date, end: dt.date) -> _Figures:
    f = _Figures()
    for w in works:
        for s in _between(w.surveys, start, end, _SURVEY_DAY):
            f.surveys += 1
            f.households_surveyed.add(s.household_id)
            f.new_households += s.submission_id in index.creators
            f.duplicate_surveys += s.submission_id in index.duplicates
            f.days.add(s.survey_date)
        for v in _between(w.visits, start, end, _VISIT_DAY):
            f.visits.setdefault((v.volunteer_id, v.household_id, v.visit_date), []).append(v)
            f.minutes += v.minutes or 0
            f.days.add(v.visit_date)
        for e in _between(w.events, start, end, _EVENT_DAY):
            v = e.visit
            block = (v.volunteer_id, v.household_id, v.visit_date, e.service_code)
            if e.outcome == "partial":
                f.partial.add(block)
            elif e.outcome == "followup":
                f.followup.add(block)
            if e.verified is not None:
                f.verified += 1
                f.verified_ok += e.verified
            if e.is_completion and e.service_code:
                who = completion_subject(e)
                f.households_helped.add(v.household_id)
                if not e.is_household_level:
                    f.people_helped.add(who)
                f.completions.add((*block, who))
            if e.is_unique_completion:
                f.unique[e.service_code] += 1
        for _, met in _between(w.followups, start, end, _DUE_DAY):
            f.due += 1
            f.on_time += met
    return f


# --------------------------------------------------------------------------- the tables


class Activity:
    """E6 and E7 rows of one set of facts for any number of periods."""

    def __init__(self, facts: Facts, ward: WardConfig) -> None:
        self.facts = facts
        self.ward = ward
        self.report = Report(facts, ward)
        # shared by every activity report of the same facts (read only once built)
        grace = ward.followup_grace_days
        self.index = facts.memo.get(("activity_index", grace))
        if self.index is None:
            self.index = facts.memo[("activity_index", grace)] = _Index(facts, grace)
        order = {code: i for i, code in enumerate((*ward.tdp_codes, WARD_TEAM))}
        self.volunteers = sorted(facts.volunteers,
                                 key=lambda v: (order.get(v.team, len(order)), v.team,
                                                v.username))

    # E6 -------------------------------------------------------------------------------------

    def volunteer_row(self, p: Period, v: Volunteer) -> list:
        f = _figures(self.index.of([v]), self.index, p.start, p.end)
        answered, positive = f.satisfaction()
        return [
            p.type, p.start.isoformat(), p.end.isoformat(), v.username, v.display_name or "",
            v.team, role_of(v), int(v.active_at(p.end)),
            int(v.trained_between(dt.date(p.end.year, 1, 1), p.end)),
            f.surveys, len(f.households_surveyed), f.new_households, f.duplicate_surveys,
            len(f.visits), len({hid for _, hid, _ in f.visits}), len(f.households_helped),
            len(f.people_helped), len(f.completions), sum(f.unique.values()), len(f.partial),
            len(f.followup), *(f.unique[code] for code in SERVICE_CODES), f.minutes, f.due,
            f.on_time, pct(f.on_time, f.due), f.verified, f.verified_ok, answered,
            pct(positive, answered), len(f.days), _iso(min(f.days, default=None)),
            _iso(max(f.days, default=None)),
        ]

    def volunteer_rows(self, periods: list[Period]) -> Iterator[list]:
        for p in periods:
            for v in self.volunteers:
                yield self.volunteer_row(p, v)

    # E7 -------------------------------------------------------------------------------------

    def team_rows(self, periods: list[Period]) -> Iterator[list]:
        for p in periods:
            before = self.report.status(p.start - dt.timedelta(days=1))
            after = self.report.status(p.end)
            for scope in (*self.ward.tdp_codes, WARD):
                team = [v for v in self.volunteers if scope == WARD or v.team == scope]
                yield self._team_row(p, scope, team, before[scope], after[scope])

    def _team_row(self, p: Period, scope: str, team: list[Volunteer], start, end) -> list:
        f = _figures(self.index.of(team), self.index, p.start, p.end)
        year_start = dt.date(p.end.year, 1, 1)
        active = [v for v in team if v.active_at(p.end)]
        trained = sum(v.trained_between(year_start, p.end) for v in active)

        def value(status, code: str) -> str:
            return pct(status[code].num, status[code].den)

        i02, i04 = (value(start, "I02"), value(end, "I02")), (value(start, "I04"),
                                                               value(end, "I04"))
        return [
            p.type, p.start.isoformat(), p.end.isoformat(), scope, self.report.tdp_name(scope),
            len(team), len(active), trained, len(f.visits),
            len(f.households_helped), len(f.people_helped), sum(f.unique.values()), f.minutes,
            f.due, f.on_time, *i02, percentage_point_change(i02[1], i02[0]), value(start, "I03"),
            value(end, "I03"), *i04, percentage_point_change(i04[1], i04[0]), value(start, "I06"),
            value(end, "I06"), one_decimal(len(f.households_helped), len(active)),
        ]


def activity_tables(
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
    """E6 and E7 for the periods the indicators use: `2026-11` → November and the year to
    30 Nov, `2026-Q4` → the quarter and the year, `2026` → the year; None = this month."""
    now = now or utcnow()
    periods = parse_period(period, now.astimezone(ZoneInfo(timezone)).date())
    activity = Activity(facts_for_ward(session, project_id, ward, as_of=as_of, timezone=timezone,
                                       facts=facts), ward)
    return [
        Table("volunteer_activity", list(E6_COLUMNS), lambda: activity.volunteer_rows(periods)),
        Table("team_activity", list(E7_COLUMNS), lambda: activity.team_rows(periods)),
    ]


def activity_export(
    session: Session,
    project_id: int,
    ward: WardConfig,
    *,
    period: str | None = None,
    as_of: dt.datetime | None = None,
    timezone: str = DEFAULT_TIMEZONE,
    now: dt.datetime | None = None,
) -> list[Table]:
    """The `activity` export: E5 (visits dated in the period, as before) then E6 and E7, all
    from one load of the facts."""
    from server.exports.registers import register_tables

    facts = facts_for_ward(session, project_id, ward, as_of=as_of, timezone=timezone)
    kw = {"period": period, "as_of": as_of, "timezone": timezone, "now": now, "facts": facts}
    events = next(t for t in register_tables(session, project_id, ward, **kw)
                  if t.name == "service_events")
    return [events, *activity_tables(session, project_id, ward, **kw)]


# --------------------------------------------------------------------------- awards


def award_period(ward: WardConfig, period: str | None) -> Period:
    """Year to date up to the ward's award cut-off (§6.6 AWARD_CUTOFF), in the year asked for
    (`2026`), or in the cut-off's own year."""
    cutoff = ward.awards.cutoff
    year = cutoff.year
    if period is not None:
        kind, start, _ = period_bounds(period)
        if kind != "ytd":
            raise ValueError(f"period {period!r}: the awards cover a year to date, "
                             "write the year (YYYY)")
        year = start.year
    day = min(cutoff.day, calendar.monthrange(year, cutoff.month)[1])
    return Period("ytd", dt.date(year, 1, 1), dt.date(year, cutoff.month, day))


def _score_rows(activity: Activity, p: Period) -> Iterator[list]:
    """The published weights applied to the E6 counts; ties share a rank (1, 2, 2, 4)."""
    weights = [(metric, Decimal(str(weight)))
               for metric, weight in activity.ward.awards.score_weights]
    scored = []
    for v in activity.volunteers:
        row = dict(zip(E6_COLUMNS, activity.volunteer_row(p, v), strict=True))
        score = sum((w * row[metric] for metric, w in weights), Decimal(0))
        scored.append((score, row))
    scored.sort(key=lambda item: (-item[0], item[1]["volunteer_id"]))
    rank, previous = 0, None
    for n, (score, row) in enumerate(scored, 1):
        if score != previous:
            rank, previous = n, score
        yield [*(row[c] for c in _score_columns(activity.ward)[:-2]),
               f"{score.quantize(Decimal('0.01')).normalize():f}", rank]


def _score_columns(ward: WardConfig) -> list[str]:
    metrics = [m for m, _ in ward.awards.score_weights]
    shown = [*metrics, *(c for c in ("n_verified", "n_verified_ok") if c not in metrics)]
    return [*E6_COLUMNS[:7], *shown, "award_score", "rank"]


def award_tables(
    session: Session,
    project_id: int,
    ward: WardConfig,
    *,
    period: str | None = None,
    as_of: dt.datetime | None = None,
    timezone: str = DEFAULT_TIMEZONE,
    facts: Facts | None = None,
) -> list[Table]:
    """The 10 October award list: E6 and E7 for the year to the award cut-off (same columns),
    and, when the ward has published weights, `award_scores` beside them."""
    p = award_period(ward, period)
    activity = Activity(facts_for_ward(session, project_id, ward, as_of=as_of, timezone=timezone,
                                       facts=facts), ward)
    tables = [
        Table("volunteer_awards", list(E6_COLUMNS), lambda: activity.volunteer_rows([p])),
        Table("team_awards", list(E7_COLUMNS), lambda: activity.team_rows([p])),
    ]
    if ward.awards.score_weights:
        tables.append(Table("award_scores", _score_columns(ward),
                            lambda: _score_rows(activity, p)))
    return tables
