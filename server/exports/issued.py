"""Issued reports (domain §6.5): freeze a report as sent, and hand back the very same bytes.

Issuing computes the report "as of" the moment it is issued (submissions uploaded and review
decisions made after that moment are ignored, now and in any later re-run), writes its CSV
files (UTF-8 with BOM) and its .xlsx workbook, and keeps each file in the blob store. A later
download returns those stored bytes, never a re-computation, so late uploads that change the
live figures cannot change what the office already sent. The one change an issued file ever
sees is an erasure on request (domain §2.8): the person's names and phone leave its cells.
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
import io
import tempfile
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.db.models import IssuedReport, IssuedReportFile, utcnow
from server.exports.run import ExportError, Period, report_tables, write_tables
from server.exports.tables import BOM, Table

#: Report kinds that can be issued: the office's reports, not raw data or work queues.
ISSUABLE = ("indicators", "households", "activity")


@dataclass(frozen=True)
class IssuedFile:
    name: str
    data: bytes


def _team_rows(tables: list[Table], team: str | None) -> list[Table]:
    """A team leader's report: only the rows of its own tổ (tables without a tổ column go)."""
    if team is None:
        return tables
    out = []
    for table in tables:
        if "tdp_code" in table.columns:
            i = table.columns.index("tdp_code")
            rows = table.rows
            out.append(Table(table.name, table.columns,
                             lambda rows=rows, i=i: (r for r in rows() if r[i] == team)))
    return out


def issue(session: Session, store, kind: str, project_id: int, *, ward, period: str,
          timezone: str, team: str | None = None, issued_by: int | None = None,
          note: str = "", now: dt.datetime | None = None) -> IssuedReport:
    """Compute `kind` for `period` as of now, store its files, and record the issue."""
    if kind not in ISSUABLE:
        raise ExportError(f"only {', '.join(ISSUABLE)} reports can be issued, not {kind!r}")
    if ward is None:
        raise ExportError("reports need the ward configuration (forms/ward.toml)")
    parsed = Period.parse(period)
    as_of = now or utcnow()
    files: list[IssuedFile] = []
    with tempfile.TemporaryDirectory(prefix="issue-") as tmp:
        out = Path(tmp)
        # The facts are loaded once; the CSVs and the workbook are written from the same rows.
        tables = _team_rows(report_tables(session, kind, project_id, ward, period=parsed,
                                          timezone=timezone, as_of=as_of), team)
        for xlsx in (False, True):
            for path in write_tables(tables, out,
                                     xlsx_name=kind if xlsx else None, bom=True):
                files.append(IssuedFile(path.name, path.read_bytes()))
    report = IssuedReport(project_id=project_id, kind=kind, period=parsed.text, team=team,
                          as_of=as_of, issued_by=issued_by, issued_at=as_of, note=note.strip())
    for f in files:
        blob = store.put(session, f.data)
        report.files.append(IssuedReportFile(name=f.name, sha256=blob.sha256, size=len(f.data)))
    session.add(report)
    session.flush()
    return report


def reports(session: Session, project_id: int, *, team: str | None = None,
            all_teams: bool = True) -> list[IssuedReport]:
    """Issued reports, newest first. A team leader (`all_teams=False`) sees its own tổ's."""
    query = (select(IssuedReport).where(IssuedReport.project_id == project_id)
             .order_by(IssuedReport.issued_at.desc(), IssuedReport.id.desc()))
    if not all_teams:
        query = query.where(IssuedReport.team == team)
    return list(session.scalars(query))


def get(session: Session, report_id: int, project_id: int | None = None) -> IssuedReport:
    report = session.get(IssuedReport, report_id)
    if report is None or (project_id is not None and report.project_id != project_id):
        raise ExportError(f"no issued report {report_id}")
    return report


def file_bytes(session: Session, store, report: IssuedReport, name: str) -> bytes:
    for f in report.files:
        if f.name == name:
            return store.get(session, f.sha256)
    raise ExportError(f"issued report {report.id} has no file {name!r}")


def write_files(session: Session, store, report: IssuedReport, out: Path) -> list[Path]:
    """Write the issued files, byte for byte as issued, into `out`."""
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for f in report.files:
        path = out / f.name
        path.write_bytes(store.get(session, f.sha256))
        paths.append(path)
    return paths


def redact_files(session: Session, store, project_id: int, redact: Callable[[str], str]
                 ) -> list[str]:
    """An erasure on request (domain §2.8) reaches the reports already issued: every text cell
    (and note) naming the person is redacted, the figures and rows stay. Returns the sha256 of
    the files replaced, for the caller to drop once nothing refers to them."""
    replaced = []
    for report in reports(session, project_id):
        report.note = _redact_text(redact, report.note or "")
        for f in report.files:
            data = store.get(session, f.sha256)
            new = _redacted(f.name, data, redact)
            if new == data:
                continue
            replaced.append(f.sha256)
            blob = store.put(session, new)
            f.sha256, f.size = blob.sha256, len(new)
    session.flush()
    return replaced


def _redact_text(redact: Callable[[str], str], value: str) -> str:
    """`redact(value)`, which also brings text to NFC: here only a match changes the text."""
    new = redact(value)
    return value if new == unicodedata.normalize("NFC", value) else new


def _redacted(name: str, data: bytes, redact: Callable[[str], str]) -> bytes:
    cell = functools.partial(_redact_text, redact)
    if name.endswith(".csv"):
        text = data.decode("utf-8")
        bom = text.startswith(BOM)
        rows = list(csv.reader(io.StringIO(text[len(BOM):] if bom else text, newline="")))
        redacted = [[cell(v) for v in row] for row in rows]
        if redacted == rows:
            return data  # no cell names the person: the issued bytes stay as they are
        out = io.StringIO()
        csv.writer(out, lineterminator="\r\n").writerows(redacted)  # as the export wrote it
        return ((BOM if bom else "") + out.getvalue()).encode("utf-8")
    if name.endswith(".xlsx"):
        from openpyxl import load_workbook

        book = load_workbook(io.BytesIO(data))
        changed = False
        for sheet in book.worksheets:
            for row in sheet.iter_rows():
                for c in row:
                    if isinstance(c.value, str) and (new := cell(c.value)) != c.value:
                        c.value, changed = new, True
        if not changed:
            return data
        out = io.BytesIO()
        book.save(out)
        return out.getvalue()
    return data
