"""Template filters and globals: dates and numbers in the reader's locale, tổ names, menus."""

from __future__ import annotations

import datetime as dt

from flask import current_app, g, request
from flask_babel import format_date, format_datetime, format_decimal, get_locale
from flask_babel import lazy_gettext as _l

from server.web import bp
from server.web.inputs import review_state_label

NAV = (
    ("web.dashboard", _l("Tổng quan")),
    ("web.submissions", _l("Phiếu")),
    ("web.households", _l("Hộ gia đình")),
    ("web.duplicates", _l("Hộ trùng")),
    ("web.forms", _l("Mẫu phiếu")),
    ("web.setup", _l("Cài Collect")),
    ("web.people", _l("Thành viên Tổ")),
    ("web.trainings", _l("Tập huấn")),
    ("web.exports", _l("Tải dữ liệu")),
)


def lang() -> str:
    return str(get_locale() or "vi")


def ward():
    return current_app.extensions.get("ward")


def tdp_name(code: str | None) -> str:
    if not code:
        return ""
    config = ward()
    for tdp in config.tdps if config is not None else ():
        if tdp.code == code:
            return tdp.label_en if lang() == "en" else tdp.label_vi
    return code


def tdp_choices() -> list[tuple[str, str]]:
    """The tổ the actor may see, as (code, name)."""
    config = ward()
    codes = [t.code for t in config.tdps] if config is not None else []
    team = g.get("team")
    if team:
        codes = [team]
    return [(c, tdp_name(c)) for c in codes]


@bp.app_template_filter("when")
def when(value) -> str:
    if not isinstance(value, dt.datetime):
        return ""
    return format_datetime(value, "dd/MM/yyyy HH:mm")


@bp.app_template_filter("day")
def day(value) -> str:
    if isinstance(value, str):
        try:
            value = dt.date.fromisoformat(value[:10])
        except ValueError:
            return value
    if isinstance(value, dt.datetime):
        return format_datetime(value, "dd/MM/yyyy")
    if isinstance(value, dt.date):
        return format_date(value, "dd/MM/yyyy")
    return ""


@bp.app_template_filter("num")
def num(value) -> str:
    if value is None or value == "":
        return "–"
    return format_decimal(value, format="#,##0.#")


@bp.app_template_filter("pct")
def pct(value) -> str:
    if value is None or value == "":
        return "–"
    return format_decimal(float(value), format="0.0") + " %"


@bp.app_template_filter("state")
def state(value: str) -> str:
    return review_state_label(value)


@bp.app_template_filter("tdp")
def tdp_filter(code: str | None) -> str:
    return tdp_name(code)


@bp.app_template_filter("width")
def width(value, top=100) -> int:
    """A whole percentage for the CSS width classes of the bars (w-0 … w-100)."""
    try:
        share = 100 * float(value) / float(top) if top else 0
    except (TypeError, ValueError):
        return 0
    return max(0, min(100, round(share)))


@bp.app_context_processor
def globals_for_pages() -> dict:
    return {"nav": NAV, "lang": lang(), "endpoint": request.endpoint,
            "tdp_name": tdp_name, "ward": ward()}
