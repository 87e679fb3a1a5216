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
import time
from collections.abc import Callable
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
        if target.exists():
            try:  # fresh again: `sweep` leaves young files alone, this one is about to be used
                os.utime(target)
                return blob
            except FileNotFoundError:
                pass  # swept this very moment: written again below
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

    def sweep(self, referenced: Callable[[list[str]], set[str]], *, older_than_s: float,
              dry_run: bool = False) -> SweepResult:
        """Delete the files no blob row refers to: bytes written for an upload that was then
        refused, or by a request killed before its commit, and writers' temporary files.

        A file younger than `older_than_s` is left alone: an upload may be between writing
        its files and committing their rows (`write` makes a file it reuses young again).
        An old orphan is first renamed aside, then checked once more (young again, or a row
        committed meanwhile) and put back if so; only then are its bytes deleted.
        `referenced(names)`: those of the digests that have a row, read at call time."""
        result = SweepResult()
        cutoff = time.time() - older_than_s
        candidates: list[Path] = []
        for path in sorted(self.root.glob("??/*")):
            try:
                stat = path.stat()
            except FileNotFoundError:
                continue
            result.files += 1
            if stat.st_mtime > cutoff:
                result.young += 1
            elif path.name.startswith(".sweep-"):  # a sweep killed half-way: finish it
                home = path.with_name(path.name.removeprefix(".sweep-"))
                if dry_run:
                    continue
                if referenced([home.name]) and not home.exists():
                    os.replace(path, home)
                else:
                    path.unlink(missing_ok=True)
            elif path.name.startswith(".tmp-"):  # a writer killed before its rename
                result.temp += 1
                result.bytes += stat.st_size
                if not dry_run:
                    path.unlink(missing_ok=True)
            elif len(path.name) == 64:
                candidates.append(path)
        for start in range(0, len(candidates), 1000):
            batch = candidates[start:start + 1000]
            known = referenced([p.name for p in batch])
            for path in batch:
                if path.name not in known:
                    freed = self._drop_orphan(path, referenced, cutoff, dry_run)
                    if freed is not None:
                        result.orphans += 1
                        result.bytes += freed
        return result

    def _drop_orphan(self, path: Path, referenced, cutoff: float, dry_run: bool
                     ) -> int | None:
        """The bytes freed, or None when the file turned out to be in use and stays."""
        try:
            size = path.stat().st_size
            if dry_run:
                return size
            os.replace(path, aside := path.with_name(f".sweep-{path.name}"))
        except FileNotFoundError:
            return None  # gone meanwhile (another sweep)
        # a writer now finds no file and writes it again; one that reused it made it young
        if aside.stat().st_mtime > cutoff or referenced([path.name]):
            if path.exists():  # written again meanwhile: the same bytes
                aside.unlink()
            else:
                os.replace(aside, path)
            return None
        aside.unlink()
        return size


@dataclass
class SweepResult:
    files: int = 0  # files looked at
    orphans: int = 0  # files without a row, deleted (or that would be, on a dry run)
    temp: int = 0  # writers' temporary files, deleted
    young: int = 0  # left alone: younger than the threshold
    bytes: int = 0  # bytes freed


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
