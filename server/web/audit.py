"""`/audit`: the audit log (logins, exports, reviews, merges, erasures …) for admins, filtered
and paged, and its CSV export; `record` writes an entry at once for read-only requests
(downloads), which never commit on their own.
"""

from __future__ import annotations

import datetime as dt
import json
from zoneinfo import ZoneInfo

from flask import abort, current_app, g, render_template, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from sqlalchemy import func, select
from wtforms import DateField, IntegerField, SelectField
from wtforms.validators import NumberRange, Optional

from server.db.models import AuditEntry, User
from server.domain import accounts
from server.exports.tables import Table
from server.web import bp
from server.web.inputs import options
from server.web_context import database, db_session

PAGE_SIZE = 50
CSV_COLUMNS = ["id", "at", "username", "display_name", "action", "target", "details"]
ACTIONS = {
    "web.login": _l("Đăng nhập"),
    "web.login_failed": _l("Đăng nhập sai"),
    "export": _l("Tải, xuất dữ liệu"),
    "audit.export": _l("Tải nhật ký"),
    "submission.review": _l("Duyệt phiếu"),
    "households.decide": _l("Quyết định về hộ trùng"),
    "households.merge": _l("Gộp hộ"),
    "households.unmerge": _l("Tách hộ"),
    "households.dedupe": _l("Chạy lại ghép hộ trùng"),
    "personal_data.erase": _l("Xoá dữ liệu cá nhân"),
    "user.create": _l("Tạo tài khoản"),
    "user.revoke": _l("Thu hồi tài khoản"),
    "user.token_issued": _l("Cấp mã Collect"),
    "entity.alias_remapped": _l("Chuyển phiếu sang hộ đã gộp"),
    "report.issue": _l("Phát hành báo cáo"),
}


def record(action: str, *, target: str | None = None, **details) -> None:
    """An audit entry written and committed now, apart from the request's own session."""
    session = database().session(write=True)
    try:
        accounts.audit(session, action, actor=g.actor, target=target, **details)
        session.commit()
    finally:
        session.close()


def action_label(action: str) -> str:
    return str(ACTIONS.get(action, action))


class AuditFilter(FlaskForm):
    class Meta:
        csrf = False

    action = SelectField(_l("Thao tác"), validators=[Optional()], validate_choice=False)
    user = SelectField(_l("Người thực hiện"), validators=[Optional()], validate_choice=False)
    date_from = DateField(_l("Từ ngày"), validators=[Optional()])
    date_to = DateField(_l("Đến ngày"), validators=[Optional()])
    page = IntegerField(validators=[Optional(), NumberRange(min=1, max=1_000_000)])


def _require_admin() -> None:
    if g.actor.role != "admin":
        abort(403)


def _filters(db) -> tuple[AuditFilter, list]:
    """The filter inputs with their choices, and the WHERE clauses of those that validated
    (a bad one is dropped, never an error page)."""
    inp = AuditFilter(formdata=request.args)
    actions = sorted(db.scalars(select(AuditEntry.action).distinct()))
    inp.action.choices = options([("", _("Tất cả"))] + [(a, action_label(a)) for a in actions])
    people = db.execute(select(User.id, User.username, User.display_name)
                        .order_by(User.username)).all()
    inp.user.choices = options([("", _("Tất cả")), ("none", _("Máy chủ, lệnh"))] + [
        (str(uid), f"{name} – {display}") for uid, name, display in people])
    inp.validate()
    zone = ZoneInfo(current_app.config["TIMEZONE"])
    where = []
    if inp.action.data and len(inp.action.data) <= 50:
        where.append(AuditEntry.action == inp.action.data)
    who = inp.user.data or ""
    if who == "none":
        where.append(AuditEntry.actor_id.is_(None))
    elif who.isdigit() and len(who) <= 9:
        where.append(AuditEntry.actor_id == int(who))
    if isinstance(inp.date_from.data, dt.date) and not inp.date_from.errors:
        where.append(AuditEntry.at >= dt.datetime.combine(inp.date_from.data, dt.time.min, zone))
    if (isinstance(inp.date_to.data, dt.date) and not inp.date_to.errors
            and inp.date_to.data < dt.date.max):
        after = dt.datetime.combine(inp.date_to.data + dt.timedelta(days=1), dt.time.min, zone)
        where.append(AuditEntry.at < after)
    return inp, where


def _details_text(details: dict | None) -> str:
    if not details:
        return ""
    return "; ".join(f"{k}: {v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)}"
                     for k, v in sorted(details.items()) if v not in (None, "", [], {}))


@bp.get("/audit")
def audit_log():
    _require_admin()
    db = db_session()
    inp, where = _filters(db)
    total = db.scalar(select(func.count()).select_from(AuditEntry).where(*where)) or 0
    pages = max(1, -(-total // PAGE_SIZE))
    page = inp.page.data if isinstance(inp.page.data, int) and not inp.page.errors else 1
    page = min(page, pages)
    found = db.execute(
        select(AuditEntry, User.username, User.display_name)
        .outerjoin(User, User.id == AuditEntry.actor_id).where(*where)
        .order_by(AuditEntry.id.desc()).limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE)).all()
    rows = [{"e": e, "who": f"{name} – {display}" if name else "", "label": action_label(e.action),
             "details": _details_text(e.details)} for e, name, display in found]
    args = {k: v for k, v in request.args.items() if k != "page" and len(v) <= 255}
    return render_template("audit.html", inp=inp, rows=rows, total=total, page=page,
                           pages=pages, args=args)


@bp.get("/audit.csv")
def audit_csv():
    from server.web.downloads import stream_csv

    _require_admin()
    db = db_session()
    _inp, where = _filters(db)
    zone = ZoneInfo(current_app.config["TIMEZONE"])

    def rows():
        q = (select(AuditEntry, User.username, User.display_name)
             .outerjoin(User, User.id == AuditEntry.actor_id).where(*where)
             .order_by(AuditEntry.id).execution_options(yield_per=500))
        for e, name, display in db.execute(q):
            yield [e.id, e.at.astimezone(zone).isoformat(timespec="seconds"), name or "",
                   display or "", e.action, e.target or "",
                   json.dumps(e.details, ensure_ascii=False, sort_keys=True) if e.details
                   else ""]

    record("audit.export", target="audit_log",
           filters={k: v for k, v in request.args.items() if k != "page" and len(v) <= 100})
    return stream_csv(Table("audit_log", CSV_COLUMNS, rows))
