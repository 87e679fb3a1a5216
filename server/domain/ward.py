"""Ward configuration: loading, validation, and generating the forms' ward lists.

The ward's changing lists and rule parameters (tổ dân phố with their official household
counts, streets with the tổ they cross, indicator targets, the adult age, and so on) live
in a TOML file (``forms/ward.toml``). :func:`load_ward_config` reads and validates it into
frozen dataclasses. :func:`apply_ward_lists` rewrites the ``tdp`` and ``street`` choice
lists of an XLSForm workbook from that configuration before the form is converted.

Both are pure functions: no Flask, no database, no clock. ``apply_ward_lists`` gives the
same bytes for the same input, so the converted XForm (and its hash) is stable.
"""

from __future__ import annotations

import datetime as _dt
import io
import math
import os
import re
import tomllib
import unicodedata
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "AWARD_METRICS",
    "AwardConfig",
    "ELIGIBLE_BIZ_VALUES",
    "EssentialRule",
    "IndicatorTarget",
    "Street",
    "Tdp",
    "VerificationConfig",
    "WardConfig",
    "apply_ward_lists",
    "load_ward_config",
    "parse_ward_config",
]

#: Allowed values of ``rules.eligible_biz`` (ELIGIBLE_BIZ).
ELIGIBLE_BIZ_VALUES = ("all", "registered")
#: VNeID levels that may make a member's digital-service use "essential".
_VNEID_LEVELS = ("l1", "l2")
#: Member statuses that may appear in ``rules.essential.any_of``.
_ESSENTIAL_STATUSES = ("dvc", "cashless", "digisig", "vssid", "ehealth", "bdhvs")
#: Team code of ward-level volunteers; a tổ may not use it.
_RESERVED_TDP_CODES = ("ward", "WARD")
#: Choice name of the form's own "other street" row; a configured street may not use it.
_OTHER_STREET = "other"
#: Columns of `volunteer_activity` (E6) an award score may weigh: its counts. Duplicate
#: surveys are left out on purpose: they are a data-quality figure, never a penalty (§6.6).
AWARD_METRICS = (
    "n_surveys", "n_households_surveyed", "n_new_households", "n_visits",
    "n_households_visited", "n_households_helped", "n_people_helped", "n_completions",
    "n_unique_completions", "n_partial", "n_followup", "done_vneid_l1", "done_vneid_l2",
    "done_vneid_use", "done_dvc_account", "done_dvc_procedure", "done_cashless", "done_biz_qr",
    "done_digisig", "done_vssid", "done_ehealth", "done_school_app", "done_ecommerce",
    "done_bdhvs", "done_safety", "done_other", "minutes_total", "n_followups_due",
    "n_followups_on_time", "n_verified", "n_verified_ok", "satisfaction_n", "active_days",
)

_CHOICE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")
_TARGET_ID = re.compile(r"^I[0-9]{2}[a-z]?$")
_TARGET_RULE = re.compile(r"^>=([0-9]+(?:\.[0-9]+)?)$")
_METRIC_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


# --------------------------------------------------------------------------- dataclasses


@dataclass(frozen=True)
class Tdp:
    """One tổ dân phố (residential group) and its team."""

    code: str  # choice name in the forms and team code, e.g. "tdp01"
    label_vi: str
    label_en: str
    official_households: int  # official number of households (denominator of I00)


@dataclass(frozen=True)
class Street:
    """One street of the ward, with the tổ it passes through."""

    name: str  # choice name, e.g. "st01"
    label_vi: str
    label_en: str
    tdp_list: tuple[str, ...]  # codes of the tổ the street crosses, in config order


@dataclass(frozen=True)
class IndicatorTarget:
    """Target of one indicator for the plan year's target date."""

    id: str  # indicator code, e.g. "I02"
    rule: str  # ">=N", "increase" or "" (information only); the E1 ``target_rule``
    target_pct: float | None  # N for a ">=N" rule, else None
    reference_pct: float | None  # a reference value shown beside it (not a target)
    note: str


@dataclass(frozen=True)
class EssentialRule:
    """``essential`` = VNeID level in ``vneid_levels`` and any status in ``any_of`` is yes."""

    vneid_levels: tuple[str, ...]
    any_of: tuple[str, ...]


@dataclass(frozen=True)
class VerificationConfig:
    """Monthly phone-back verification of completions."""

    share_pct: float  # percent of the completions that are checked
    min_per_volunteer: int  # but at least this many per volunteer


@dataclass(frozen=True)
class AwardConfig:
    """10 October awards."""

    cutoff: _dt.date  # AWARD_CUTOFF: end date of the year-to-date ranking
    score_weights: tuple[tuple[str, float], ...]  # (metric, weight); empty = raw figures


@dataclass(frozen=True)
class WardConfig:
    """The whole ward configuration."""

    code: str
    name_vi: str
    name_en: str
    province_vi: str
    plan_year: int
    target_date: _dt.date
    adult_min_age: int  # ADULT_MIN_AGE
    eligible_biz: str  # ELIGIBLE_BIZ: "all" or "registered"
    followup_grace_days: int  # FOLLOWUP_GRACE_DAYS
    essential: EssentialRule
    verification: VerificationConfig
    awards: AwardConfig
    pid_key_env: str  # name of the environment variable holding PID_KEY
    targets: tuple[IndicatorTarget, ...]
    tdps: tuple[Tdp, ...]
    streets: tuple[Street, ...]

    @property
    def tdp_codes(self) -> tuple[str, ...]:
        return tuple(t.code for t in self.tdps)

    def get_tdp(self, code: str) -> Tdp:
        for t in self.tdps:
            if t.code == code:
                return t
        raise KeyError(code)

    def streets_of(self, tdp_code: str) -> tuple[Street, ...]:
        return tuple(s for s in self.streets if tdp_code in s.tdp_list)

    def target(self, indicator_id: str) -> IndicatorTarget | None:
        for t in self.targets:
            if t.id == indicator_id:
                return t
        return None

    @property
    def official_households_total(self) -> int:
        return sum(t.official_households for t in self.tdps)


# --------------------------------------------------------------------------- loading


def load_ward_config(path: str | os.PathLike[str]) -> WardConfig:
    """Read and validate a ward configuration TOML file.

    Raises ``ValueError`` naming the file and the offending key when the file is not
    valid TOML or does not satisfy the rules (see :func:`parse_ward_config`).
    """
    source = os.fspath(path)
    with open(source, "rb") as fh:
        raw = fh.read()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{source}: not UTF-8 text ({exc})") from None
    return parse_ward_config(text, source=source)


def parse_ward_config(text: str, source: str = "<ward config>") -> WardConfig:
    """Parse and validate ward configuration TOML text."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{source}: invalid TOML: {exc}") from None
    return _build(_Reader(source), data)


class _Reader:
    """Typed access to TOML values with error messages that name the key."""

    def __init__(self, source: str) -> None:
        self.source = source

    def error(self, key: str, message: str) -> ValueError:
        return ValueError(f"{self.source}: {key}: {message}")

    def table(self, data: Mapping[str, Any], key: str, *, required: bool = True) -> dict:
        _, name = _split(key)
        if name not in data:
            if required:
                raise self.error(key, "missing table")
            return {}
        value = data[name]
        if not isinstance(value, dict):
            raise self.error(key, f"must be a table, got {_kind(value)}")
        return value

    def array_of_tables(self, data: Mapping[str, Any], key: str, *, required: bool) -> list:
        _, name = _split(key)
        if name not in data:
            if required:
                raise self.error(key, f"missing; add at least one [[{name}]] table")
            return []
        value = data[name]
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise self.error(key, f"must be an array of tables ([[{name}]])")
        return value

    def no_unknown(self, data: Mapping[str, Any], key: str, allowed: tuple[str, ...]) -> None:
        for name in data:
            if name not in allowed:
                where = f"{key}.{name}" if key else name
                raise self.error(where, f"unknown key (allowed here: {', '.join(sorted(allowed))})")

    def text(
        self,
        data: Mapping[str, Any],
        key: str,
        *,
        default: str | None = None,
        allow_empty: bool = False,
    ) -> str:
        _, name = _split(key)
        if name not in data:
            if default is None:
                raise self.error(key, "missing")
            return default
        value = data[name]
        if not isinstance(value, str):
            raise self.error(key, f"must be a string, got {_kind(value)}")
        value = _clean(value)
        if not value and not allow_empty:
            raise self.error(key, "must not be empty")
        return value

    def integer(
        self, data: Mapping[str, Any], key: str, *, lo: int, hi: int, default: int | None = None
    ) -> int:
        _, name = _split(key)
        if name not in data:
            if default is None:
                raise self.error(key, "missing")
            return default
        value = data[name]
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(key, f"must be an integer, got {_kind(value)}")
        if not lo <= value <= hi:
            raise self.error(key, f"must be between {lo} and {hi}, got {value}")
        return value

    def number(
        self,
        data: Mapping[str, Any],
        key: str,
        *,
        lo: float,
        hi: float,
        default: float | None = None,
        required: bool = True,
    ) -> float | None:
        _, name = _split(key)
        if name not in data:
            if default is None and required:
                raise self.error(key, "missing")
            return default
        value = data[name]
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(key, f"must be a number, got {_kind(value)}")
        value = float(value)
        if math.isnan(value) or not lo <= value <= hi:
            raise self.error(key, f"must be between {lo:g} and {hi:g}, got {value:g}")
        return value

    def date(
        self, data: Mapping[str, Any], key: str, *, default: _dt.date | None = None
    ) -> _dt.date:
        _, name = _split(key)
        if name not in data:
            if default is None:
                raise self.error(key, "missing")
            return default
        value = data[name]
        if isinstance(value, _dt.datetime) or not isinstance(value, _dt.date):
            raise self.error(
                key, f"must be a TOML date written without quotes (2026-12-31), got {_kind(value)}"
            )
        return value

    def string_list(
        self, data: Mapping[str, Any], key: str, *, default: tuple[str, ...] | None = None
    ) -> tuple[str, ...]:
        _, name = _split(key)
        if name not in data:
            if default is None:
                raise self.error(key, "missing")
            return default
        value = data[name]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.error(key, "must be an array of strings")
        items = tuple(_clean(v) for v in value)
        if not items:
            raise self.error(key, "must not be empty")
        seen: set[str] = set()
        for item in items:
            if item in seen:
                raise self.error(key, f"lists {item!r} twice")
            seen.add(item)
        return items


def _split(key: str) -> tuple[str, str]:
    path, _, name = key.rpartition(".")
    return path, name


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, _dt.datetime):
        return "a date-time"
    if isinstance(value, _dt.date):
        return "a date"
    return type(value).__name__


def _clean(value: str) -> str:
    """NFC, no-break spaces turned into spaces, trimmed, internal whitespace collapsed."""
    value = unicodedata.normalize("NFC", value).replace("\u00a0", " ")
    return " ".join(value.split())


def _build(r: _Reader, data: dict) -> WardConfig:
    r.no_unknown(
        data, "", ("ward", "rules", "verification", "awards", "secrets", "target", "tdp", "street")
    )

    # [ward]
    ward = r.table(data, "ward")
    r.no_unknown(
        ward,
        "ward",
        ("code", "name_vi", "name_en", "province_vi", "plan_year", "target_date"),
    )
    code = r.text(ward, "ward.code")
    if not _CHOICE_NAME.match(code):
        raise r.error("ward.code", f"{code!r} must be letters, digits, '_', '-' or '.'")
    name_vi = r.text(ward, "ward.name_vi")
    name_en = r.text(ward, "ward.name_en")
    province_vi = r.text(ward, "ward.province_vi", default="", allow_empty=True)
    plan_year = r.integer(ward, "ward.plan_year", lo=2000, hi=2100)
    target_date = r.date(ward, "ward.target_date", default=_dt.date(plan_year, 12, 31))
    if target_date.year != plan_year:
        raise r.error("ward.target_date", f"{target_date} is not in plan_year {plan_year}")

    # [rules]
    rules = r.table(data, "rules", required=False)
    r.no_unknown(
        rules, "rules", ("adult_min_age", "eligible_biz", "followup_grace_days", "essential")
    )
    adult_min_age = r.integer(rules, "rules.adult_min_age", lo=1, hi=120, default=15)
    eligible_biz = r.text(rules, "rules.eligible_biz", default="all")
    if eligible_biz not in ELIGIBLE_BIZ_VALUES:
        raise r.error(
            "rules.eligible_biz",
            f"must be one of {', '.join(ELIGIBLE_BIZ_VALUES)}, got {eligible_biz!r}",
        )
    followup_grace_days = r.integer(rules, "rules.followup_grace_days", lo=0, hi=365, default=3)
    ess = r.table(rules, "rules.essential", required=False)
    r.no_unknown(ess, "rules.essential", ("vneid_levels", "any_of"))
    vneid_levels = r.string_list(ess, "rules.essential.vneid_levels", default=_VNEID_LEVELS)
    for level in vneid_levels:
        if level not in _VNEID_LEVELS:
            raise r.error(
                "rules.essential.vneid_levels",
                f"unknown level {level!r} (allowed: {', '.join(_VNEID_LEVELS)})",
            )
    any_of = r.string_list(ess, "rules.essential.any_of", default=("dvc", "cashless"))
    for status in any_of:
        if status not in _ESSENTIAL_STATUSES:
            raise r.error(
                "rules.essential.any_of",
                f"unknown status {status!r} (allowed: {', '.join(_ESSENTIAL_STATUSES)})",
            )

    # [verification]
    ver = r.table(data, "verification", required=False)
    r.no_unknown(ver, "verification", ("share_pct", "min_per_volunteer"))
    share_pct = r.number(ver, "verification.share_pct", lo=0.0, hi=100.0, default=5.0)
    min_per_volunteer = r.integer(ver, "verification.min_per_volunteer", lo=0, hi=1000, default=2)

    # [awards]
    aw = r.table(data, "awards", required=False)
    r.no_unknown(aw, "awards", ("cutoff", "score_weights"))
    cutoff = r.date(aw, "awards.cutoff", default=_dt.date(plan_year, 9, 30))
    if cutoff.year != plan_year:
        raise r.error("awards.cutoff", f"{cutoff} is not in plan_year {plan_year}")
    weights_raw = r.table(aw, "awards.score_weights", required=False)
    weights: list[tuple[str, float]] = []
    for metric in weights_raw:
        key = f"awards.score_weights.{metric}"
        if not _METRIC_NAME.match(metric):
            raise r.error(key, "metric names are lower-case column names of volunteer_activity")
        if metric not in AWARD_METRICS:
            raise r.error(key, "not a count of volunteer_activity that a score may weigh "
                               f"(one of: {', '.join(AWARD_METRICS)})")
        weight = r.number(weights_raw, key, lo=-1e6, hi=1e6)
        assert weight is not None
        weights.append((metric, weight))

    # [secrets]
    sec = r.table(data, "secrets", required=False)
    r.no_unknown(sec, "secrets", ("pid_key_env",))
    pid_key_env = r.text(sec, "secrets.pid_key_env", default="PID_KEY")
    if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", pid_key_env):
        raise r.error("secrets.pid_key_env", f"{pid_key_env!r} is not an environment variable name")

    # [[target]]
    targets: list[IndicatorTarget] = []
    seen_targets: set[str] = set()
    for i, t in enumerate(r.array_of_tables(data, "target", required=False)):
        where = f"target[{i}]"
        r.no_unknown(t, where, ("id", "rule", "reference_pct", "note"))
        tid = r.text(t, f"{where}.id")
        if not _TARGET_ID.match(tid):
            raise r.error(f"{where}.id", f"{tid!r} is not an indicator code like I02 or I04a")
        if tid in seen_targets:
            raise r.error(f"{where}.id", f"duplicate indicator {tid!r}")
        seen_targets.add(tid)
        rule = r.text(t, f"{where}.rule", default="", allow_empty=True)
        target_pct: float | None = None
        if rule and rule != "increase":
            m = _TARGET_RULE.match(rule)
            if not m:
                raise r.error(
                    f"{where}.rule", f"{rule!r} must be '>=N' (N in percent), 'increase' or ''"
                )
            target_pct = float(m.group(1))
            if not 0 < target_pct <= 100:
                raise r.error(f"{where}.rule", f"target {target_pct:g} % is not in (0, 100]")
        reference_pct = r.number(t, f"{where}.reference_pct", lo=0.0, hi=100.0, required=False)
        note = r.text(t, f"{where}.note", default="", allow_empty=True)
        targets.append(IndicatorTarget(tid, rule, target_pct, reference_pct, note))

    # [[tdp]]
    tdps: list[Tdp] = []
    seen_tdp: set[str] = set()
    for i, t in enumerate(r.array_of_tables(data, "tdp", required=True)):
        where = f"tdp[{i}]"
        r.no_unknown(t, where, ("code", "label_vi", "label_en", "official_households"))
        tcode = r.text(t, f"{where}.code")
        if not _CHOICE_NAME.match(tcode):
            raise r.error(
                f"{where}.code",
                f"{tcode!r} is not a valid choice name (letters, digits, '_', '-', '.'; "
                "no spaces; not starting with a digit)",
            )
        if tcode in _RESERVED_TDP_CODES:
            raise r.error(f"{where}.code", f"{tcode!r} is reserved for ward-level members")
        if tcode in seen_tdp:
            raise r.error(f"{where}.code", f"duplicate tổ code {tcode!r}")
        seen_tdp.add(tcode)
        tdps.append(
            Tdp(
                code=tcode,
                label_vi=r.text(t, f"{where}.label_vi"),
                label_en=r.text(t, f"{where}.label_en"),
                official_households=r.integer(
                    t, f"{where}.official_households", lo=0, hi=1_000_000
                ),
            )
        )
    if not tdps:
        raise r.error("tdp", "at least one [[tdp]] is required")

    # [[street]]
    streets: list[Street] = []
    seen_streets: set[str] = set()
    for i, s in enumerate(r.array_of_tables(data, "street", required=False)):
        where = f"street[{i}]"
        r.no_unknown(s, where, ("name", "label_vi", "label_en", "tdp_list"))
        sname = r.text(s, f"{where}.name")
        if not _CHOICE_NAME.match(sname):
            raise r.error(
                f"{where}.name",
                f"{sname!r} is not a valid choice name (letters, digits, '_', '-', '.'; "
                "no spaces; not starting with a digit)",
            )
        if sname == _OTHER_STREET:
            raise r.error(
                f"{where}.name", "'other' is reserved for the form's own 'other street' choice"
            )
        if sname in seen_streets:
            raise r.error(f"{where}.name", f"duplicate street name {sname!r}")
        seen_streets.add(sname)
        tdp_list = r.string_list(s, f"{where}.tdp_list")
        for tcode in tdp_list:
            if tcode not in seen_tdp:
                raise r.error(f"{where}.tdp_list", f"unknown tổ code {tcode!r}")
        streets.append(
            Street(
                name=sname,
                label_vi=r.text(s, f"{where}.label_vi"),
                label_en=r.text(s, f"{where}.label_en"),
                tdp_list=tdp_list,
            )
        )

    return WardConfig(
        code=code,
        name_vi=name_vi,
        name_en=name_en,
        province_vi=province_vi,
        plan_year=plan_year,
        target_date=target_date,
        adult_min_age=adult_min_age,
        eligible_biz=eligible_biz,
        followup_grace_days=followup_grace_days,
        essential=EssentialRule(vneid_levels=vneid_levels, any_of=any_of),
        verification=VerificationConfig(share_pct=share_pct, min_per_volunteer=min_per_volunteer),
        awards=AwardConfig(cutoff=cutoff, score_weights=tuple(weights)),
        pid_key_env=pid_key_env,
        targets=tuple(targets),
        tdps=tuple(tdps),
        streets=tuple(streets),
    )


# --------------------------------------------------------------------------- XLSForm lists

_LANG_CODE = re.compile(r"\(([A-Za-z-]+)\)\s*$")
_FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
_CORE_XML = "docProps/core.xml"
_MODIFIED = re.compile(
    rb"<dcterms:modified\b[^>]*>[^<]*</dcterms:modified>|<dcterms:modified\b[^>]*/>"
)


def apply_ward_lists(xlsx_bytes: bytes, ward: WardConfig) -> bytes:
    """Return a copy of an XLSForm workbook whose ``tdp`` and ``street`` choices come from ``ward``.

    In the ``choices`` sheet, the rows of list ``tdp`` are replaced by one row per configured
    tổ, and the rows of list ``street`` by one row per configured street (``name``, both
    labels, ``tdp_list`` space-separated, ``label_vi``) followed by the workbook's own
    ``other`` street row(s). The generated rows take the place of the list's first row. A
    list that the workbook does not have is not added. Every other row, column and sheet is
    kept as it is. Label columns are matched by language code: ``label::… (vi)`` (or a
    plain ``label``) gets the Vietnamese label, ``label::… (en)`` the English one.

    The output is deterministic: the same input gives the same bytes.
    """
    from openpyxl import load_workbook  # local: keep importing this module cheap

    try:
        wb = load_workbook(io.BytesIO(xlsx_bytes))
    except Exception as exc:  # openpyxl raises several unrelated types
        raise ValueError(f"not a readable .xlsx workbook: {exc}") from None

    if "choices" not in wb.sheetnames:
        return xlsx_bytes  # a form without choice lists has nothing to generate
    ws = _sheet(wb, "choices")
    ncols = ws.max_column
    header = [ws.cell(1, c).value for c in range(1, ncols + 1)]
    cols = {str(h).strip(): i for i, h in enumerate(header) if isinstance(h, str) and h.strip()}
    for required in ("list_name", "name"):
        if required not in cols:
            raise ValueError(f"choices sheet: missing column {required!r}")
    label_cols = _label_columns(header)

    rows = [[ws.cell(r, c).value for c in range(1, ncols + 1)] for r in range(2, ws.max_row + 1)]

    def list_of(row: list) -> str:
        value = row[cols["list_name"]]
        return value.strip() if isinstance(value, str) else ""

    present = {list_of(row) for row in rows}
    if not present & {"tdp", "street"}:
        return xlsx_bytes  # not a ward form: publish it exactly as given
    if "street" in present:
        for required in ("tdp_list", "label_vi"):
            if required not in cols:
                raise ValueError(
                    f"choices sheet: list 'street' needs a {required!r} column for the ward streets"
                )

    def blank() -> list:
        return [None] * ncols

    def tdp_rows() -> list[list]:
        out = []
        for t in ward.tdps:
            row = blank()
            row[cols["list_name"]] = "tdp"
            row[cols["name"]] = t.code
            for idx, lang in label_cols:
                row[idx] = t.label_vi if lang == "vi" else t.label_en
            out.append(row)
        return out

    other_streets = [
        row
        for row in rows
        if list_of(row) == "street" and str(row[cols["name"]] or "").strip() == _OTHER_STREET
    ]

    def street_rows() -> list[list]:
        out = []
        for s in ward.streets:
            row = blank()
            row[cols["list_name"]] = "street"
            row[cols["name"]] = s.name
            for idx, lang in label_cols:
                row[idx] = s.label_vi if lang == "vi" else s.label_en
            row[cols["tdp_list"]] = " ".join(s.tdp_list)
            row[cols["label_vi"]] = s.label_vi
            out.append(row)
        return out + [list(row) for row in other_streets]

    generators = {"tdp": tdp_rows, "street": street_rows}
    new_rows: list[list] = []
    done: set[str] = set()
    for row in rows:
        lst = list_of(row)
        if lst in generators:
            if lst not in done:
                new_rows.extend(generators[lst]())
                done.add(lst)
            continue
        new_rows.append(row)

    if ws.max_row > 1:
        ws.delete_rows(2, ws.max_row - 1)
    for r, row in enumerate(new_rows, start=2):
        for c, value in enumerate(row, start=1):
            if value is not None:
                ws.cell(r, c).value = value

    out = io.BytesIO()
    wb.save(out)
    return _normalise_zip(out.getvalue(), _modified_of(xlsx_bytes))


def _sheet(wb: Any, name: str) -> Any:
    for title in wb.sheetnames:
        if title.strip().lower() == name:
            return wb[title]
    raise ValueError(f"workbook has no {name!r} sheet")


def _label_columns(header: list) -> list[tuple[int, str]]:
    """(column index, 'vi' | 'en') for every choice label column."""
    found = []
    for i, h in enumerate(header):
        if not isinstance(h, str):
            continue
        h = h.strip()
        if h == "label":
            found.append((i, "vi"))
        elif h.startswith("label::"):
            lang_name = h[len("label::") :]
            m = _LANG_CODE.search(lang_name)
            code = m.group(1).lower() if m else lang_name.strip().lower()
            if code in ("vi", "tiếng việt", "vietnamese"):
                found.append((i, "vi"))
            elif code in ("en", "english"):
                found.append((i, "en"))
            else:
                raise ValueError(
                    f"choices sheet: column {h!r}: the ward config has labels only in "
                    "Vietnamese (vi) and English (en)"
                )
    if not found:
        raise ValueError("choices sheet: no label column")
    return found


def _modified_of(xlsx_bytes: bytes) -> bytes | None:
    """The input's ``dcterms:modified`` element, reused so the output ignores the clock."""
    try:
        with zipfile.ZipFile(io.BytesIO(xlsx_bytes)) as zf:
            core = zf.read(_CORE_XML)
    except (KeyError, zipfile.BadZipFile):
        return None
    m = _MODIFIED.search(core)
    return m.group(0) if m else None


def _normalise_zip(data: bytes, modified: bytes | None) -> bytes:
    """Re-pack the workbook with fixed timestamps so equal content gives equal bytes."""
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(data)) as src,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst,
    ):
        for info in src.infolist():
            payload = src.read(info.filename)
            if info.filename == _CORE_XML:
                payload = _MODIFIED.sub(lambda _m: modified or b"", payload, count=1)
            zi = zipfile.ZipInfo(info.filename, date_time=_FIXED_ZIP_TIME)
            zi.compress_type = zipfile.ZIP_DEFLATED
            zi.external_attr = 0o600 << 16
            dst.writestr(zi, payload)
    return out.getvalue()
