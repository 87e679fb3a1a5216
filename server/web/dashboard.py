"""The dashboard: each indicator of domain §6.3 per tổ and for the ward beside its 2026
target (bars drawn with CSS), the period's activity, submissions over time and per volunteer.

Indicator values come from server.exports.indicators (the same numbers as E1/E2).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from zoneinfo import ZoneInfo

from flask import current_app, render_template, request
from flask_babel import gettext as _
from sqlalchemy import select, true

from server.db.models import Submission, SubmissionVersion, User
from server.web import bp, scope
from server.web.review import project_forms, tdp_condition
from server.web.templating import lang, ward
from server.web_context import db_session

SV = SubmissionVersion
HEADLINE = ("I00", "I01", "I02", "I03", "I04", "I05", "I06", "I07", "I08")
INFORMATION = ("I02a", "I02b", "I04a", "I04b", "I04c", "I06a", "I09", "I10", "I11", "I12",
               "I13", "I14", "I15", "I16", "I17")


def _today() -> dt.date:
    return dt.datetime.now(ZoneInfo(current_app.config["TIMEZONE"])).date()


def choose_period(text: str | None):
    """The period asked for (`YYYY-MM`, `YYYY-Qn`, `YYYY` = year to date); this month if none
    or unreadable."""
    from server.exports.indicators import parse_period

    today = _today()
    try:
        periods = parse_period((text or "").strip()[:20] or None, today)
    except ValueError:
        periods = parse_period(None, today)
    period = periods[0]
    if period.type == "ytd" and period.start.year == today.year:
        period = type(period)("ytd", period.start, min(period.end, today))
    return period


def indicator_rows(db, period) -> tuple[list[dict], dict[str, str]]:
    """For each scope the actor sees: every indicator's value, target and bar widths."""
    from server.exports.facts import facts_for_ward
    from server.exports.indicators import INDICATOR_NAMES, WARD, Report, pct

    config = ward()
    # the facts the exports use, reused while the data are unchanged: a dashboard opened
    # again (or after a download) does not load and parse every submission again
    facts = facts_for_ward(db, scope.project_id(), config, as_of=None,
                           timezone=current_app.config["TIMEZONE"])
    report = Report(facts, config)
    status = report.status(period.end)
    activity = report.activity(period)
    scopes = [scope.team()] if scope.team() else [*config.tdp_codes, WARD]
    rows = []
    for code_scope in scopes:
        if code_scope not in status:
            continue
        cells = {}
        for code in (*HEADLINE, *INFORMATION):
            count = status[code_scope][code]
            target = config.target(code)
            value = pct(count.num, count.den)
            cells[code] = {
                "num": count.num, "den": count.den, "unknown": count.unknown,
                "value": float(value) if value else None,
                "target": target.target_pct if target else None,
                "rule": target.rule if target else "",
                "reference": target.reference_pct if target else None,
            }
        rows.append({"scope": code_scope, "ward": code_scope == WARD, "cells": cells,
                     "activity": activity.get(code_scope, {})})
    names = {code: INDICATOR_NAMES[code][1 if lang() == "en" else 0]
             for code in (*HEADLINE, *INFORMATION)}
    return rows, names


def submissions_over_time(db, period) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    """Submissions received per day (month) or per week (longer), and per person."""
    tz = ZoneInfo(current_app.config["TIMEZONE"])
    start = dt.datetime.combine(period.start, dt.time.min, tz)
    end = dt.datetime.combine(period.end + dt.timedelta(days=1), dt.time.min, tz)
    forms = project_forms(db, scope.project_id())
    q = (select(Submission.created_at, User.display_name)
         .join(SV, (SV.submission_id == Submission.id) & (SV.current == true()))
         .outerjoin(User, User.id == Submission.submitter_id)
         .where(Submission.form_id.in_([f.id for f in forms]),
                Submission.created_at >= start, Submission.created_at < end))
    if scope.team() is not None:
        q = q.where(tdp_condition(db, forms, scope.team()))
    by_time: Counter = Counter()
    by_person: Counter = Counter()
    weekly = (period.end - period.start).days > 31
    for created, name in db.execute(q):
        day = created.astimezone(tz).date()
        if weekly:
            day -= dt.timedelta(days=day.weekday())
        by_time[day] += 1
        by_person[name or _("(không rõ)")] += 1
    times = []
    day = period.start - dt.timedelta(days=period.start.weekday() if weekly else 0)
    while day <= min(period.end, _today()):
        times.append((day.strftime("%d/%m"), by_time.get(day, 0)))
        day += dt.timedelta(days=7 if weekly else 1)
    return times, by_person.most_common(30)


@bp.get("/")
def dashboard():
    db = db_session()
    pid = scope.project_id()
    period = choose_period(request.args.get("period"))
    rows, names = indicator_rows(db, period) if ward() is not None else ([], {})
    times, people = submissions_over_time(db, period)
    today = _today()
    choices = [
        (f"{today.year:04d}-{today.month:02d}", _("Tháng này")),
        (f"{today.year:04d}-Q{(today.month - 1) // 3 + 1}", _("Quý này")),
        (f"{today.year:04d}", _("Từ đầu năm")),
    ]
    return render_template(
        "dashboard.html", period=period, rows=rows, names=names, headline=HEADLINE,
        information=INFORMATION, times=times, people=people, choices=choices,
        top_time=max([n for _d, n in times] or [1]) or 1,
        top_person=max([n for _p, n in people] or [1]) or 1, project_id=pid,
        asked=request.args.get("period", "")[:20] or choices[0][0])
