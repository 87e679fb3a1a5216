"""Tables. Only server/db imports SQLAlchemy; the rest of the code works with these objects."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every backend (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None:
            if value.tzinfo is None:
                raise ValueError("naive datetime")
            value = value.astimezone(UTC)
            if dialect.name == "sqlite":
                value = value.replace(tzinfo=None)
        return value

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


JSONType = JSON().with_variant(JSONB(), "postgresql")


class Base(DeclarativeBase):
    pass


class Project(Base):
    __tablename__ = "projects"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))  # admin | supervisor | volunteer
    project_id: Mapped[int | None] = mapped_column(ForeignKey("projects.id"))
    team: Mapped[str | None] = mapped_column(String(20))  # tdp01…tdp20 or ward
    password_hash: Mapped[str | None] = mapped_column(String(255))
    # HTTP Digest needs MD5(username:realm:password); kept apart from the strong hash.
    digest_ha1: Mapped[str | None] = mapped_column(String(32))
    # A volunteer's token is derived from the server secret and this salt, so the
    # database alone never reveals it; lookups go through token_hash.
    token_salt: Mapped[str | None] = mapped_column(String(64))
    token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    # Bumped on revoke: every web session minted before it stops working.
    session_epoch: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The team registry (I07): local dates, YYYY-MM-DD. No joined_on = the day the account
    # was created; left_recorded_at lets a report "as of" a cut-off ignore a later departure.
    joined_on: Mapped[str | None] = mapped_column(String(10))
    left_on: Mapped[str | None] = mapped_column(String(10))
    left_recorded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Blob(Base):
    """Content-addressed bytes. The bytes live in the blob store (files or blob_contents)."""

    __tablename__ = "blobs"
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    md5: Mapped[str] = mapped_column(String(32))
    size: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class BlobContent(Base):
    """Used by the database blob store, so app servers can share nothing but PostgreSQL."""

    __tablename__ = "blob_contents"
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class Form(Base):
    __tablename__ = "forms"
    __table_args__ = (UniqueConstraint("project_id", "xml_form_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"))
    xml_form_id: Mapped[str] = mapped_column(String(255))
    state: Mapped[str] = mapped_column(String(10), default="open")  # open | closing | closed
    current_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("form_versions.id", use_alter=True, name="fk_forms_current_version")
    )
    # A version uploaded but not yet published (Central's draft): never in the form list.
    draft_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("form_versions.id", use_alter=True, name="fk_forms_draft_version")
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    current_version: Mapped[FormVersion | None] = relationship(
        foreign_keys=[current_version_id], post_update=True
    )


class FormVersion(Base):
    __tablename__ = "form_versions"
    __table_args__ = (UniqueConstraint("form_id", "version"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    form_id: Mapped[int] = mapped_column(ForeignKey("forms.id"))
    version: Mapped[str] = mapped_column(String(255))  # "" when the XForm has none
    title: Mapped[str] = mapped_column(String(500))
    xlsform: Mapped[bytes | None] = mapped_column(LargeBinary)
    xlsform_name: Mapped[str | None] = mapped_column(String(255))
    xml: Mapped[bytes] = mapped_column(LargeBinary)  # served as is, never changed
    md5: Mapped[str] = mapped_column(String(32))
    published_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    form: Mapped[Form] = relationship(foreign_keys=[form_id])
    media: Mapped[list[FormMedia]] = relationship(
        back_populates="form_version", order_by="FormMedia.filename"
    )


class FormMedia(Base):
    __tablename__ = "form_media"
    __table_args__ = (UniqueConstraint("form_version_id", "filename"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    form_version_id: Mapped[int] = mapped_column(ForeignKey("form_versions.id"))
    filename: Mapped[str] = mapped_column(String(255))
    # NULL for a file the server generates per user (entity lists, registers).
    blob_sha256: Mapped[str | None] = mapped_column(ForeignKey("blobs.sha256"))
    content_type: Mapped[str] = mapped_column(String(100))

    form_version: Mapped[FormVersion] = relationship(back_populates="media")
    blob: Mapped[Blob | None] = relationship()


class Submission(Base):
    """One logical submission; its edits are SubmissionVersions."""

    __tablename__ = "submissions"
    __table_args__ = (UniqueConstraint("form_id", "instance_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    form_id: Mapped[int] = mapped_column(ForeignKey("forms.id"))
    instance_id: Mapped[str] = mapped_column(String(255))  # of the first version
    submitter_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    device_id: Mapped[str | None] = mapped_column(String(255))
    review_state: Mapped[str] = mapped_column(String(20), default="received")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    versions: Mapped[list[SubmissionVersion]] = relationship(
        back_populates="submission", order_by="SubmissionVersion.id"
    )


class SubmissionVersion(Base):
    __tablename__ = "submission_versions"
    # Database uniqueness, not a check-then-insert: two racing POSTs store one row.
    __table_args__ = (
        UniqueConstraint("form_id", "instance_id"),
        Index("ix_submission_versions_current", "form_id", "current"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id"))
    form_id: Mapped[int] = mapped_column(ForeignKey("forms.id"))
    form_version_id: Mapped[int] = mapped_column(ForeignKey("form_versions.id"))
    instance_id: Mapped[str] = mapped_column(String(255))
    deprecated_id: Mapped[str | None] = mapped_column(String(255))
    instance_name: Mapped[str | None] = mapped_column(Text)
    current: Mapped[bool] = mapped_column(Boolean, default=True)
    encrypted: Mapped[bool] = mapped_column(Boolean, default=False)
    xml: Mapped[bytes] = mapped_column(LargeBinary)  # as received, identity digits blanked
    # Keyed digest of the bytes as received: decides "same XML" for resends.
    xml_digest: Mapped[str] = mapped_column(String(64))
    submitter_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    device_id: Mapped[str | None] = mapped_column(String(255))
    user_agent: Mapped[str | None] = mapped_column(String(500))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Parsed once at ingest, so exports never re-parse XML.
    fields: Mapped[dict | None] = mapped_column(JSONType)
    pid_hmac: Mapped[str | None] = mapped_column(String(64), index=True)
    pid_last4: Mapped[str | None] = mapped_column(String(4))

    submission: Mapped[Submission] = relationship(back_populates="versions")
    form_version: Mapped[FormVersion] = relationship()
    attachments: Mapped[list[Attachment]] = relationship(
        back_populates="version", order_by="Attachment.name"
    )


class Attachment(Base):
    """A file the submission XML references; blob is NULL until it has arrived."""

    __tablename__ = "attachments"
    __table_args__ = (UniqueConstraint("submission_version_id", "name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    submission_version_id: Mapped[int] = mapped_column(ForeignKey("submission_versions.id"))
    name: Mapped[str] = mapped_column(String(255))
    blob_sha256: Mapped[str | None] = mapped_column(ForeignKey("blobs.sha256"))
    content_type: Mapped[str | None] = mapped_column(String(100))
    received_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    version: Mapped[SubmissionVersion] = relationship(back_populates="attachments")
    blob: Mapped[Blob | None] = relationship()


class AuditEntry(Base):
    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    action: Mapped[str] = mapped_column(String(50), index=True)
    target: Mapped[str | None] = mapped_column(String(255))
    details: Mapped[dict | None] = mapped_column(JSONType)


# Entities (ODK entity lists; here the ward's households) ------------------------------------


class Entity(Base):
    """The current state of one entity. Every change is also an EntityVersion row."""

    __tablename__ = "entities"
    __table_args__ = (Index("ix_entities_list", "project_id", "dataset", "tdp"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # v4 UUID, as on devices
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"))
    dataset: Mapped[str] = mapped_column(String(100))
    label: Mapped[str] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer)
    properties: Mapped[dict] = mapped_column(JSONType)
    tdp: Mapped[str | None] = mapped_column(String(20))  # copy of properties.tdp, for filtering
    # Set when de-duplication made this entity an alias of another (the canonical one).
    canonical_id: Mapped[str | None] = mapped_column(String(36), index=True)
    erased: Mapped[bool] = mapped_column(Boolean, default=False)
    conflict: Mapped[str | None] = mapped_column(String(10))  # soft | hard, until resolved
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Deleted through the API (Central's soft delete): kept, but in no list any more.
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class EntityVersion(Base):
    """Append-only history: one row per accepted change of an entity."""

    __tablename__ = "entity_versions"
    __table_args__ = (UniqueConstraint("entity_id", "version"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    entity_id: Mapped[str] = mapped_column(ForeignKey("entities.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(20))  # submission | server | merge
    submission_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("submission_versions.id"), index=True)
    instance_id: Mapped[str | None] = mapped_column(String(255))
    base_version: Mapped[int | None] = mapped_column(Integer)
    label: Mapped[str] = mapped_column(Text)
    properties: Mapped[dict] = mapped_column(JSONType)  # the whole state after this change
    changed_properties: Mapped[dict] = mapped_column(JSONType)
    conflict: Mapped[str | None] = mapped_column(String(10))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))  # an API change's author
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class EntityProblem(Base):
    """An entity action that could not be applied; the submission itself was kept."""

    __tablename__ = "entity_problems"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    submission_version_id: Mapped[int | None] = mapped_column(ForeignKey("submission_versions.id"))
    # matching asks, at ingest, whether a household's problem is already recorded
    entity_id: Mapped[str | None] = mapped_column(String(36), index=True)
    kind: Mapped[str] = mapped_column(String(30))
    message: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ListRevision(Base):
    """Bumped in the same transaction as any change to what an entity list serves, so a
    cached CSV is reused exactly as long as it is still right."""

    __tablename__ = "list_revisions"
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), primary_key=True)
    dataset: Mapped[str] = mapped_column(String(100), primary_key=True)
    revision: Mapped[int] = mapped_column(Integer, default=0)


# Household de-duplication -------------------------------------------------------------------


class HouseholdSnapshot(Base):
    """What one household-survey submission says about its household, for matching."""

    __tablename__ = "household_snapshots"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    submission_version_id: Mapped[int] = mapped_column(
        ForeignKey("submission_versions.id"), unique=True)
    entity_id: Mapped[str] = mapped_column(String(36), index=True)  # as submitted
    tdp: Mapped[str | None] = mapped_column(String(20))
    survey_date: Mapped[str | None] = mapped_column(String(10))
    consent: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_entity: Mapped[bool] = mapped_column(Boolean, default=False)  # hh_mode = existing
    data: Mapped[dict] = mapped_column(JSONType)
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    current: Mapped[bool] = mapped_column(Boolean, default=True)  # false once edited
    # member_id of each member record, in form order (kept stable across re-runs)
    member_ids: Mapped[list | None] = mapped_column(JSONType)


class HouseholdBlockKey(Base):
    """The blocking keys (domain §7.4) of each snapshot, so a new snapshot finds its
    candidates with an indexed query whose cost grows with the block, not the ward."""

    __tablename__ = "household_block_keys"
    __table_args__ = (Index("ix_household_block_keys_key", "project_id", "key"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"))
    key: Mapped[str] = mapped_column(String(40))  # sha1 of the key's JSON
    snapshot_id: Mapped[int] = mapped_column(ForeignKey("household_snapshots.id"), index=True)


class HouseholdMember(Base):
    """One person of a household, linked across snapshots (member UUID kept)."""

    __tablename__ = "household_members"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"))
    household_id: Mapped[str] = mapped_column(String(36), index=True)  # entity it was seen in
    name: Mapped[str] = mapped_column(Text)
    birth_year: Mapped[int | None] = mapped_column(Integer)
    sex: Mapped[str | None] = mapped_column(String(10))
    last_snapshot_id: Mapped[int] = mapped_column(ForeignKey("household_snapshots.id"))
    present: Mapped[bool] = mapped_column(Boolean, default=True)  # in the newest snapshot


class DedupePair(Base):
    """A pair of snapshots that matching looked at: auto-merged or waiting for a person."""

    __tablename__ = "dedupe_pairs"
    __table_args__ = (UniqueConstraint("snapshot_a", "snapshot_b"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    snapshot_a: Mapped[int] = mapped_column(ForeignKey("household_snapshots.id"))
    snapshot_b: Mapped[int] = mapped_column(ForeignKey("household_snapshots.id"))
    entity_a: Mapped[str] = mapped_column(String(36), index=True)
    entity_b: Mapped[str] = mapped_column(String(36), index=True)
    rule: Mapped[str] = mapped_column(String(20))
    outcome: Mapped[str] = mapped_column(String(10))  # match | review
    score: Mapped[float] = mapped_column()
    features: Mapped[dict] = mapped_column(JSONType)
    status: Mapped[str] = mapped_column(String(10), default="pending")  # pending | decided | auto
    decision: Mapped[str | None] = mapped_column(String(20))  # merge | keep_separate | defer
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class MergeLogEntry(Base):
    __tablename__ = "merge_log"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    action: Mapped[str] = mapped_column(String(20))  # merge | unmerge | keep_separate
    canonical_id: Mapped[str] = mapped_column(String(36))
    alias_id: Mapped[str] = mapped_column(String(36))
    rule: Mapped[str | None] = mapped_column(String(20))
    score: Mapped[float | None] = mapped_column()
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))  # NULL = auto
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    reason: Mapped[str | None] = mapped_column(Text)
    undone_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    undone_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


# Office records that reports read (domain §6.1, §6.3 I07, §6.6) ---------------------------


class TrainingSession(Base):
    """A training the office or a tổ held; who attended is one VolunteerTraining row each."""

    __tablename__ = "training_sessions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    date: Mapped[str] = mapped_column(String(10))  # local date, YYYY-MM-DD
    topic: Mapped[str] = mapped_column(Text)
    organiser: Mapped[str] = mapped_column(String(200))
    recorded_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class VolunteerTraining(Base):
    """A training a team member attended, entered by the office (I07); never by the forms.

    One row per attendee: I07 reads these rows alone. Rows of a session copy its date, topic
    and organiser; rows entered before sessions existed have no session.
    """

    __tablename__ = "volunteer_trainings"
    __table_args__ = (UniqueConstraint("session_id", "user_id",
                                       name="uq_volunteer_trainings_session_user"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    date: Mapped[str] = mapped_column(String(10))  # local date, YYYY-MM-DD
    topic: Mapped[str] = mapped_column(Text)
    recorded_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    session_id: Mapped[int | None] = mapped_column(
        ForeignKey("training_sessions.id", name="fk_volunteer_trainings_session"), index=True)
    organiser: Mapped[str | None] = mapped_column(String(200))
    # Reports "as of" a cut-off ignore records entered after it.
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class HouseholdStatus(Base):
    """An office action with a date: the household moved out or dissolved (or is back).

    The latest record dated on or before T decides whether a household is in U(T); any
    entity of a merged household may be named (aliases count for the canonical one).
    """

    __tablename__ = "household_statuses"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    entity_id: Mapped[str] = mapped_column(String(36), index=True)
    status: Mapped[str] = mapped_column(String(20))  # moved_out | dissolved | active
    date: Mapped[str] = mapped_column(String(10))  # local date, YYYY-MM-DD
    note: Mapped[str | None] = mapped_column(Text)
    recorded_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ServiceCheck(Base):
    """The office's phone-back check of one completion (§6.6): E5 `verified`.

    Keyed by the logical submission (edits keep it), the service and the member ('' for a
    household-level service); the latest check wins.
    """

    __tablename__ = "service_checks"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id"), index=True)
    service_code: Mapped[str] = mapped_column(String(50))
    member_id: Mapped[str] = mapped_column(String(36), default="")
    verified: Mapped[bool] = mapped_column(Boolean)
    note: Mapped[str | None] = mapped_column(Text)
    checked_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    checked_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


# Web UI: login throttling and the review thread (supervisors' pages) ---------------------


class LoginAttempt(Base):
    """A failed web login; five per username and address in 15 minutes lock that pair out."""

    __tablename__ = "login_attempts"
    __table_args__ = (Index("ix_login_attempts_lookup", "username", "ip", "at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(100))  # as typed, casefolded
    ip: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ReviewComment(Base):
    """One message of a submission's review thread; `review_state` is set when it changed it."""

    __tablename__ = "review_comments"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id"), index=True)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    body: Mapped[str] = mapped_column(Text, default="")
    review_state: Mapped[str | None] = mapped_column(String(20))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


# Issued reports (domain §6.5): what the office sent, kept byte for byte --------------------


class IssuedReport(Base):
    """A report as issued: its period, the data cut-off it was computed as of, who issued it.

    The files themselves are kept in the blob store, so a report downloaded a year later is
    the very file that was sent, whatever late uploads changed in the live figures since."""

    __tablename__ = "issued_reports"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))  # indicators | households | activity
    period: Mapped[str] = mapped_column(String(20))  # 2026-11, 2026-Q4, 2026
    team: Mapped[str | None] = mapped_column(String(20))  # NULL = the whole ward
    as_of: Mapped[datetime] = mapped_column(UTCDateTime)  # data uploaded/decided by then
    issued_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    note: Mapped[str] = mapped_column(Text, default="")

    files: Mapped[list[IssuedReportFile]] = relationship(
        order_by="IssuedReportFile.id", cascade="all, delete-orphan")


class IssuedReportFile(Base):
    __tablename__ = "issued_report_files"
    __table_args__ = (UniqueConstraint("report_id", "name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("issued_reports.id"))
    name: Mapped[str] = mapped_column(String(255))  # indicators_long.csv, indicators.xlsx…
    sha256: Mapped[str] = mapped_column(ForeignKey("blobs.sha256"))
    size: Mapped[int] = mapped_column(BigInteger)


# The Central-compatible REST API (pyodk, OData clients) ------------------------------------


class ApiSession(Base):
    """A bearer token from `POST /v1/sessions`. Only its SHA-256 is kept; it stops working
    at `expires_at`, on logout, or when the user's sessions are ended (session_epoch)."""

    __tablename__ = "api_sessions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    session_epoch: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class FormAssignment(Base):
    """A form assigned to an app user (a volunteer), Central's role 2. A volunteer with any
    assignment sees only its assigned forms; one with none sees every form of its project."""

    __tablename__ = "form_assignments"
    form_id: Mapped[int] = mapped_column(ForeignKey("forms.id"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True, index=True)
    role_id: Mapped[int] = mapped_column(Integer, default=2)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Dataset(Base):
    """An entity list of a project, declared by a form or created through the API."""

    __tablename__ = "datasets"
    __table_args__ = (UniqueConstraint("project_id", "name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"))
    name: Mapped[str] = mapped_column(String(100))
    approval_required: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class DatasetProperty(Base):
    __tablename__ = "dataset_properties"
    __table_args__ = (UniqueConstraint("dataset_id", "name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"))
    name: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
