"""Raw submissions in ODK Central's CSV layout, so tools written for Central read ours unchanged.

One root table named after the form id, one table per repeat (``<formId>-<repeat>``, ``~1``,
``~2`` when names repeat), and a zip with every table plus ``media/``. Columns come from the
form's current version; values come from ``SubmissionVersion.fields`` (parsed once at ingest,
shape in ``server.domain.instance``), never from XML. Rows stream from the database in batches:
the versions' ids are sorted first (8 bytes each), then the rows are read by primary key a batch
at a time, so the database never sorts the stored documents and memory stays flat. Each row's
document is read as JSON text and parsed once (orjson), and the cells come from precomputed
getters: this is the export's hot loop.

Where Central is silent or we differ: ``KEY`` (and the repeat keys) is the submission's first
instanceID, as Central's logical submission id, while ``meta-instanceID`` holds the current
version's; colliding media names get ``~2``, ``~3`` before the extension.
"""

from __future__ import annotations

import json
import re
import zipfile
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import partial
from operator import itemgetter
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from sqlalchemy import (
    ARRAY,
    Integer,
    Select,
    Text,
    any_,
    bindparam,
    cast,
    false,
    func,
    or_,
    select,
    true,
)
from sqlalchemy.orm import Session

from server.db.models import Attachment, Form, FormVersion, Submission, SubmissionVersion, User
from server.domain.forms import schema_of
from server.domain.masking import PHONE_FIELDS, mask_phone
from server.domain.review import CENTRAL_WORDS, REVIEW_STATES
from server.domain.xform_schema import Field, FormSchema
from server.exports.tables import Table, csv_chunks
from server.storage import BlobStore, FileBlobStore

__all__ = ["RawFilters", "REVIEW_STATES", "raw_tables", "raw_count", "write_zip"]

_BATCH = 500  # rows per database round trip
# Central's words for our review states; "edited" is derived (edits, no review yet).
_ROOT_META = ["KEY", "SubmitterID", "SubmitterName", "AttachmentsPresent",
              "AttachmentsExpected", "Status", "ReviewState", "DeviceID", "Edits", "FormVersion"]
_GEO_PARTS = ("Latitude", "Longitude", "Altitude", "Accuracy")
SV = SubmissionVersion


@dataclass(frozen=True)
class RawFilters:
    """Which submissions to export; every filter given must match (empty/None = any).

    ``period`` is (first day, last day), both inclusive and either may be None, cut in the
    server's time zone and applied to the submission's first receipt. ``tdp`` is the value of
    the root field named ``tdp`` (in whatever group). ``submitter_id`` is a user id.
    """

    period: tuple[date | None, date | None] | None = None
    review_states: tuple[str, ...] = ()
    tdp: str | None = None
    submitter_id: int | None = None


def filter_choices(session: Session, project_id: int, tdp_codes, *, review_state: str | None,
                   tdp: str | None, submitter: str | None) -> dict:
    """RawFilters' arguments beside the period, from what a person typed or picked: a review
    state, a tổ code and a username of the project. A value that names nothing is a
    ValueError, the same for the command line and the web page."""
    from server.db.models import User

    if review_state and review_state not in REVIEW_STATES:
        raise ValueError(f"unknown review state {review_state!r}")
    if tdp and tdp_codes is not None and tdp not in tdp_codes:
        raise ValueError(f"unknown tổ {tdp!r}")
    submitter_id = None
    if submitter:
        submitter_id = session.scalar(select(User.id).where(
            User.username == submitter, User.project_id == project_id))
        if submitter_id is None:
            raise ValueError(f"no user {submitter!r} in project {project_id}")
    return {"review_states": (review_state,) if review_state else (), "tdp": tdp or None,
            "submitter_id": submitter_id}


@dataclass(frozen=True)
class _Column:
    """A leaf field's cells in a table: one, four (geopoint) or 1 + split values."""

    field: Field
    header: str
    split: tuple[str, ...] | None  # select_multiple values seen, when splitting
    mask: bool = False  # a phone number the reader may not see in full (domain/masking.py)

    def headers(self) -> list[str]:
        if self.field.type == "geopoint":
            return [f"{self.header}-{part}" for part in _GEO_PARTS]
        return [self.header, *(f"{self.header}/{v}" for v in self.split or ())]

    def cells(self, value: str | None) -> list[Any]:
        value = value or ""
        if self.mask:
            return [mask_phone(value)]
        if self.field.type == "geopoint":
            return (value.split() + ["", "", "", ""])[:4]
        if self.split is None:
            return [value]
        chosen = set(value.split())
        return [value, *(1 if v in chosen else 0 for v in self.split)]

    @property
    def plain(self) -> bool:
        """One cell holding the stored text as it is."""
        return self.field.type != "geopoint" and self.split is None and not self.mask


class _Cells:
    """A table's field cells from a stored values dict, with the work done once per table.

    Plain columns are read by one ``itemgetter`` (over the values laid on defaults when the
    row's form version lacks a field, which then reads ""); geopoint and split select_multiple
    columns are then expanded in place, right to left so that the indexes stay valid.
    """

    def __init__(self, columns: list[_Column]):
        paths = [c.field.table_path for c in columns]
        self.defaults = dict.fromkeys(paths, "")
        self.get = (itemgetter(*paths) if len(paths) > 1
                    else (lambda d: (d[paths[0]],)) if paths else (lambda d: ()))
        self.special = [(i, c) for i, c in enumerate(columns) if not c.plain][::-1]
        self.width = sum(len(c.headers()) for c in columns)

    def __call__(self, values: dict | None) -> list[Any]:
        try:
            cells = list(self.get(values or self.defaults))
        except KeyError:  # a row of an older form version: the fields it lacks read ""
            cells = list(self.get({**self.defaults, **values}))
        for i, col in self.special:
            cells[i:i + 1] = col.cells(cells[i])
        return cells


def raw_tables(
    session: Session,
    form: Form,
    *,
    filters: RawFilters = RawFilters(),  # noqa: B008 (frozen, so sharing it is harmless)
    split_select_multiples: bool = False,
    group_paths: bool = True,
    timezone: str = "Asia/Ho_Chi_Minh",
    mask_phones: bool = False,
) -> list[Table]:
    """The root table, then one table per repeat in depth-first order; rows are lazy.

    Each table's rows query ``session`` when written, so keep it open until then. With
    ``split_select_multiples`` the values seen in the filtered rows are read first (one cheap
    query over the stored fields), because they decide the columns.
    """
    schema = current_schema(session, form)
    where = conditions(session, form, filters, timezone)
    leaves = [f for f in schema.fields if f.kind == "field"]
    seen = _seen_values(session, form, leaves, where) if split_select_multiples else None

    def columns(fields: list[Field]) -> list[_Column]:
        return [
            _Column(f, f.table_path.replace("/", "-") if group_paths else f.name,
                    (seen.get(f.path, ()) if seen is not None and f.select_multiple else None),
                    mask_phones and f.name in PHONE_FIELDS)
            for f in fields
        ]

    root_cols = columns([f for f in leaves if f.repeat is None])
    tables = [Table(_sanitize(form.xml_form_id),
                    ["SubmissionDate", *_flat(c.headers() for c in root_cols), *_ROOT_META],
                    partial(_root_rows, session, form.id, where, root_cols))]
    repeats = schema.repeats()
    names = [r.name for r in repeats]
    counts: dict[str, int] = {}
    for repeat in repeats:
        name = f"{form.xml_form_id}-{repeat.name}"
        if names.count(repeat.name) > 1:
            counts[repeat.name] = counts.get(repeat.name, 0) + 1
            name += f"~{counts[repeat.name]}"
        cols = columns([f for f in leaves if f.repeat == repeat.path])
        tables.append(Table(_sanitize(name),
                            [*_flat(c.headers() for c in cols), "PARENT_KEY", "KEY"],
                            partial(_repeat_rows, session, form.id, where, repeat.rel_path, cols)))
    return tables


def raw_count(session: Session, form: Form, *, filters: RawFilters = RawFilters(),  # noqa: B008
              timezone: str = "Asia/Ho_Chi_Minh") -> int:
    """Number of root rows the same filters give (for a progress bar)."""
    where = conditions(session, form, filters, timezone)
    stmt = current_versions(select(func.count()), form.id, where)
    return session.scalar(stmt) or 0


def write_zip(
    session: Session,
    store: BlobStore,
    form: Form,
    out_path: Path,
    *,
    filters: RawFilters = RawFilters(),  # noqa: B008
    split_select_multiples: bool = False,
    group_paths: bool = True,
    bom: bool = True,
    timezone: str = "Asia/Ho_Chi_Minh",
    progress: Callable[[int], None] | None = None,
    mask_phones: bool = False,
) -> Path:
    """Central's ``submissions.csv.zip``: every table as CSV, then ``media/<name>``.

    Written to a ``.part`` file and renamed, so a failed export never leaves a zip that
    looks complete. ``progress`` gets the number of CSV lines written, chunk by chunk.
    """
    out_path = Path(out_path)
    tables = raw_tables(session, form, filters=filters, timezone=timezone,
                        split_select_multiples=split_select_multiples, group_paths=group_paths,
                        mask_phones=mask_phones)
    part = out_path.with_name(out_path.name + ".part")
    try:
        with zipfile.ZipFile(part, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for table in tables:
                with zf.open(f"{table.name}.csv", "w") as fh:
                    for chunk in csv_chunks(table, bom=bom):
                        fh.write(chunk.encode("utf-8"))
                        if progress:
                            progress(chunk.count("\r\n"))
            where = conditions(session, form, filters, timezone)
            for name, sha256 in _media(session, form.id, where):
                if isinstance(store, FileBlobStore):
                    zf.write(store.path(sha256), f"media/{name}")
                else:
                    zf.writestr(f"media/{name}", store.get(session, sha256))
        part.replace(out_path)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    return out_path


# --- queries --------------------------------------------------------------------------------


def current_schema(session: Session, form: Form) -> FormSchema:
    version = session.get(FormVersion, form.current_version_id)
    if version is None:
        raise ValueError(f"form {form.xml_form_id!r} has no published version")
    return schema_of(version.xml)


def conditions(session: Session, form: Form, filters: RawFilters, timezone: str) -> list:
    """WHERE clauses on Submission and its current SubmissionVersion for the filters."""
    where = []
    if filters.period is not None:
        zone = ZoneInfo(timezone)
        start, end = filters.period
        if start is not None:
            where.append(Submission.created_at >= datetime.combine(start, time.min, zone))
        if end is not None:
            after = datetime.combine(end + timedelta(days=1), time.min, zone)
            where.append(Submission.created_at < after)
    if filters.review_states:
        unknown = set(filters.review_states) - set(REVIEW_STATES)
        if unknown:
            raise ValueError(f"unknown review state(s): {', '.join(sorted(unknown))}")
        where.append(Submission.review_state.in_(filters.review_states))
    if filters.tdp is not None:
        # The tdp field may sit in another group in an older version: look at every version.
        xmls = session.scalars(select(FormVersion.xml).where(FormVersion.form_id == form.id))
        paths = sorted({f.rel_path for xml in xmls for f in schema_of(xml).fields
                        if f.kind == "field" and f.repeat is None and f.name == "tdp"})
        where.append(or_(false(), *(SV.fields[("root", p)].as_string() == filters.tdp
                                    for p in paths)))
    if filters.submitter_id is not None:
        where.append(Submission.submitter_id == filters.submitter_id)
    return where


def current_versions(stmt: Select, form_id: int, where: list) -> Select:
    """Current versions of the form's filtered submissions.

    Driven from the (form_id, current) index with the submission joined by primary key: with
    no statistics yet (freshly loaded tables) PostgreSQL otherwise picked quadratic plans.
    """
    return (stmt.select_from(SV)
            .join(Submission, Submission.id == SV.submission_id)
            .where(SV.form_id == form_id, SV.current == true(), *where))


def _stream(session: Session, stmt: Select) -> Iterator[Any]:
    """Rows batch by batch (server-side cursor on PostgreSQL): never all of them at once."""
    result = session.execute(stmt.execution_options(yield_per=_BATCH))
    try:
        for batch in result.partitions():
            yield from batch
    finally:
        result.close()


def in_submission_order(session: Session, form_id: int, where: list, stmt: Select, *,
                        newest_first: bool = False, skip: int = 0,
                        top: int | None = None) -> Iterator[Any]:
    """The rows of ``stmt`` (first column ``SV.id``, no WHERE) for the filtered current
    versions, in submission order (or newest first, as Central's OData feed), read ``_BATCH``
    at a time; ``skip`` and ``top`` page through that order.

    Ordering the wide rows themselves would make the database sort every stored document
    (SQLite spills them to temporary files, and nothing streams until the sort is done), so
    only the ids are sorted; each batch is then read by primary key and put back in order.
    A version found by the first query is exported even if an edit replaced it meanwhile.
    """
    conn = session.connection()  # Core rows: the ORM's per-row work is not needed here
    if conn.dialect.name == "postgresql":  # one array parameter: psycopg re-parses long queries
        by_ids = stmt.where(SV.id == any_(bindparam("ids", type_=ARRAY(Integer))))
    else:
        by_ids = stmt.where(SV.id.in_(bindparam("ids", expanding=True)))
    order = ((Submission.created_at.desc(), Submission.id.desc()) if newest_first
             else (SV.submission_id,))
    ids = array("q", conn.execute(
        current_versions(select(SV.id), form_id, where).order_by(*order)
        .offset(skip or None).limit(top)
        .execution_options(yield_per=10 * _BATCH)).scalars())
    for start in range(0, len(ids), _BATCH):
        chunk = ids[start:start + _BATCH]
        result = conn.execute(by_ids, {"ids": chunk.tolist()})
        try:
            by_id = {row[0]: row for part in result.partitions(_BATCH) for row in part}
        finally:
            result.close()
        for vid in chunk:
            row = by_id.get(vid)
            if row is not None:  # gone meanwhile (erased)
                yield row


def load_json(text: str | None) -> Any:
    """A stored JSON document; orjson is several times faster than json on these."""
    if text is None:
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:  # e.g. an escaped lone surrogate, which json accepts
        return json.loads(text)


def _seen_values(session: Session, form: Form, leaves: list[Field],
                 where: list) -> dict[str, tuple[str, ...]]:
    """Distinct select_multiple values in the filtered, readable rows, sorted (as Central)."""
    seen: dict[str, set[str]] = {f.path: set() for f in leaves if f.select_multiple}
    root = [f for f in leaves if f.select_multiple and f.repeat is None]
    readable = [*where, SV.encrypted == false()]
    if root:
        values = select(*(SV.fields[("root", f.rel_path)].as_string() for f in root))
        stmt = current_versions(values.distinct(), form.id, readable)
        for row in _stream(session, stmt):
            for f, value in zip(root, row, strict=True):
                seen[f.path].update((value or "").split())
    by_repeat: dict[str, list[Field]] = {}
    for f in leaves:
        if f.select_multiple and f.repeat is not None:
            by_repeat.setdefault(f.repeat, []).append(f)
    if by_repeat:
        rels = [r.split("/", 2)[2] for r in by_repeat]
        stmt = current_versions(select(*(SV.fields[("repeats", rel)] for rel in rels)),
                                form.id, readable)
        for row in _stream(session, stmt):
            for fields, items in zip(by_repeat.values(), row, strict=True):
                for item in items or ():
                    values = item.get("values") or {}
                    for f in fields:
                        seen[f.path].update((values.get(f.table_path) or "").split())
    return {path: tuple(sorted(values)) for path, values in seen.items()}


def edit_counts(session: Session, form_id: int) -> dict[int, int]:
    """Edits per submission id, for the submissions that have any."""
    # Only edited submissions have non-current versions, so this dict stays small.
    return dict(session.execute(
        select(SV.submission_id, func.count()).where(SV.form_id == form_id, SV.current == false())
        .group_by(SV.submission_id)).all())


def root_statement(*extra) -> Select:
    """What a root row needs, for ``in_submission_order``: SV.id, receipt time, key,
    submitter id and name, files present and expected, encrypted, review state, device id,
    submission id, form version, the root values as JSON text, then ``extra`` columns."""
    files = select(func.count()).where(Attachment.submission_version_id == SV.id)
    return (select(SV.id, Submission.created_at, Submission.instance_id, Submission.submitter_id,
                   User.display_name,
                   files.where(Attachment.blob_sha256.is_not(None)).scalar_subquery(),
                   files.scalar_subquery(), SV.encrypted, Submission.review_state,
                   Submission.device_id, SV.submission_id, FormVersion.version,
                   cast(SV.fields["root"], Text),  # JSON text: parsed once, by load_json
                   *extra)
            .select_from(SV)
            .join(Submission, Submission.id == SV.submission_id)
            .join(FormVersion, FormVersion.id == SV.form_version_id)
            .outerjoin(User, User.id == Submission.submitter_id))


def _root_rows(session: Session, form_id: int, where: list,
               columns: list[_Column]) -> Iterator[list[Any]]:
    edits = edit_counts(session, form_id)
    cells_of = _Cells(columns)
    blank = [""] * cells_of.width
    # Every cell is text, so that the CSV writer can take its fast path (tables.csv_chunks).
    for (_, created, key, submitter, name, present, expected, encrypted, review, device, sid,
         version, root) in in_submission_order(session, form_id, where, root_statement()):
        n = edits.get(sid, 0)
        word = CENTRAL_WORDS.get(review, review) or ""  # Central's word; "received" is blank
        state = "edited" if review == "received" and n else word
        yield [_iso(created), *(blank if encrypted else cells_of(load_json(root))),
               key, "" if submitter is None else str(submitter), name or "",
               str(present or 0), str(expected or 0), "not decrypted" if encrypted else "",
               state, device or "", str(n), version]


def _repeat_rows(session: Session, form_id: int, where: list, rel_path: str,
                 columns: list[_Column]) -> Iterator[list[Any]]:
    stmt = (select(SV.id, Submission.instance_id, SV.instance_id,
                   cast(SV.fields[("repeats", rel_path)], Text))
            .select_from(SV).join(Submission, Submission.id == SV.submission_id))
    cells_of = _Cells(columns)
    for _, key, version_key, items in in_submission_order(
            session, form_id, [*where, SV.encrypted == false()], stmt):
        for item in load_json(items) or ():
            yield [*cells_of(item.get("values")), logical_key(item["parent_key"], version_key, key),
                   logical_key(item["key"], version_key, key)]


def logical_key(stored: str, version_key: str, key: str) -> str:
    """Fields were keyed by the version's instanceID at ingest; the export uses the first."""
    if stored == version_key or stored.startswith(version_key + "/"):
        return key + stored[len(version_key):]
    return stored


def _media(session: Session, form_id: int, where: list) -> Iterator[tuple[str, str]]:
    """(zip name, sha256) of every received attachment, flat; colliding names numbered."""
    stmt = (current_versions(select(Attachment.name, Attachment.blob_sha256), form_id, where)
            .join(Attachment, Attachment.submission_version_id == SV.id)
            .where(Attachment.blob_sha256.is_not(None))
            .order_by(SV.submission_id, Attachment.name))
    used: dict[str, str] = {}
    for raw_name, sha256 in _stream(session, stmt):
        name = _sanitize(raw_name) or "file"
        stem, dot, ext = name.rpartition(".")
        if not dot or not stem:
            stem, ext = name, ""
        candidate, n = name, 1
        while candidate in used and used[candidate] != sha256:
            n += 1
            candidate = f"{stem}~{n}.{ext}" if ext else f"{stem}~{n}"
        if candidate not in used:  # the same name with the same bytes is one file
            used[candidate] = sha256
            yield candidate, sha256


# --- small helpers --------------------------------------------------------------------------

_ILLEGAL = re.compile(r'[/?<>\\:*|"\x00-\x1f\x80-\x9f]')
_WINDOWS_RESERVED = re.compile(r"^(con|prn|aux|nul|com\d|lpt\d)(\..*)?$", re.I)


def _sanitize(name: str) -> str:
    """A safe file name, as Central's sanitize-filename makes it (no path, no device name)."""
    name = _ILLEGAL.sub("", name)
    if re.fullmatch(r"\.+", name) or _WINDOWS_RESERVED.match(name):
        return ""
    name = re.sub(r"[. ]+$", "", name)
    return name.encode("utf-8")[:255].decode("utf-8", "ignore")


def _iso(moment: datetime) -> str:
    """Central's ``toISOString()``: UTC, milliseconds, ``Z``."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _flat(lists: Iterable[Sequence[str]]) -> list[str]:
    return [item for sub in lists for item in sub]
