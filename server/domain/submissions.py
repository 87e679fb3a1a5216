"""Ingest: idempotent by instanceID, edits by deprecatedID, attachments upserted by name.

Central's algorithm (openrosa.md §4.7–4.8), with a keyed digest of the bytes as received
deciding "the same XML". The caller commits; nothing here is acknowledged before that.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import posixpath
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime

from lxml import etree
from sqlalchemy import and_, bindparam, insert, select
from sqlalchemy.orm import Session

from server.db.models import (
    Attachment,
    Form,
    FormVersion,
    Submission,
    SubmissionVersion,
    utcnow,
)
from server.domain import entities, households, matching
from server.domain import forms as forms_domain
from server.domain.dedupe import DEFAULT_CONFIG, DedupeConfig
from server.domain.instance import (
    Envelope,
    blank_identity_number_parsed,
    envelope_of,
    parse_fields,
    referenced_attachments,
)
from server.domain.instance import (
    InvalidSubmission as InstanceInvalid,
)
from server.domain.xform_schema import FormSchema
from server.errors import (
    DeprecatedNotFound,
    EditConflict,
    FormClosed,
    FormNotFound,
    FormVersionNotFound,
    InvalidSubmission,
    MalformedXml,
    XmlConflict,
)
from server.storage import BlobStore, StoredBlob
from server.xml import XMLRejected, parse_xml

log = logging.getLogger(__name__)

# Where the household survey keeps the 12-digit identity number (domain §3.1).
IDENTITY_FIELD = ("g_head", "head_id")
PID_PATTERN = re.compile(r"^0\d{2}[0-3]\d{8}$")


@dataclass(frozen=True)
class UploadedFile:
    name: str
    data: bytes
    content_type: str | None = None


@dataclass(frozen=True)
class Uploader:
    user_id: int | None
    device_id: str | None
    user_agent: str | None


@dataclass(frozen=True)
class IngestResult:
    submission_id: int
    version_id: int
    created: bool  # False: a resend that only added or replaced attachments
    missing_attachments: tuple[str, ...]


def attachment_name(raw: str) -> str:
    """Reduce a client's file name to a safe base name (no directories, no traversal)."""
    name = posixpath.basename(raw.replace("\\", "/")).strip()
    if name in ("", ".", "..") or "\x00" in name:
        return ""
    return name[:255]


def xml_digest(secret: str, raw: bytes) -> str:
    return hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()


def pid_hmac(pid_key: str, digits: str) -> str:
    return hmac.new(pid_key.encode(), f"VN-PID:{digits}".encode(), hashlib.sha256).hexdigest()


@dataclass
class Prepared:
    """What one upload says, worked out once and before any database access: the XML parsed a
    single time, its envelope, the bytes to store (identity number blanked) and their tree."""

    raw_xml: bytes
    root: etree._Element
    envelope: Envelope
    instance_id: str
    digest: str
    stored_xml: bytes
    stored_root: etree._Element
    pid_hmac: str | None
    pid_last4: str | None
    files: dict[str, UploadedFile]
    _by_schema: dict = field(default_factory=dict)

    def read(self, schema: FormSchema) -> tuple[dict | None, set[str]]:
        """(fields, referenced attachment names) under a form version's schema; computed once
        per schema (the request works them out before the write, the write reuses them)."""
        done = self._by_schema.get(id(schema))
        if done is None or done[0] is not schema:
            fields = (None if self.envelope.encrypted
                      else parse_fields(schema, self.stored_root, self.instance_id))
            expected = {n[:255] for n in referenced_attachments(schema, self.root, self.envelope)}
            done = self._by_schema[id(schema)] = (schema, fields, expected)  # [:255]: column size
        return done[1], done[2]


def prepare(raw_xml: bytes, files: list[UploadedFile], *, secret: str, pid_key: str) -> Prepared:
    """Parse and check an upload; raises MalformedXml or InvalidSubmission (400)."""
    try:
        root = parse_xml(raw_xml)
        envelope = envelope_of(root)
    except XMLRejected as exc:
        raise MalformedXml(str(exc)) from exc
    except InstanceInvalid as exc:
        raise InvalidSubmission(str(exc)) from exc
    instance_id = envelope.instance_id
    for value in (instance_id, envelope.deprecated_id):
        if value and len(value) > 255:
            raise InvalidSubmission("meta/instanceID and meta/deprecatedID are at most "
                                    "255 characters")
    if not instance_id:
        if envelope.encrypted:
            raise InvalidSubmission("an encrypted submission must carry meta/instanceID")
        instance_id = f"uuid:{uuid.uuid4()}"  # as Central does for forms without one
    stored_xml, stored_root, pid_digits = raw_xml, root, None
    if not envelope.encrypted:  # blank the identity number before the bytes go anywhere
        stored_xml, digits, stored_root = blank_identity_number_parsed(raw_xml, root,
                                                                       IDENTITY_FIELD)
        pid_digits = digits or None
    valid_pid = bool(pid_digits and PID_PATTERN.match(pid_digits))
    return Prepared(
        raw_xml=raw_xml, root=root, envelope=envelope, instance_id=instance_id,
        digest=xml_digest(secret, raw_xml), stored_xml=stored_xml, stored_root=stored_root,
        pid_hmac=pid_hmac(pid_key, pid_digits) if valid_pid else None,
        pid_last4=pid_digits[-4:] if valid_pid else None,
        files={f.name: f for f in files if f.name})


# The form and version a submission names, without their XForm bytes (one indexed query).
_FORM_VERSION = (
    select(Form.id, Form.state, FormVersion.id, FormVersion.md5)
    .outerjoin(FormVersion, and_(FormVersion.form_id == Form.id,
                                 FormVersion.version == bindparam("version")))
    .where(Form.project_id == bindparam("project_id"), Form.xml_form_id == bindparam("form_id"))
)
_VERSION_XML = select(FormVersion.xml).where(FormVersion.id == bindparam("id"))
_INSERT_SUBMISSION = insert(Submission.__table__)
_VERSION_COLUMNS = tuple(c.key for c in SubmissionVersion.__table__.columns if c.key != "id")
_INSERT_VERSION = insert(SubmissionVersion.__table__)
_INSERT_ATTACHMENTS = insert(Attachment.__table__)
_BY_INSTANCE = select(SubmissionVersion).where(
    SubmissionVersion.form_id == bindparam("form_id"),
    SubmissionVersion.instance_id == bindparam("instance_id"))
# A published XForm never changes, so its schema is keyed by its md5 (valid in any database).
_SCHEMAS: dict[str, FormSchema] = {}


def _form_version(session: Session, project_id: int, envelope: Envelope):
    return session.execute(_FORM_VERSION, {
        "project_id": project_id, "form_id": envelope.form_id,
        "version": envelope.version or ""}).first()


def form_schema(session: Session, form_version_id: int, md5: str) -> FormSchema:
    """The schema of a published form version (its XForm is read only on first use)."""
    schema = _SCHEMAS.get(md5)
    if schema is None:
        schema = forms_domain.schema_of(session.scalar(_VERSION_XML, {"id": form_version_id}))
        if len(_SCHEMAS) >= 128:
            _SCHEMAS.clear()
        _SCHEMAS[md5] = schema
    return schema


def stage_files(session: Session, store: BlobStore, project_id: int,
                prepared: Prepared) -> dict[str, StoredBlob]:
    """Before the write transaction: read the submission under its form's schema and write the
    referenced files it carries (fsynced), so the transaction only records them. Anything
    wrong is left for `ingest_prepared` to refuse, inside the transaction."""
    if prepared.envelope.encrypted and not prepared.files:
        return {}
    row = _form_version(session, project_id, prepared.envelope)
    if row is None or row[1] == "closed" or row[2] is None:
        return {}
    _, expected = prepared.read(form_schema(session, row[2], row[3]))
    return {name: store.write(prepared.files[name].data)
            for name in sorted(expected) if name in prepared.files}


def ingest(
    session: Session,
    store: BlobStore,
    *,
    project_id: int,
    raw_xml: bytes,
    files: list[UploadedFile],
    uploader: Uploader,
    secret: str,
    pid_key: str,
    timezone: str = "Asia/Ho_Chi_Minh",
    matcher: DedupeConfig | None = None,
    match: bool = True,
    now: datetime | None = None,
) -> IngestResult:
    """Store one submission (see module docstring). `match=False` records household snapshots
    without matching them, for bulk loads that end with a full `dedupe` re-run."""
    return ingest_prepared(session, store, prepare(raw_xml, files, secret=secret, pid_key=pid_key),
                           project_id=project_id, uploader=uploader, timezone=timezone,
                           matcher=matcher, match=match, now=now)


def ingest_prepared(
    session: Session,
    store: BlobStore,
    prepared: Prepared,
    *,
    project_id: int,
    uploader: Uploader,
    timezone: str = "Asia/Ho_Chi_Minh",
    matcher: DedupeConfig | None = None,
    match: bool = True,
    now: datetime | None = None,
    written: dict[str, StoredBlob] | None = None,
) -> IngestResult:
    """`ingest` of an upload already `prepare`d (and its files perhaps `stage_files`d)."""
    now = now or utcnow()
    envelope = prepared.envelope
    row = _form_version(session, project_id, envelope)
    if row is None:
        raise FormNotFound(f"form id {envelope.form_id!r}")
    form_id, state, form_version_id, md5 = row
    if state == "closed":
        raise FormClosed(envelope.form_id)
    if form_version_id is None:
        raise FormVersionNotFound(f"{envelope.form_id} version {envelope.version!r}")

    instance_id = prepared.instance_id
    written = written or {}
    current = _version_by_instance(session, form_id, instance_id)
    if current is not None:
        if current.xml_digest != prepared.digest:
            raise XmlConflict(instance_id)
        if not current.current and not envelope.deprecated_id:
            raise XmlConflict(f"{instance_id} was edited since")
        _upsert_attachments(session, store, current, prepared.files, written, now)
        return _result(current, created=False)

    if envelope.deprecated_id:
        previous = _version_by_instance(session, form_id, envelope.deprecated_id)
        if previous is None:
            raise DeprecatedNotFound(envelope.deprecated_id)
        if not previous.current:
            raise EditConflict(envelope.deprecated_id)
        previous.current = False
        submission_id = previous.submission_id
    else:
        previous = None
        submission_id = session.execute(_INSERT_SUBMISSION, {
            "form_id": form_id, "instance_id": instance_id, "submitter_id": uploader.user_id,
            "device_id": uploader.device_id, "review_state": "received", "created_at": now,
        }).inserted_primary_key[0]  # the unique (form_id, instance_id) decides a race here

    schema = form_schema(session, form_version_id, md5)
    fields, expected = prepared.read(schema)
    # Plain inserts: nothing here needs ORM objects of the new rows, which only later queries
    # read back. `version` is a detached copy of the stored row for the steps below.
    version = SubmissionVersion(
        submission_id=submission_id, form_id=form_id, form_version_id=form_version_id,
        instance_id=instance_id, deprecated_id=envelope.deprecated_id,
        instance_name=envelope.instance_name, current=True, encrypted=envelope.encrypted,
        xml=prepared.stored_xml, xml_digest=prepared.digest, submitter_id=uploader.user_id,
        device_id=uploader.device_id, user_agent=(uploader.user_agent or "")[:500] or None,
        received_at=now, fields=fields, pid_hmac=prepared.pid_hmac,
        pid_last4=prepared.pid_last4)
    version.id = session.execute(_INSERT_VERSION, {
        c: getattr(version, c) for c in _VERSION_COLUMNS}).inserted_primary_key[0]
    carried = {a.name: a for a in previous.attachments} if previous is not None else {}
    rows = []
    for name in sorted(expected):
        old, upload = carried.get(name), prepared.files.get(name)
        row = {"submission_version_id": version.id, "name": name,
               "blob_sha256": old.blob_sha256 if old else None,
               "content_type": old.content_type if old else None,
               "received_at": old.received_at if old else None}
        if upload is not None:
            blob = store.put(session, upload.data, written.get(name))  # its row first
            if row["blob_sha256"] != blob.sha256:
                row.update(blob_sha256=blob.sha256, content_type=upload.content_type,
                           received_at=now)
        rows.append(row)
    if rows:
        session.execute(_INSERT_ATTACHMENTS, rows)
    if version.fields is not None and schema.entity is not None:
        _households(session, project_id, schema, envelope, version, previous, timezone,
                    (matcher or DEFAULT_CONFIG) if match else None, now)
    missing = tuple(r["name"] for r in rows if r["blob_sha256"] is None)
    return IngestResult(submission_id, version.id, True, missing)


def _households(session, project_id, schema, envelope, version, previous, timezone, matcher,
                now) -> None:
    """Entity action, then the household snapshot and its matching, each in a savepoint:
    whatever goes wrong, the submission is still stored and acknowledged."""
    # A Collect edit changes only the submission, never the entity (openrosa.md §4.8).
    created = None  # the entity this submission created, known to be live
    if envelope.entity is not None and previous is None:
        try:
            with session.begin_nested():
                applied = entities.apply_submission(session, project_id=project_id,
                                                    schema=schema, action=envelope.entity,
                                                    version=version, zone=timezone, now=now)
                created = applied.entity_id if applied is not None and applied.created else None
        except entities.EntityRejected as exc:
            entities.record_problem(session, project_id, version, exc)
        except Exception as exc:  # noqa: BLE001  (a bug here must not cost a volunteer's work)
            log.exception("entity processing failed for %s", version.instance_id)
            entities.record_problem(session, project_id, version, exc)
    if schema.form_id != households.SURVEY_FORM:
        return
    if previous is None and not (envelope.entity and (envelope.entity.id or "").strip()):
        return  # no household to record (record_snapshot needs its entity id)
    try:
        with session.begin_nested():
            replaced = households.snapshot_of(session, previous) if previous else None
            entity_id = (replaced.entity_id if replaced is not None
                         else (envelope.entity.id if envelope.entity else "") or "")
            snap = households.record_snapshot(session, project_id, version,
                                              entity_id.strip().lower(), now)
            if (matcher is not None and snap is not None
                    and (snap.entity_id == created
                         or entities.resolve(session, snap.entity_id)[0] is not None)):
                matching.on_snapshot(session, project_id, snap, matcher, replaced, now,
                                     created=snap.entity_id == created)
    except Exception as exc:  # noqa: BLE001
        log.exception("household matching failed for %s", version.instance_id)
        entities.record_problem(session, project_id, version, exc)


def _version_by_instance(session: Session, form_id: int, instance_id: str):
    return session.scalar(_BY_INSTANCE, {"form_id": form_id, "instance_id": instance_id})


def _upsert_attachments(session, store, version: SubmissionVersion, by_name, written,
                        now) -> None:
    """Add or replace the referenced files that this POST carries; ignore the others."""
    for att in version.attachments:
        upload = by_name.get(att.name)
        if upload is None:
            continue
        blob = store.put(session, upload.data, written.get(att.name))
        if att.blob_sha256 != blob.sha256:
            att.blob_sha256 = blob.sha256
            att.content_type = upload.content_type
            att.received_at = now
    session.flush()


def attach_to_current(session: Session, store: BlobStore, submission_id: int,
                      upload: UploadedFile, written: StoredBlob | None = None,
                      now: datetime | None = None) -> bool:
    """One file sent on its own (the API's attachment upload) for the submission's current
    version; False when that version's XML references no file of this name."""
    att = session.scalar(
        select(Attachment).join(SubmissionVersion,
                                SubmissionVersion.id == Attachment.submission_version_id)
        .where(SubmissionVersion.submission_id == submission_id,
               SubmissionVersion.current.is_(True), Attachment.name == upload.name))
    if att is None:
        return False
    _upsert_attachments(session, store, att.version, {upload.name: upload},
                        {upload.name: written} if written else {}, now or utcnow())
    return True


def _result(version: SubmissionVersion, *, created: bool) -> IngestResult:
    missing = tuple(a.name for a in version.attachments if a.blob_sha256 is None)
    return IngestResult(version.submission_id, version.id, created, missing)
