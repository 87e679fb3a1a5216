"""OData query options shared by the OData feeds (entities, submissions): parsing and applying.

The API, kept small on purpose:

    q = parse_query(request.args)            # ODataQuery(top, skip, count, select, filter)
    q.filter                                 # None, or a parsed $filter tree (see Node below)
    fields_of(q.filter)                      # the field names the filter uses, e.g. {"label"}
    sql_condition(q.filter, {"__system/createdAt": Entity.created_at, ...})
                                             # → a SQLAlchemy condition for .where()
    predicate(q.filter, {"label": lambda row: row["label"], ...})
                                             # → a Python test, for rows built in Python
    check_select(q.select, known_names)      # 400.23 for a $select name the feed lacks
    select_row(row_dict, q.select)           # keep only the selected keys ("__system/x" too)
    next_link(request.url, q, total)         # "@odata.nextLink" when a $top page is not the last

$filter subset: `eq ne gt ge lt le`, `and or not`, parentheses; literals 'string' ('' escapes a
quote), integers, decimals, true/false, null, ISO dates and date-times (unquoted, as OData
writes them, or quoted). A field is any name the caller maps (`__system/createdAt`, `label`,
a property name); anything else is Central's 501.5, a function call (year(), contains()…) is
501.4, a malformed expression 400.18. Comparisons with a date-time field read the literal as a
date-time (a date is midnight UTC; a time without zone is UTC); with a text field, as written.

Node: ("field", name) | ("lit", value) | ("cmp", op, left, right) | ("and", a, b) |
("or", a, b) | ("not", a).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from sqlalchemy import and_, false, not_, or_
from sqlalchemy.sql.elements import ColumnElement

from server.central.common import UnexpectedValue
from server.errors import problem

UnparseableFilter = problem(400.18, "Không đọc được biểu thức $filter.",
                            "The OData filter expression could not be parsed.",
                            "UnparseableFilter")
PropertyNotFound = problem(400.23, "Không có trường này.", "Could not find a property.",
                           "PropertyNotFound")
UnsupportedExpression = problem(501.4, "Máy chủ chưa hỗ trợ phép này trong $filter.",
                                "The OData filter expression uses features not supported "
                                "by this server.", "UnsupportedExpression")
UnsupportedField = problem(501.5, "Máy chủ chưa hỗ trợ lọc theo trường này.",
                           "The OData filter expression references fields not supported "
                           "by this server.", "UnsupportedField")

COMPARISONS = ("eq", "ne", "gt", "ge", "lt", "le")
MAX_FILTER_LENGTH = 4000  # a filter longer than this is not a hand-written query


@dataclass(frozen=True)
class ODataQuery:
    top: int | None
    skip: int
    count: bool
    select: tuple[str, ...] | None  # None: every field
    filter: tuple | None


def parse_query(args: Mapping[str, str]) -> ODataQuery:
    """$top $skip $count $select $filter from the request's query string."""
    select = None
    raw_select = (args.get("$select") or "").strip()
    if raw_select and raw_select != "*":
        select = tuple(name.strip() for name in raw_select.split(",") if name.strip())
    raw_filter = args.get("$filter")
    return ODataQuery(
        top=_non_negative(args, "$top"),
        skip=_non_negative(args, "$skip") or 0,
        count=_boolean(args, "$count"),
        select=select,
        filter=parse_filter(raw_filter) if raw_filter and raw_filter.strip() else None,
    )


def _non_negative(args: Mapping[str, str], name: str) -> int | None:
    raw = args.get(name)
    if raw is None or raw.strip() == "":
        return None
    if not raw.strip().isdigit() or len(raw.strip()) > 12:
        raise UnexpectedValue(f"{name}={raw[:20]} (expected a whole number)")
    return int(raw.strip())


def _boolean(args: Mapping[str, str], name: str) -> bool:
    raw = (args.get(name) or "").strip()
    if raw.lower() in ("", "false"):
        return False
    if raw.lower() == "true":  # pyodk sends Python's True, OData clients send true
        return True
    raise UnexpectedValue(f"{name}={raw[:20]} (expected true or false)")


# Parsing $filter -----------------------------------------------------------------------------

_TOKEN = re.compile(r"""
    \s*(?:
      (?P<string>'(?:[^']|'')*')
    | (?P<datetime>\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})?)?)
    | (?P<number>-?\d+(?:\.\d+)?)
    | (?P<paren>[(),])
    | (?P<name>[A-Za-z_][A-Za-z0-9_./-]*)
    )""", re.VERBOSE)
_KEYWORDS = {"and", "or", "not", *COMPARISONS}


def _tokens(text: str) -> list[tuple[str, str, int]]:
    tokens, pos = [], 0
    text = text.rstrip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise UnparseableFilter(f"unexpected text at {pos}: {text[pos:pos + 20]!r}")
        kind = match.lastgroup
        tokens.append((kind, match.group(kind), match.start(kind)))
        pos = match.end()
    return tokens


def parse_filter(text: str) -> tuple:
    """The $filter text → a Node tree; 400.18 when malformed, 501.4 for functions."""
    if len(text) > MAX_FILTER_LENGTH:
        raise UnparseableFilter("the expression is too long")
    parser = _Parser(_tokens(text))
    node = parser.expression()
    if parser.peek() is not None:
        kind, value, at = parser.peek()
        raise UnparseableFilter(f"unexpected {value!r} at {at}")
    if node[0] in ("field", "lit"):
        raise UnparseableFilter("the expression is not a condition")
    return node


class _Parser:
    def __init__(self, tokens):
        self.tokens, self.pos, self.depth = tokens, 0, 0

    def peek(self):
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self):
        token = self.peek()
        if token is None:
            raise UnparseableFilter("the expression ends too early")
        self.pos += 1
        return token

    def keyword(self, *words: str) -> str | None:
        token = self.peek()
        if token is not None and token[0] == "name" and token[1].lower() in words:
            self.pos += 1
            return token[1].lower()
        return None

    def expression(self):
        node = self.conjunction()
        while self.keyword("or"):
            node = ("or", node, self.conjunction())
        return node

    def conjunction(self):
        node = self.negation()
        while self.keyword("and"):
            node = ("and", node, self.negation())
        return node

    def negation(self):
        if self.keyword("not"):
            return ("not", self.negation())
        left = self.operand()
        op = self.keyword(*COMPARISONS)
        if op is None:
            return left
        right = self.operand()
        return ("cmp", op, left, right)

    def operand(self):
        kind, value, at = self.take()
        if kind == "paren" and value == "(":
            self.depth += 1
            if self.depth > 50:
                raise UnparseableFilter("too deeply nested")
            node = self.expression()
            closing = self.take()
            if closing[1] != ")":
                raise UnparseableFilter(f"expected ) at {closing[2]}")
            self.depth -= 1
            return node
        if kind == "string":
            return ("lit", value[1:-1].replace("''", "'"))
        if kind == "number":
            return ("lit", int(value) if "." not in value else Decimal(value))
        if kind == "datetime":
            _moment(value)  # malformed dates fail here, not when the filter runs
            return ("lit", DateLiteral(value))
        if kind == "name":
            lowered = value.lower()
            if lowered in ("true", "false"):
                return ("lit", lowered == "true")
            if lowered == "null":
                return ("lit", None)
            if lowered in _KEYWORDS:
                raise UnparseableFilter(f"unexpected {value!r} at {at}")
            following = self.peek()
            if following is not None and following[1] == "(":
                raise UnsupportedExpression(f"function {value}() at {at}")
            return ("field", value)
        raise UnparseableFilter(f"unexpected {value!r} at {at}")


class DateLiteral(str):
    """An unquoted date or date-time: compared as text with text fields (`survey_date eq
    2026-01-01`), as a moment with date-time fields."""


def _moment(text: str) -> datetime:
    """An ISO date or date-time literal as an aware UTC datetime."""
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UnparseableFilter(f"{text!r} is not a date or date-time") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def fields_of(node: tuple | None) -> set[str]:
    if node is None:
        return set()
    if node[0] == "field":
        return {node[1]}
    if node[0] == "lit":
        return set()
    return set().union(*(fields_of(child) for child in node[1:] if isinstance(child, tuple)))


# Applying $filter ----------------------------------------------------------------------------


def sql_condition(node: tuple, columns: Mapping[str, ColumnElement]) -> ColumnElement:
    """A SQL condition for the filter; `columns` maps each filterable field to its column."""
    kind = node[0]
    if kind == "and":
        return and_(sql_condition(node[1], columns), sql_condition(node[2], columns))
    if kind == "or":
        return or_(sql_condition(node[1], columns), sql_condition(node[2], columns))
    if kind == "not":
        return not_(sql_condition(node[1], columns))
    if kind != "cmp":
        raise UnparseableFilter("expected a comparison")
    _kind, op, left, right = node
    if left[0] == "lit" and right[0] == "field":  # 5 lt x → x gt 5
        left, right, op = right, left, _MIRRORED[op]
    if left[0] != "field" or right[0] != "lit":
        raise UnsupportedExpression(f"{op} needs a field on one side and a value on the other")
    if left[1] not in columns:
        raise UnsupportedField(left[1])
    column = columns[left[1]]
    value = _coerce(right[1], _python_type(column), left[1])
    if value is None:
        if op == "eq":
            return column.is_(None)
        if op == "ne":
            return column.is_not(None)
        return false()
    return _SQL_OPS[op](column, value)


_MIRRORED = {"eq": "eq", "ne": "ne", "gt": "lt", "ge": "le", "lt": "gt", "le": "ge"}
_SQL_OPS = {
    "eq": lambda c, v: c == v, "ne": lambda c, v: c != v,
    "gt": lambda c, v: c > v, "ge": lambda c, v: c >= v,
    "lt": lambda c, v: c < v, "le": lambda c, v: c <= v,
}


def _python_type(column: ColumnElement) -> type | None:
    """The column's Python type, looking through a TypeDecorator to the type it wraps."""
    kind = column.type
    for candidate in (kind, getattr(kind, "impl_instance", None)):
        try:
            found = candidate.python_type
        except (NotImplementedError, AttributeError):
            continue
        if found is not object:
            return found
    return None


def _coerce(value: Any, wanted: type | None, field: str) -> Any:
    """The literal as the field's type, so a database never sees a mismatched comparison."""
    if value is None or wanted is None:
        return value
    if issubclass(wanted, datetime):
        if isinstance(value, datetime):
            return value
        if isinstance(value, str):
            return _moment(value.strip())
    elif wanted is bool:
        if isinstance(value, bool):
            return value
    elif issubclass(wanted, int | float | Decimal):
        if isinstance(value, int | Decimal) and not isinstance(value, bool):
            return value
        if isinstance(value, str):
            try:
                return Decimal(value.strip())
            except InvalidOperation:
                pass
    elif issubclass(wanted, str):
        if isinstance(value, datetime):
            return value.isoformat().replace("+00:00", "Z")
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)
    else:
        return value
    raise UnparseableFilter(f"{field} cannot be compared with {value!r}")


def predicate(node: tuple, getters: Mapping[str, Callable[[Any], Any]]) -> Callable[[Any], bool]:
    """A Python test for the filter; `getters` maps each filterable field to a row → value."""
    for name in fields_of(node):
        if name not in getters:
            raise UnsupportedField(name)
    _check_shape(node)

    def test(row) -> bool:
        return bool(_evaluate(node, getters, row))

    return test


def _check_shape(node: tuple) -> None:
    """Reject at parse time what sql_condition would reject, so both paths agree."""
    if node[0] in ("and", "or"):
        _check_shape(node[1])
        _check_shape(node[2])
    elif node[0] == "not":
        _check_shape(node[1])
    elif node[0] == "cmp":
        sides = {node[2][0], node[3][0]}
        if sides != {"field", "lit"}:
            raise UnsupportedExpression(
                f"{node[1]} needs a field on one side and a value on the other")
    else:
        raise UnparseableFilter("expected a comparison")


def _evaluate(node: tuple, getters, row) -> Any:
    kind = node[0]
    if kind == "and":
        return _evaluate(node[1], getters, row) and _evaluate(node[2], getters, row)
    if kind == "or":
        return _evaluate(node[1], getters, row) or _evaluate(node[2], getters, row)
    if kind == "not":
        return not _evaluate(node[1], getters, row)
    _kind, op, left, right = node
    if left[0] == "lit":
        left, right, op = right, left, _MIRRORED[op]
    actual = getters[left[1]](row)
    if isinstance(actual, datetime) and actual.tzinfo is None:
        actual = actual.replace(tzinfo=UTC)
    wanted = _coerce(right[1], type(actual) if actual is not None else None, left[1])
    if actual is None or wanted is None:
        equal = actual is None and wanted is None
        return equal if op == "eq" else (not equal) if op == "ne" else False
    try:
        return _SQL_OPS[op](actual, wanted)
    except TypeError:
        raise UnparseableFilter(f"{left[1]} cannot be compared with {right[1]!r}") from None


# $select and paging --------------------------------------------------------------------------


def check_select(select: tuple[str, ...] | None, known: Iterable[str]) -> None:
    """400.23 for a selected name the feed does not have (`__system/x` for its members)."""
    if select is None:
        return
    names = set(known)
    for name in select:
        if name not in names and name.split("/", 1)[0] not in names:
            raise PropertyNotFound(name)


def select_row(row: dict, select: tuple[str, ...] | None) -> dict:
    """The row with only the selected keys; `__system/createdAt` keeps one member of __system."""
    if select is None:
        return row
    kept: dict = {}
    for name in select:
        head, _sep, member = name.partition("/")
        if member:
            parent = row.get(head)
            if isinstance(parent, dict) and member in parent:
                kept.setdefault(head, {})[member] = parent[member]
        elif head in row:
            kept[head] = row[head]
    return kept


def next_link(url: str, query: ODataQuery, total: int) -> str | None:
    """The next page's URL when $top cut this one short (the same query, $skip moved on)."""
    if not query.top or query.skip + query.top >= total:
        return None
    parts = urlsplit(url)
    params = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "$skip"]
    params.append(("$skip", str(query.skip + query.top)))
    return urlunsplit(parts._replace(query=urlencode(params)))
