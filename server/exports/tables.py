"""Writing tables for people: CSV that Excel opens with Vietnamese intact, and .xlsx.

A text cell that Excel would read as a formula (`=`, `+`, `-`, `@`, tab, carriage return at the
start) gets exactly one leading `'`; numbers, including negative ones, stay numbers.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

BOM = "\ufeff"
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
NUMBER = re.compile(r"^-?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$")


@dataclass
class Table:
    """A named table; `rows` is called once per write and may stream from the database."""

    name: str  # file name without extension, e.g. "indicators_long"
    columns: list[str]
    rows: Callable[[], Iterable[Iterable[Any]]]


def safe_cell(value: Any) -> Any:
    """Neutralise text that a spreadsheet would execute; leave numbers and blanks alone."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (int, float)):
        return value
    text = str(value)
    if text.startswith(FORMULA_START) and not NUMBER.match(text):
        return "'" + text
    return text


def csv_chunks(table: Table, *, bom: bool = True, neutralise: bool = True) -> Iterator[str]:
    """The CSV text of a table in pieces (RFC 4180, `\\r\\n` line ends)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    if bom:
        buffer.write(BOM)
    writer.writerow(table.columns)
    fix = safe_cell if neutralise else (lambda v: "" if v is None else v)
    for n, row in enumerate(table.rows(), 1):
        writer.writerow([fix(v) for v in row])
        if n % 500 == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def write_csv(table: Table, out: IO[str] | Path, *, bom: bool = True,
              progress: Callable[[int], None] | None = None) -> int:
    """Write one table; returns the number of bytes written (UTF-8)."""
    close = False
    if isinstance(out, Path):
        out = out.open("w", encoding="utf-8", newline="")
        close = True
    size = 0
    try:
        for chunk in csv_chunks(table, bom=bom):
            out.write(chunk)
            size += len(chunk.encode("utf-8"))
            if progress:
                progress(chunk.count("\r\n"))
    finally:
        if close:
            out.close()
    return size


def write_xlsx(tables: list[Table], path: Path) -> None:
    """One sheet per table, streamed (openpyxl write-only mode keeps memory flat)."""
    from openpyxl import Workbook

    wb = Workbook(write_only=True)
    for table in tables:
        ws = wb.create_sheet(title=table.name[:31])
        ws.append(table.columns)
        for row in table.rows():
            ws.append([_xlsx_value(v) for v in row])
    wb.save(path)


def _xlsx_value(value: Any) -> Any:
    value = safe_cell(value)
    if isinstance(value, str) and NUMBER.match(value) and len(value) < 16 and not (
            value.startswith("0") and len(value) > 1 and not value.startswith("0.")):
        # numbers kept as text by the CSV path become numbers again; "0912…" stays text
        return float(value) if any(c in value for c in ".eE") else int(value)
    return value
