"""The duplicate queue (domain §7.8): both records side by side with their differences,
decisions through matching.decide, and the merge log with its undo through matching.unmerge.

A team leader sees and decides the pairs inside its own tổ; the ward office and admins see
every pair of the project and alone undo merges (matching.may_decide / matching.unmerge).
"""

from __future__ import annotations

from flask import abort, current_app, flash, g, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from server.db.models import (
    DedupePair,
    Entity,
    HouseholdSnapshot,
    MergeLogEntry,
    SubmissionVersion,
    User,
)
from server.domain import accounts, masking, matching
from server.domain.normalize import clean_text
from server.exports.dedupe_reports import address
from server.web import bp, scope
from server.web.households import street_labels
from server.web.inputs import ActionInput, DecisionInput
from server.web.templating import tdp_name
from server.web_context import db_session

SEX = {"male": _l("Nam"), "female": _l("Nữ")}


def _snapshots(db, pair: DedupePair) -> tuple[HouseholdSnapshot, HouseholdSnapshot]:
    return db.get(HouseholdSnapshot, pair.snapshot_a), db.get(HouseholdSnapshot, pair.snapshot_b)


def visible_pairs(db, project_id: int) -> list[tuple[DedupePair, HouseholdSnapshot,
                                                      HouseholdSnapshot]]:
    out = []
    for pair in matching.pending_pairs(db, project_id):
        a, b = _snapshots(db, pair)
        if matching.may_decide(g.actor, pair, a.tdp, b.tdp):
            out.append((pair, a, b))
    return out


@bp.get("/duplicates")
def duplicates():
    db = db_session()
    pairs = visible_pairs(db, scope.project_id())
    return render_template("duplicates.html", pairs=pairs)


def _load_pair(pid: int):
    db = db_session()
    pair = db.get(DedupePair, pid)
    if pair is None or pair.project_id != scope.project_id():
        abort(404)
    a, b = _snapshots(db, pair)
    if not matching.may_decide(g.actor, pair, a.tdp, b.tdp):
        abort(403)
    return pair, a, b


def _surveyor(db, snap: HouseholdSnapshot) -> str:
    version = db.get(SubmissionVersion, snap.submission_version_id)
    user = db.get(User, version.submitter_id) if version and version.submitter_id else None
    return user.display_name if user else ""


def comparison(db, a: HouseholdSnapshot, b: HouseholdSnapshot) -> list[dict]:
    """Rows of (label, value A, value B, differ?) for the side-by-side view."""
    streets = street_labels()

    def members(s):
        return "\n".join(f"{m.get('name') or '?'} – {m.get('birth_year') or '?'}"
                         for m in (s.data or {}).get("members", []))

    def values(s):
        d = s.data or {}
        sex = d.get("head_sex") or ""
        return [tdp_name(s.tdp), address(d, streets), d.get("head_name") or "",
                str(d.get("head_birth_year") or ""), str(SEX.get(sex, sex)),
                d.get("phone") or "", s.survey_date or "", members(s), _surveyor(db, s)]

    labels = [_("Tổ dân phố"), _("Địa chỉ"), _("Chủ hộ"), _("Năm sinh chủ hộ"), _("Giới tính"),
              _("Điện thoại"), _("Ngày khảo sát"), _("Thành viên"), _("Người khảo sát")]
    rows = []
    for label, va, vb in zip(labels, values(a), values(b), strict=True):
        rows.append({"label": label, "a": va, "b": vb, "differ": clean_text(va) != clean_text(vb)})
    phone = rows[labels.index(_("Điện thoại"))]  # compared in full, shown as the role allows
    for side, snap in (("a", a), ("b", b)):
        phone[side] = masking.show_phone(phone[side], masking.sees_full_phone(g.actor, snap.tdp))
    return rows


@bp.get("/duplicates/<id:pid>")
def duplicate_pair(pid: int):
    db = db_session()
    pair, a, b = _load_pair(pid)
    decider = db.get(User, pair.decided_by) if pair.decided_by else None
    return render_template("duplicate.html", pair=pair, a=a, b=b, rows=comparison(db, a, b),
                           inp=DecisionInput(), decider=decider)


@bp.post("/duplicates/<id:pid>/decide")
def decide_pair(pid: int):
    db = db_session()
    pair, _a, _b = _load_pair(pid)
    inp = DecisionInput()
    if not inp.validate_on_submit():
        abort(400)
    note = (inp.note.data or "").strip() or None
    try:
        matching.decide(db, pair.id, inp.decision.data, g.actor,
                        current_app.extensions["matcher"], note=note)
    except matching.DecisionError as exc:
        db.rollback()
        flash(str(exc), "error")
        return redirect(url_for("web.duplicate_pair", pid=pid))
    accounts.audit(db, "households.decide", actor=g.actor, target=str(pair.id),
                   decision=inp.decision.data, note=note)
    flash(_("Đã ghi quyết định."), "ok")
    return redirect(url_for("web.duplicates"))


@bp.get("/duplicates/merges")
def merge_log():
    db = db_session()
    pid = scope.project_id()
    rows = db.execute(select(MergeLogEntry, User.display_name)
                      .outerjoin(User, User.id == MergeLogEntry.decided_by)
                      .where(MergeLogEntry.project_id == pid)
                      .order_by(MergeLogEntry.id.desc()).limit(500)).all()
    ids = {m.alias_id for m, _n in rows} | {m.canonical_id for m, _n in rows}
    tdp = dict(db.execute(select(Entity.id, Entity.tdp).where(Entity.id.in_(ids))).all())
    current = dict(db.execute(select(Entity.id, Entity.canonical_id)
                              .where(Entity.id.in_(ids))).all())
    shown = [(m, who) for m, who in rows
             if scope.sees_tdp(tdp.get(m.alias_id)) or scope.sees_tdp(tdp.get(m.canonical_id))]
    return render_template("merges.html", rows=shown, current=current, tdp=tdp,
                           may_undo=scope.is_office(), inp=ActionInput())


@bp.post("/duplicates/unmerge/<hid>")
def unmerge(hid: str):
    db = db_session()
    if not ActionInput().validate_on_submit():
        abort(400)
    if not scope.is_office():
        abort(403)
    alias = db.get(Entity, hid) if len(hid) <= 36 else None
    if alias is None or alias.project_id != scope.project_id():
        abort(404)
    try:
        matching.unmerge(db, alias.id, g.actor, current_app.extensions["matcher"])
    except matching.DecisionError as exc:
        db.rollback()
        flash(str(exc), "error")
        return redirect(url_for("web.merge_log"))
    accounts.audit(db, "households.unmerge", actor=g.actor, target=alias.id)
    flash(_("Đã tách hộ."), "ok")
    return redirect(url_for("web.merge_log"))
