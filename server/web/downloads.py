"""`/exports`: every export of the project as download links; CSV streamed (UTF-8 with BOM),
.xlsx and zip sent as files. The same tables as `python -m server export`, limited to the
team leader's tổ where the tables carry one.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

from flask import (
    Response,
    abort,
    current_app,
    g,
    render_template,
    request,
    send_file,
    stream_with_context,
)
from sqlalchemy import select

from server.db.models import Entity, Form
from server.domain import masking
from server.exports.run import ExportError, Period
from server.exports.tables import Table, csv_chunks, write_xlsx
from server.web import bp, scope
from server.web.audit import record
from server.web.inputs import REVIEW_STATES
from server.web.review import project_forms
from server.web.templating import tdp_choices, ward
from server.web_context import blob_store, db_session


def _masked() -> bool:
    """Phone numbers in full only for who needs them (server/domain/masking.py)."""
    return not masking.sees_full_phone(g.actor, scope.team())


def _audited(kind: str, name: str, fmt: str, **details) -> None:
    """Every download is in the audit log: who took what, of which period, masked or not."""
    record("export", target=kind, via="web", table=name, format=fmt, masked=_masked(),
           period=request.args.get("period", "").strip()[:20] or None, **details)


def _only(table: Table, keep: Callable[[list], bool]) -> Table:
    return Table(table.name, table.columns, lambda: (r for r in table.rows() if keep(r)))


def _team_entities(db, team: str) -> set[str]:
    return set(db.scalars(select(Entity.id).where(Entity.project_id == scope.project_id(),
                                                  Entity.tdp == team)))


def dedupe_tables(db) -> list[Table]:
    from server.exports.run import dedupe_tables as tables

    e8, e9 = tables(db, scope.project_id(), ward())
    team = scope.team()
    if team is None:
        return [e8, e9]
    mine = _team_entities(db, team)
    tdp_a, tdp_b = e8.columns.index("tdp_a"), e8.columns.index("tdp_b")
    canonical, alias = e9.columns.index("canonical_id"), e9.columns.index("alias_id")
    return [_only(e8, lambda r: r[tdp_a] == team and r[tdp_b] == team),
            _only(e9, lambda r: r[canonical] in mine or r[alias] in mine)]


def _by_tdp(tables: list[Table]) -> list[Table]:
    """A team leader's copy: only the rows of its own tổ (tables without a tổ column go)."""
    team = scope.team()
    if team is None:
        return tables
    out = []
    for table in tables:
        if "tdp_code" in table.columns:
            i = table.columns.index("tdp_code")
            out.append(_only(table, lambda r, i=i: r[i] == team))
    return out


def _report_period() -> str | None:
    text = request.args.get("period", "").strip()[:20]
    if not text:
        return None
    try:
        Period.parse(text)
    except ExportError:
        abort(400)
    return text


def indicator_tables(db) -> list[Table]:
    from server.exports.indicators import report_tables

    if ward() is None:
        return []
    return _by_tdp(report_tables(db, scope.project_id(), ward(), period=_report_period(),
                                 timezone=current_app.config["TIMEZONE"]))


def register_tables(db) -> list[Table]:
    from server.exports.registers import register_tables as tables

    if ward() is None:
        return []
    return _by_tdp([t for t in tables(db, scope.project_id(), ward(), period=_report_period(),
                                      timezone=current_app.config["TIMEZONE"],
                                      mask_phones=_masked())
                    if t.name in TABLES["households"]])


def activity_tables(db) -> list[Table]:
    """E5–E7, as `export activity`; a team leader gets its tổ's events, volunteers and team."""
    from server.exports.activity import activity_export

    if ward() is None:
        return []
    return _by_tdp(activity_export(db, scope.project_id(), ward(), period=_report_period(),
                                   timezone=current_app.config["TIMEZONE"]))


KINDS: dict[str, Callable] = {"indicators": indicator_tables, "households": register_tables,
                              "activity": activity_tables, "dedupe": dedupe_tables}
# What each kind gives (domain §6.4, §6.6, §7.8), listed without computing anything.
TABLES = {"indicators": ("indicators_long", "report_wide"),
          "households": ("households_register", "members_register"),
          "activity": ("service_events", "volunteer_activity", "team_activity"),
          "dedupe": ("dedupe_review_queue", "merge_log")}


def _period() -> tuple | None:
    text = request.args.get("period", "").strip()
    if not text:
        return None
    try:
        p = Period.parse(text[:20])
    except ExportError:
        abort(400)
    return p.start, p.end


def _raw_filters(db) -> dict:
    """The raw export's filters beside the period: review state, tổ (a leader always gets its
    own) and submitter (a username of the project). A value that names nothing is a 400."""
    from server.exports.raw import filter_choices

    try:
        return filter_choices(
            db, scope.project_id(), ward().tdp_codes if ward() is not None else None,
            review_state=request.args.get("state", "").strip(),
            tdp=scope.team() or request.args.get("tdp", "").strip() or None,
            submitter=request.args.get("submitter", "").strip()[:100])
    except ValueError:
        abort(400)


def _raw(form_id: str):
    from server.exports.raw import RawFilters, raw_tables

    db = db_session()
    form = next((f for f in project_forms(db, scope.project_id()) if f.xml_form_id == form_id),
                None)
    if form is None or form.current_version_id is None:
        abort(404)
    filters = RawFilters(period=_period(), **_raw_filters(db))
    tz = current_app.config["TIMEZONE"]
    return db, form, filters, lambda: raw_tables(db, form, filters=filters, timezone=tz,
                                                 mask_phones=_masked())


def _disposition(name: str) -> str:
    return f"attachment; filename*=UTF-8''{quote(name, safe='')}"


def stream_csv(table: Table) -> Response:
    """The table as CSV, written while it is sent; the rows' session is closed at the end
    (the request's own teardown may have run before the last row was read)."""
    db, bom = db_session(), request.args.get("bom") != "0"

    def chunks():
        try:
            yield from csv_chunks(table, bom=bom)
        finally:
            db.close()

    return Response(stream_with_context(chunks()), mimetype="text/csv", headers={
        "Content-Disposition": _disposition(f"{table.name}.csv")})


def send_temp(write: Callable[[Path], object], name: str, mimetype: str) -> Response:
    """Write a file to a temporary path, then stream it; the file is gone once sent."""
    fd, tmp = tempfile.mkstemp(suffix=Path(name).suffix)
    os.close(fd)
    path = Path(tmp)
    try:
        write(path)
        handle = path.open("rb")
    finally:
        path.unlink(missing_ok=True)
    return send_file(handle, mimetype=mimetype, as_attachment=True, download_name=name,
                     max_age=0)


XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@bp.get("/exports")
def exports():
    db = db_session()
    forms = [f for f in project_forms(db, scope.project_id()) if f.current_version_id]
    tables = {kind: names for kind, names in TABLES.items()
              if kind == "dedupe" or ward() is not None}
    raw = [(f, form_tables(db, f)) for f in forms]
    raw_q = {k: request.args.get(k, "").strip()[:100] for k in ("state", "tdp", "submitter")}
    return render_template("exports.html", raw=raw, tables=tables,
                           period=request.args.get("period", "")[:20],
                           raw_q={k: v for k, v in raw_q.items() if v},
                           review_states=REVIEW_STATES, tdps=tdp_choices())


@bp.get("/exports/<kind>/<name>.csv")
def export_csv(kind: str, name: str):
    if kind not in KINDS:
        abort(404)
    table = next((t for t in KINDS[kind](db_session()) if t.name == name), None)
    if table is None:
        abort(404)
    _audited(kind, name, "csv")
    return stream_csv(table)


@bp.get("/exports/<kind>.xlsx")
def export_xlsx(kind: str):
    if kind not in KINDS:
        abort(404)
    tables = KINDS[kind](db_session())
    _audited(kind, kind, "xlsx")
    return send_temp(lambda p: write_xlsx(tables, p), f"{kind}.xlsx", XLSX)


@bp.get("/exports/submissions/<form_id>/<name>.csv")
def export_raw_csv(form_id: str, name: str):
    _db, _form, _filters, tables = _raw(form_id)
    table = next((t for t in tables() if t.name == name), None)
    if table is None:
        abort(404)
    _audited("submissions", name, "csv", form=form_id)
    return stream_csv(table)


@bp.get("/exports/submissions/<form_id>.xlsx")
def export_raw_xlsx(form_id: str):
    _db, form, _filters, tables = _raw(form_id)
    _audited("submissions", form.xml_form_id, "xlsx", form=form_id)
    return send_temp(lambda p: write_xlsx(tables(), p), f"{form.xml_form_id}.xlsx", XLSX)


@bp.get("/exports/submissions/<form_id>.zip")
def export_raw_zip(form_id: str):
    from server.exports.raw import write_zip

    db, form, filters, _tables = _raw(form_id)
    tz = current_app.config["TIMEZONE"]
    _audited("submissions", form.xml_form_id, "zip", form=form_id)
    return send_temp(lambda p: write_zip(db, blob_store(), form, p, filters=filters,
                                         timezone=tz, mask_phones=_masked()),
                     f"{form.xml_form_id}.csv.zip", "application/zip")


def form_tables(db, form: Form) -> list[str]:
    from server.exports.raw import raw_tables

    return [t.name for t in raw_tables(db, form, timezone=current_app.config["TIMEZONE"])]
