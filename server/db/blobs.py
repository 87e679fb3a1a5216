"""Blob rows: insert-if-absent that is safe when two requests store the same bytes at once."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from server.db.models import Blob, BlobContent, utcnow


def _statements(insert) -> tuple:
    # Built once per dialect: every attachment of every submission runs them.
    blobs, contents = Blob.__table__, BlobContent.__table__
    return (insert(blobs).on_conflict_do_nothing(index_elements=["sha256"]),
            insert(contents).on_conflict_do_nothing(index_elements=["sha256"]))


_STATEMENTS = {"postgresql": _statements(pg_insert), "sqlite": _statements(sqlite_insert)}


def ensure(session: Session, sha256: str, md5: str, size: int, *, data: bytes | None) -> None:
    blob_row, content_row = _STATEMENTS[session.get_bind().dialect.name]
    session.execute(blob_row, {"sha256": sha256, "md5": md5, "size": size,
                               "created_at": utcnow()})
    if data is not None:
        session.execute(content_row, {"sha256": sha256, "data": data})


def content(session: Session, sha256: str) -> bytes:
    data = session.scalar(select(BlobContent.data).where(BlobContent.sha256 == sha256))
    if data is None:
        raise FileNotFoundError(sha256)
    return data
