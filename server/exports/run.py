"""Which tables each export KIND produces, and writing them to a folder (CSV or .xlsx).

Used by `python -m server export` and by the web UI's downloads, so both give the same files.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session

from server.exports.tables import Table, write_csv, write_xlsx

KINDS = ("submissions", "households", "indicators", "activity", "dedupe")
PERIOD = re.compile(r"^(\d{4})(?:-(\d{2})|-Q([1-4]))?$")


class ExportError(ValueError):
    pass


@dataclass(frozen=True)
class Period:
    """A report period: a month (`2026-11`), a quarter (`2026-Q4`) or a year (`2026`)."""

    text: str
    kind: str  # month | quarter | year
    start: dt.date
    end: dt.date

    @classmethod
    def parse(cls, text: str) -> Period:
        m = PERIOD.match(text.strip())
        if not m:
            raise ExportError(f"period must be YYYY-MM, YYYY-Qn or YYYY, not {text!r}")
        year = int(m.group(1))
        if m.group(2):
            month = int(m.group(2))
            if not 1 <= month <= 12:
                raise ExportError(f"no month {month}")
            start = dt.date(year, month, 1)
            end = (dt.date(year + month // 12, month % 12 + 1, 1) - dt.timedelta(days=1))
            return cls(text, "month", start, end)
        if m.group(3):
            q = int(m.group(3))
            start = dt.date(year, 3 * q - 2, 1)
            end = (dt.date(year + (q == 4), (3 * q) % 12 + 1, 1) - dt.timedelta(days=1))
            return cls(text, "quarter", start, end)
        return cls(text, "year", dt.date(year, 1, 1), dt.date(year, 12, 31))


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
