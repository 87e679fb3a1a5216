"""Blob store: the bytes of attachments and form media, addressed by their SHA-256.

Two backends behind one small interface:
- FileBlobStore (default): files under DATA_DIR/blobs, written to a temp file, fsynced and
  renamed before the database commit, so an acknowledged submission's files survive a crash.
- DatabaseBlobStore: the bytes go into the blob_contents table in the same transaction, so
  several app servers can share nothing but PostgreSQL.

Blob metadata (md5, size) is a row in `blobs` in both cases.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from server.db import blobs as blob_rows

if TYPE_CHECKING:
    from sqlalchemy.orm import Session


@dataclass(frozen=True)
class StoredBlob:
    sha256: str
    md5: str
    size: int


class BlobStore(Protocol):
    def write(self, data: bytes) -> StoredBlob: ...
    def put(self, session: Session, data: bytes, written: StoredBlob | None = None
            ) -> StoredBlob: ...
    def get(self, session: Session, sha256: str) -> bytes: ...


def _digests(data: bytes) -> StoredBlob:
    return StoredBlob(hashlib.sha256(data).hexdigest(), hashlib.md5(data).hexdigest(), len(data))  # noqa: S324 (md5 is what OpenRosa asks for)


class FileBlobStore:
    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, sha256: str) -> Path:
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise ValueError("not a sha256 digest")
        return self.root / sha256[:2] / sha256

    def put(self, session: Session, data: bytes, written: StoredBlob | None = None
            ) -> StoredBlob:
        """The bytes (already `write`n when `written` is given) and their row."""
        blob = written or self.write(data)
        blob_rows.ensure(session, blob.sha256, blob.md5, blob.size, data=None)
        return blob

    def write(self, data: bytes) -> StoredBlob:
        """The file alone, fsynced: may be done before the transaction that records it."""
        blob = _digests(data)
        target = self.path(blob.sha256)
        if not target.exists():
            target.parent.mkdir(exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, target)  # atomic: a reader sees all of it or nothing
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
            _fsync_dir(target.parent)
        return blob

    def get(self, session: Session, sha256: str) -> bytes:
        return self.path(sha256).read_bytes()


class DatabaseBlobStore:
    def write(self, data: bytes) -> StoredBlob:
        return _digests(data)  # the bytes go into the transaction itself

    def put(self, session: Session, data: bytes, written: StoredBlob | None = None
            ) -> StoredBlob:
        blob = written or _digests(data)
        blob_rows.ensure(session, blob.sha256, blob.md5, blob.size, data=data)
        return blob

    def get(self, session: Session, sha256: str) -> bytes:
        return blob_rows.content(session, sha256)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_blob_store(kind: str, data_dir: str) -> BlobStore:
    if kind == "files":
        return FileBlobStore(Path(data_dir) / "blobs")
    if kind == "database":
        return DatabaseBlobStore()
    raise ValueError(f"SERVER_BLOB_STORE must be 'files' or 'database', not {kind!r}")
