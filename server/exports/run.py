"""Which tables each export KIND produces, and writing them to a folder (CSV or .xlsx).

Used by `python -m server export` and by the web UI's downloads, so both give the same files.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session

from server.exports.collector import collector_paused
from server.exports.tables import Table, write_csv, write_xlsx

KINDS = ("submissions", "households", "indicators", "activity", "dedupe")


class ExportError(ValueError):
    pass


@dataclass(frozen=True)
class Period:
    """A report period: a month (`2026-11`), a quarter (`2026-Q4`) or a year (`2026`)."""

    text: str
    kind: str  # month | quarter | ytd
    start: dt.date
    end: dt.date

    @classmethod
    def parse(cls, text: str) -> Period:
        from server.exports.indicators import period_bounds  # the one period grammar

        try:
            return cls(text, *period_bounds(text))
        except ValueError as exc:
            raise ExportError(str(exc)) from exc


def write_tables(tables: list[Table], out: Path, *, xlsx_name: str | None, bom: bool,
                 progress: Callable[[int], None] | None = None) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    if xlsx_name:
        path = out / f"{xlsx_name}.xlsx"
        write_xlsx(tables, path)
        return [path]
    paths = []
    for table in tables:
        path = out / f"{table.name}.csv"
        write_csv(table, path, bom=bom, progress=progress)
        paths.append(path)
    return paths


def dedupe_tables(session: Session, project_id: int, ward) -> list[Table]:
    from server.exports.dedupe_reports import merge_log, review_queue

    return [review_queue(session, project_id, ward), merge_log(session, project_id)]


def export(session: Session, store, kind: str, project_id: int, *, ward, period: Period | None,
           form_id: str | None, out: Path, xlsx: bool, bom: bool, timezone: str,
           progress: Callable[[int], None] | None = None,
           as_of: dt.datetime | None = None, awards: bool = False,
           raw_filters: dict | None = None) -> list[Path]:
    """Write one export KIND into `out`; returns the paths written. `awards` (activity only):
    the 10 October award tables instead of the period's (domain §6.6)."""
    if kind not in KINDS:
        raise ExportError(f"unknown export {kind!r}")
    if awards and kind != "activity":
        raise ExportError(f"--awards goes with the activity export, not with {kind}")
    if kind == "submissions":
        return submissions(session, store, project_id, form_id=form_id, period=period, out=out,
                           xlsx=xlsx, bom=bom, timezone=timezone, progress=progress,
                           raw_filters=raw_filters)
    with collector_paused():  # a report's rows are built while they are written
        return _write_report(session, kind, project_id, ward=ward, period=period, out=out,
                             xlsx=xlsx, bom=bom, timezone=timezone, progress=progress,
                             as_of=as_of, awards=awards)


def _write_report(session: Session, kind: str, project_id: int, *, ward, period: Period | None,
                  out: Path, xlsx: bool, bom: bool, timezone: str,
                  progress: Callable[[int], None] | None, as_of: dt.datetime | None,
                  awards: bool) -> list[Path]:
    if kind == "dedupe":
        return write_tables(dedupe_tables(session, project_id, ward), out,
                            xlsx_name="dedupe" if xlsx else None, bom=bom, progress=progress)
    if ward is None:
        raise ExportError("reports need the ward configuration (forms/ward.toml)")
    if awards:
        tables = award_tables(session, project_id, ward, period=period, timezone=timezone,
                              as_of=as_of)
        return write_tables(tables, out, xlsx_name="awards" if xlsx else None, bom=bom,
                            progress=progress)
    tables = report_tables(session, kind, project_id, ward, period=period, timezone=timezone,
                           as_of=as_of)
    return write_tables(tables, out, xlsx_name=kind if xlsx else None, bom=bom,
                        progress=progress)


# Which report tables each KIND writes (domain §6.4, contract "export").
REPORT_TABLES = {
    "indicators": ("indicators_long", "report_wide"),
    "households": ("households_register", "members_register"),
    "activity": ("service_events", "volunteer_activity", "team_activity"),
}


def report_tables(session: Session, kind: str, project_id: int, ward, *,
                  period: Period | None, timezone: str,
                  as_of: dt.datetime | None = None) -> list[Table]:
    """The tables of a report KIND; `as_of` (a stored `data_cutoff`) ignores what was uploaded
    or decided after it, so an issued report can be produced again unchanged (§6.5)."""
    from server.exports.activity import activity_export
    from server.exports.indicators import report_tables as indicator_tables
    from server.exports.registers import register_tables

    build = {"indicators": indicator_tables, "activity": activity_export}.get(kind,
                                                                           register_tables)
    tables = build(session, project_id, ward, period=period.text if period else None,
                   timezone=timezone, as_of=as_of)
    return [t for t in tables if t.name in REPORT_TABLES[kind]]


def award_tables(session: Session, project_id: int, ward, *, period: Period | None,
                 timezone: str, as_of: dt.datetime | None = None) -> list[Table]:
    """E6/E7 for the year to the ward's award cut-off, and the scores if weights are set."""
    from server.exports.activity import award_tables as tables

    try:
        return tables(session, project_id, ward, period=period.text if period else None,
                      timezone=timezone, as_of=as_of)
    except ValueError as exc:
        raise ExportError(str(exc)) from exc


def submissions(session: Session, store, project_id: int, *, form_id: str | None,
                period: Period | None, out: Path, xlsx: bool, bom: bool, timezone: str,
                progress=None, raw_filters: dict | None = None) -> list[Path]:
    """Per form: a zip in Central's layout (root, repeats, media/) and the root CSV beside it.
    `raw_filters`: RawFilters' review_states, tdp and submitter_id."""
    from sqlalchemy import select

    from server.db.models import Form
    from server.exports.raw import RawFilters, raw_tables, write_zip

    query = select(Form).where(Form.project_id == project_id).order_by(Form.xml_form_id)
    if form_id:
        query = query.where(Form.xml_form_id == form_id)
    forms = list(session.scalars(query))
    if not forms:
        raise ExportError(f"no form {form_id!r} in project {project_id}" if form_id
                          else f"project {project_id} has no forms")
    filters = RawFilters(period=(period.start, period.end) if period else None,
                         **(raw_filters or {}))
    out.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    for form in forms:
        if xlsx:
            path = out / f"{form.xml_form_id}.xlsx"
            write_xlsx(raw_tables(session, form, filters=filters, timezone=timezone), path)
            paths.append(path)
            continue
        paths.append(write_zip(session, store, form, out / f"{form.xml_form_id}.zip",
                               filters=filters, bom=bom, timezone=timezone, progress=progress))
        root = raw_tables(session, form, filters=filters, timezone=timezone)[0]
        root_path = out / f"{form.xml_form_id}.csv"
        write_csv(root, root_path, bom=bom)
        paths.append(root_path)
    return paths
