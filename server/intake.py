"""Receiving one submission in a request: Collect's OpenRosa POST and the web fill page both
store through here (parse once, write the files, then one transaction in the group writer).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from flask import current_app
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from server.db import group_commit
from server.domain.submissions import (
    IngestResult,
    Prepared,
    UploadedFile,
    Uploader,
    ingest_prepared,
    prepare,
    stage_files,
)
from server.web_context import blob_store, database

T = TypeVar("T")


def parse(xml: bytes, files: list[UploadedFile]) -> Prepared:
    """The upload parsed and checked; MalformedXml or InvalidSubmission (400) if it is not
    a submission."""
    cfg = current_app.config
    return prepare(xml, files, secret=cfg["SECRET_KEY"], pid_key=cfg["PID_KEY"])


def store(reader: Session, prepared: Prepared, *, project_id: int,
          uploader: Uploader) -> IngestResult:
    """Store a parsed upload; returns once committed, so a success answer means stored.

    `reader` reads the form's schema while the files are written and fsynced, then it is
    closed: the write transaction only records them, and on SQLite nothing else of this
    request may hold the one write lock meanwhile. DomainErrors refuse the upload whole."""
    cfg, blobs = current_app.config, blob_store()
    written = stage_files(reader, blobs, project_id, prepared)
    reader.close()
    matcher = current_app.extensions["matcher"]

    def work(session: Session) -> IngestResult:
        return ingest_prepared(session, blobs, prepared, project_id=project_id,
                               uploader=uploader, timezone=cfg["TIMEZONE"], matcher=matcher,
                               written=written)

    return commit(work)


def commit(work: Callable[[Session], T]) -> T:
    """Run `work` in the group writer; returns once committed."""
    for attempt in (1, 2):
        try:
            return writer().run(work)
        except IntegrityError:
            # An identical POST won the race for this instanceID; the retry sees its row
            # and becomes an attachment upsert (or a 409 if the XML differs).
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def writer() -> group_commit.GroupCommit:
    """The app's writer for submissions (created on first use, in the serving process)."""
    existing = current_app.extensions.get("submission_writer")
    if existing is None:
        existing = current_app.extensions.setdefault(
            "submission_writer", group_commit.for_database(database()))
    return existing
