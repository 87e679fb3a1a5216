"""Erasing personal data on a data subject's request (Law 91/2025/QH15): an admin-only page per
household (the whole household or one member) and per submission, each with a confirmation;
the work is done by server.domain.erasure and recorded in the audit log.
"""

from __future__ import annotations

from flask import abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import BooleanField, RadioField, StringField
from wtforms.validators import DataRequired, InputRequired, Length

from server.db.models import HouseholdMember
from server.domain import entities, erasure
from server.web import bp
from server.web.households import load_household
from server.web.inputs import options
from server.web.review import load_submission, summary
from server.web.templating import ward
from server.web_context import blob_store, database, db_session

WHOLE = "household"


class ErasureInput(FlaskForm):
    reason = StringField(_l("Lý do, số hiệu đơn yêu cầu"), validators=[
        DataRequired(_l("Hãy ghi lý do hoặc số hiệu đơn yêu cầu.")),
        Length(max=erasure.REASON_MAX, message=_l("Tối đa 500 ký tự."))])
    confirm = BooleanField(_l("Tôi hiểu: các thông tin cá nhân bị xoá trắng trong mọi phiên bản "
                              "đã lưu và không khôi phục được."),
                           validators=[DataRequired(_l("Hãy đánh dấu xác nhận."))])


class HouseholdErasureInput(ErasureInput):
    who = RadioField(_l("Xoá thông tin của"), validators=[
        InputRequired(_l("Hãy chọn cả hộ hoặc một thành viên."))])


def _require_admin() -> None:
    if g.actor.role != "admin":
        abort(403)


def _streets() -> dict[str, str]:
    config = ward()
    return {s.name: s.label_vi for s in config.streets} if config is not None else {}


def _done(result: erasure.Result) -> None:
    """Commit now, then let the database and the blob store forget the old bytes."""
    db = db_session()
    db.commit()
    erasure.release(database().engine, blob_store(), result)
    flash(_("Đã xoá thông tin cá nhân: %(n)s phiếu, %(v)s phiên bản. Nhật ký số %(id)s.",
            n=len(result.submissions), v=result.versions, id=result.audit_id), "ok")


@bp.route("/households/<hid>/erase", methods=["GET", "POST"])
def erase_household(hid: str):
    _require_admin()
    db = db_session()
    e = load_household(hid)
    canonical = entities.resolve(db, e.id)[0] or e  # an alias's people live on its household
    members = list(db.scalars(select(HouseholdMember).where(
        HouseholdMember.household_id == canonical.id).order_by(HouseholdMember.name)))
    inp = HouseholdErasureInput()
    inp.who.choices = options([(WHOLE, _("Cả hộ: chủ hộ và mọi thành viên"))] + [
        (m.id, f"{m.name or _('(đã xoá)')} – {m.birth_year or '?'}") for m in members])
    error = None
    if request.method == "POST":
        if inp.validate_on_submit():
            who = inp.who.data
            try:
                result = erasure.erase_household(
                    db, blob_store(), household_id=e.id, actor=g.actor, reason=inp.reason.data,
                    member_id=None if who == WHOLE else who, streets=_streets())
            except erasure.ErasureError as exc:
                db.rollback()
                error = _("Không xoá được: %(reason)s", reason=str(exc))
            else:
                _done(result)
                return redirect(url_for("web.household", hid=e.id))
        return render_template("erase.html", inp=inp, e=e, error=error, kind="household"), 400
    return render_template("erase.html", inp=inp, e=e, kind="household")


@bp.route("/submissions/<id:sid>/erase", methods=["GET", "POST"])
def erase_submission(sid: int):
    _require_admin()
    db = db_session()
    sub, form = load_submission(sid)
    current = next((v for v in sub.versions if v.current), sub.versions[-1])
    inp = ErasureInput()
    error = None
    if request.method == "POST":
        if inp.validate_on_submit():
            try:
                result = erasure.erase_submission(
                    db, blob_store(), project_id=form.project_id, instance_id=sub.instance_id,
                    actor=g.actor, reason=inp.reason.data, streets=_streets())
            except erasure.ErasureError as exc:
                db.rollback()
                error = _("Không xoá được: %(reason)s", reason=str(exc))
            else:
                _done(result)
                return redirect(url_for("web.submission", sid=sub.id))
        return render_template("erase.html", inp=inp, sub=sub, name=summary(current),
                               error=error, kind="submission"), 400
    return render_template("erase.html", inp=inp, sub=sub, name=summary(current),
                           kind="submission")
