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
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.db.models import Attachment, Submission, SubmissionVersion, utcnow
from server.domain import entities, households, matching
from server.domain import forms as forms_domain
from server.domain.dedupe import DEFAULT_CONFIG, DedupeConfig
from server.domain.instance import (
    Envelope,
    blank_identity_number,
    envelope_of,
    parse_fields,
    referenced_attachments,
)
from server.domain.instance import (
    InvalidSubmission as InstanceInvalid,
)
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
from server.storage import BlobStore
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
    submission: Submission
    version: SubmissionVersion
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
    now = now or utcnow()
    try:
        root = parse_xml(raw_xml)
        envelope = envelope_of(root)
    except XMLRejected as exc:
        raise MalformedXml(str(exc)) from exc
    except InstanceInvalid as exc:
        raise InvalidSubmission(str(exc)) from exc

    form = forms_domain.get_form(session, project_id, envelope.form_id)
    if form is None:
        raise FormNotFound(f"form id {envelope.form_id!r}")
    if form.state == "closed":
        raise FormClosed(envelope.form_id)
    form_version = forms_domain.get_version(session, form, envelope.version or "")
    if form_version is None:
        raise FormVersionNotFound(f"{envelope.form_id} version {envelope.version!r}")

    instance_id = envelope.instance_id
    for value in (instance_id, envelope.deprecated_id):
        if value and len(value) > 255:
            raise InvalidSubmission("meta/instanceID and meta/deprecatedID are at most "
                                    "255 characters")
    if not instance_id:
        if envelope.encrypted:
            raise InvalidSubmission("an encrypted submission must carry meta/instanceID")
        instance_id = f"uuid:{uuid.uuid4()}"  # as Central does for forms without one
    digest = xml_digest(secret, raw_xml)
    by_name = {f.name: f for f in files if f.name}

    current = _version_by_instance(session, form.id, instance_id)
    if current is not None:
        if current.xml_digest != digest:
            raise XmlConflict(instance_id)
        if not current.current and not envelope.deprecated_id:
            raise XmlConflict(f"{instance_id} was edited since")
        _upsert_attachments(session, store, current, by_name, now)
        return _result(current, created=False)

    if envelope.deprecated_id:
        previous = _version_by_instance(session, form.id, envelope.deprecated_id)
        if previous is None:
            raise DeprecatedNotFound(envelope.deprecated_id)
        if not previous.current:
            raise EditConflict(envelope.deprecated_id)
        submission = previous.submission
    else:
        previous = None
        submission = Submission(form_id=form.id, instance_id=instance_id,
                                submitter_id=uploader.user_id, device_id=uploader.device_id,
                                created_at=now, review_state="received")
        session.add(submission)

    stored_xml, pid_digits = _without_identity_number(raw_xml, envelope)
    schema = forms_domain.schema_of(form_version.xml)
    version = SubmissionVersion(
        submission=submission,
        form_id=form.id,
        form_version_id=form_version.id,
        instance_id=instance_id,
        deprecated_id=envelope.deprecated_id,
        instance_name=envelope.instance_name,
        current=True,
        encrypted=envelope.encrypted,
        xml=stored_xml,
        xml_digest=digest,
        submitter_id=uploader.user_id,
        device_id=uploader.device_id,
        user_agent=(uploader.user_agent or "")[:500] or None,
        received_at=now,
        fields=None if envelope.encrypted else _fields(schema, stored_xml, instance_id),
    )
    if pid_digits and PID_PATTERN.match(pid_digits):
        version.pid_hmac = pid_hmac(pid_key, pid_digits)
        version.pid_last4 = pid_digits[-4:]
    if previous is not None:
        previous.current = False
    session.add(version)
    session.flush()  # the unique (form_id, instance_id) decides a race here

    expected = {n[:255] for n in referenced_attachments(schema, root, envelope)}  # column size
    carried = {a.name: a for a in previous.attachments} if previous is not None else {}
    for name in sorted(expected):
        old = carried.get(name)
        session.add(Attachment(
            submission_version_id=version.id, name=name,
            blob_sha256=old.blob_sha256 if old else None,
            content_type=old.content_type if old else None,
            received_at=old.received_at if old else None,
        ))
    session.flush()
    session.refresh(version, ["attachments"])
    _upsert_attachments(session, store, version, by_name, now)
    if version.fields is not None and schema.entity is not None:
        _households(session, project_id, schema, envelope, version, previous, timezone,
                    (matcher or DEFAULT_CONFIG) if match else None, now)
    return _result(version, created=True)


def _households(session, project_id, schema, envelope, version, previous, timezone, matcher,
                now) -> None:
    """Entity action, then the household snapshot and its matching, each in a savepoint:
    whatever goes wrong, the submission is still stored and acknowledged."""
    # A Collect edit changes only the submission, never the entity (openrosa.md §4.8).
    if envelope.entity is not None and previous is None:
        try:
            with session.begin_nested():
                entities.apply_submission(session, project_id=project_id, schema=schema,
                                          action=envelope.entity, version=version,
                                          zone=timezone, now=now)
        except entities.EntityRejected as exc:
            entities.record_problem(session, project_id, version, exc)
        except Exception as exc:  # noqa: BLE001  (a bug here must not cost a volunteer's work)
            log.exception("entity processing failed for %s", version.instance_id)
            entities.record_problem(session, project_id, version, exc)
    if schema.form_id != households.SURVEY_FORM:
        return
    try:
        with session.begin_nested():
            replaced = households.snapshot_of(session, previous) if previous else None
            entity_id = (replaced.entity_id if replaced is not None
                         else (envelope.entity.id if envelope.entity else "") or "")
            snap = households.record_snapshot(session, project_id, version,
                                              entity_id.strip().lower(), now)
            if (matcher is not None and snap is not None
                    and entities.resolve(session, snap.entity_id)[0] is not None):
                matching.on_snapshot(session, project_id, snap, matcher, replaced, now)
    except Exception as exc:  # noqa: BLE001
        log.exception("household matching failed for %s", version.instance_id)
        entities.record_problem(session, project_id, version, exc)


def _fields(schema, xml: bytes, instance_id: str) -> dict:
    return parse_fields(schema, parse_xml(xml), instance_id)


def _without_identity_number(raw_xml: bytes, envelope: Envelope) -> tuple[bytes, str | None]:
    """Blank the identity number before the bytes go anywhere (domain §3.1)."""
    if envelope.encrypted:
        return raw_xml, None
    new_xml, digits = blank_identity_number(raw_xml, IDENTITY_FIELD)
    return new_xml, digits or None


def _version_by_instance(session: Session, form_id: int, instance_id: str):
    return session.scalar(
        select(SubmissionVersion).where(
            SubmissionVersion.form_id == form_id, SubmissionVersion.instance_id == instance_id
        )
    )


def _upsert_attachments(session, store, version: SubmissionVersion, by_name, now) -> None:
    """Add or replace the referenced files that this POST carries; ignore the others."""
    for att in version.attachments:
        upload = by_name.get(att.name)
        if upload is None:
            continue
        blob = store.put(session, upload.data)
        if att.blob_sha256 != blob.sha256:
            att.blob_sha256 = blob.sha256
            att.content_type = upload.content_type
            att.received_at = now
    session.flush()


def _result(version: SubmissionVersion, *, created: bool) -> IngestResult:
    missing = tuple(a.name for a in version.attachments if a.blob_sha256 is None)
    return IngestResult(version.submission, version, created, missing)
