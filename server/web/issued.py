"""`/reports`: issued reports (domain §6.5). Issuing freezes a report's files as of that
moment; every later download hands back those bytes unchanged. The ward office issues and sees
the ward's reports; a team leader issues and sees its own tổ's."""

from __future__ import annotations

from flask import Response, abort, current_app, flash, g, redirect, render_template, url_for
from flask_babel import gettext as _
from sqlalchemy import select

from server.db.models import User
from server.domain import accounts
from server.exports import issued
from server.exports.run import ExportError
from server.web import bp, scope
from server.web.downloads import XLSX, _disposition
from server.web.inputs import IssueInput
from server.web.templating import ward
from server.web_context import blob_store, database, db_session

MIMETYPES = {".csv": "text/csv", ".xlsx": XLSX}


def _visible():
    office = scope.team() is None
    return issued.reports(db_session(), scope.project_id(), team=scope.team(),
                          all_teams=office)


@bp.get("/reports")
def issued_reports():
    db = db_session()
    rows = _visible()
    ids = {r.issued_by for r in rows if r.issued_by}
    people = {u.id: u for u in db.scalars(select(User).where(User.id.in_(ids)))} if ids else {}
    return render_template("issued.html", reports=rows, people=people, inp=IssueInput(),
                           can_issue=ward() is not None)


@bp.post("/reports/issue")
def issue_report():
    inp = IssueInput()
    if not inp.validate_on_submit() or ward() is None:
        abort(400)
    db = db_session()
    try:
        report = issued.issue(db, blob_store(), inp.kind.data, scope.project_id(), ward=ward(),
                              period=inp.period.data, timezone=current_app.config["TIMEZONE"],
                              team=scope.team(), issued_by=g.actor.id,
                              note=inp.note.data or "")
    except ExportError as exc:
        db.rollback()
        flash(_("Không phát hành được: %(reason)s", reason=str(exc)), "error")
        return redirect(url_for("web.issued_reports"))
    accounts.audit(db, "report.issue", actor=g.actor, target=str(report.id),
                   kind=report.kind, period=report.period, team=report.team)
    flash(_("Đã phát hành báo cáo số %(id)s.", id=report.id), "ok")
    return redirect(url_for("web.issued_reports"))


@bp.get("/reports/<id:rid>/<path:name>")
def issued_file(rid: int, name: str):
    db = db_session()
    try:
        report = issued.get(db, rid, scope.project_id())
    except ExportError:
        abort(404)
    if scope.team() is not None and report.team != scope.team():
        abort(404)
    try:
        data = issued.file_bytes(db, blob_store(), report, name)
    except ExportError:
        abort(404)
    # a GET reads in a read session; its one audit line goes through a short write session
    with database().session(write=True) as writer:
        accounts.audit(writer, "report.download", actor=g.actor, target=str(report.id),
                       file=name)
        writer.commit()
    suffix = name[name.rfind("."):] if "." in name else ""
    return Response(data, mimetype=MIMETYPES.get(suffix, "application/octet-stream"),
                    headers={"Content-Disposition": _disposition(name),
                             "Cache-Control": "no-store"})
