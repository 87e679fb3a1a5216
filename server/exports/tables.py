"""Writing tables for people: CSV that Excel opens with Vietnamese intact, and .xlsx.

A text cell that Excel would read as a formula (`=`, `+`, `-`, `@`, tab, carriage return at the
start) gets exactly one leading `'`; numbers, including negative ones, stay numbers.

CSV rows whose cells are all plain text (the raw exports make every cell text) are joined in one
call and checked as a whole; only a row with a cell to quote goes through `csv.writer`, and only
one with a cell to neutralise through `safe_cell`, so every path gives the same bytes. Rows of
text, numbers and blanks (the reports') are written by `csv.writer` as they are, and the line
it wrote is checked as a whole the same way.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

BOM = "\ufeff"
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
NUMBER = re.compile(r"^-?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$")
_CHUNK_ROWS = 500
_FORMULA_AFTER_COMMA = re.compile(r",[=+\-@\t\r]")


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
    lines: list[str] = [BOM] if bom else []
    writer = csv.writer(_Appender(lines), lineterminator="\r\n")
    writer.writerow(table.columns)
    fix = safe_cell if neutralise else (lambda v: "" if v is None else v)
    for n, row in enumerate(table.rows(), 1):
        if not isinstance(row, (list, tuple)):
            row = list(row)
        line = _plain_line(row, neutralise)
        if line is None:
            _write_cells(writer, lines, row, fix, neutralise)
        elif line:
            lines.append(line)
        else:  # text to quote, none to neutralise
            writer.writerow(row)
        if n % _CHUNK_ROWS == 0:
            yield "".join(lines)
            lines.clear()
    yield "".join(lines)


# Cells csv.writer writes as `safe_cell` would leave them, unless they start like a formula
# (a bool is written True/False by csv.writer and 1/0 by safe_cell, a date…).
_AS_THEY_ARE = frozenset({str, int, float, type(None)})
_FORMULA_AFTER_QUOTE = re.compile(r'"[=+\-@\t\r]')  # a quoted cell's first character


def _write_cells(writer, lines: list[str], row: list | tuple, fix: Callable[[Any], Any],
                 neutralise: bool) -> None:
    """A row with cells other than text: written as it is when no cell needs `fix`, else cell
    by cell. Every cell starts the line or follows a comma (and a quote when quoted), so the
    written line shows any cell that starts like a formula; a negative number looks like one
    and simply takes the slower way."""
    if set(map(type, row)) <= _AS_THEY_ARE:
        writer.writerow(row)
        if not neutralise or not _starts_like_formula(lines[-1]):
            return
        lines.pop()  # some cell needs `fix`
    writer.writerow([fix(v) for v in row])


def _starts_like_formula(written: str) -> bool:
    """Whether some cell of a line csv.writer wrote (line end included) starts like a
    formula: first in the line, after a comma, or after the opening quote of a quoted cell."""
    end = len(written) - 2
    return bool(written.startswith(FORMULA_START) or _FORMULA_AFTER_COMMA.search(written, 0, end)
                or ('"' in written and _FORMULA_AFTER_QUOTE.search(written, 0, end)))


def _plain_line(row: list | tuple, neutralise: bool) -> str | None:
    """The row's CSV line when every cell is text that needs no quotes and no `'`; "" when
    csv.writer only has to quote some cells; None when cells need `safe_cell`.

    The line is what csv.writer writes for such a row: cells joined by commas. A cell that
    starts with a formula character follows a comma (or starts the line), so none is missed.
    """
    try:
        line = ",".join(row)
    except TypeError:  # a number or None: csv.writer and safe_cell know what to do
        return None
    if neutralise and (line.startswith(FORMULA_START) or _FORMULA_AFTER_COMMA.search(line)):
        return None
    if (len(row) < 2 or line.count(",") != len(row) - 1
            or '"' in line or "\n" in line or "\r" in line or "\x00" in line):
        return ""
    return line + "\r\n"


class _Appender:
    """A file for csv.writer that appends each written line to a list."""

    __slots__ = ("write",)

    def __init__(self, lines: list[str]):
        self.write = lines.append


def write_csv(table: Table, out: IO[str] | Path, *, bom: bool = True,
              progress: Callable[[int], None] | None = None) -> int:
    """Write one table; returns the number of bytes written (UTF-8)."""
    if isinstance(out, Path):
        with out.open("wb") as fh:  # encoded once, here, rather than by a text layer
            return _write_chunks(table, fh.write, bom, progress, encode=True)
    return _write_chunks(table, out.write, bom, progress, encode=False)


def _write_chunks(table: Table, write: Callable[[Any], Any], bom: bool,
                  progress: Callable[[int], None] | None, *, encode: bool) -> int:
    size = 0
    for chunk in csv_chunks(table, bom=bom):
        data = chunk.encode("utf-8")
        write(data if encode else chunk)
        size += len(data)
        if progress:
            progress(chunk.count("\r\n"))
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
