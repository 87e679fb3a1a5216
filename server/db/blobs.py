"""Blob rows: insert-if-absent that is safe when two requests store the same bytes at once."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from server.db.models import Blob, BlobContent, utcnow


def _insert(session: Session):
    return pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


def ensure(session: Session, sha256: str, md5: str, size: int, *, data: bytes | None) -> None:
    insert = _insert(session)
    session.execute(
        insert(Blob)
        .values(sha256=sha256, md5=md5, size=size, created_at=utcnow())
        .on_conflict_do_nothing(index_elements=["sha256"])
    )
    if data is not None:
        session.execute(
            insert(BlobContent)
            .values(sha256=sha256, data=data)
            .on_conflict_do_nothing(index_elements=["sha256"])
        )


def content(session: Session, sha256: str) -> bytes:
    data = session.scalar(select(BlobContent.data).where(BlobContent.sha256 == sha256))
    if data is None:
        raise FileNotFoundError(sha256)
    return data
