"""Restore a backup made by `backup` into an empty database and data dir, then prove it whole.

Nothing is written until the targets are known to be fresh: an empty SQLite file or
PostgreSQL database, no blob files, and no other keys in the data dir. The SQLite copy is
made beside the target and renamed into place; pg_restore runs in one transaction. Every blob
file is checked against its SHA-256 name as it is copied, the schema is then upgraded (a
backup of an older version gets today's tables), and every blob row must have its bytes.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import create_engine, func, inspect, select
from sqlalchemy.engine import URL, make_url

from server.backup import FORMAT, KEY_FILES, MANIFEST, libpq
from server.db import Database
from server.db.models import Attachment, Blob, BlobContent, Submission


class RestoreError(RuntimeError):
    pass


@dataclass
class Restored:
    submissions: int
    attachments: int
    blobs: int  # blob rows, each checked to have its bytes
    blob_files: int  # files copied (and checked against their digest)
    blobs_in_database: int
    keys: list[str]
    warnings: list[str] = field(default_factory=list)


def restore(src: Path, database_url: str, data_dir: Path, *, blob_store: str,
            configured_keys: dict[str, str | None] | None = None) -> Restored:
    """`configured_keys`: key file name -> the key set in the environment (None if unset)."""
    manifest = _manifest(src)
    url = make_url(database_url)
    kind = url.get_backend_name()
    if manifest.get("database") != kind:
        raise RestoreError(f"the backup holds a {manifest.get('database')} database, but "
                           f"SERVER_DATABASE_URL names a {kind} one")
    db_file = src / str(manifest.get("database_file", ""))
    if not db_file.is_file():
        raise RestoreError(f"{db_file} is missing from the backup")
    _require_empty_database(url)
    blobs = data_dir / "blobs"
    if blobs.is_dir() and any(p.is_file() for p in blobs.rglob("*")):
        raise RestoreError(f"{blobs} already holds files: restore into a fresh data dir")
    keys = _check_keys(src, data_dir, manifest)

    if kind == "sqlite":
        _restore_sqlite(db_file, Path(str(url.database)))
    else:
        _restore_postgresql(db_file, url)
    files = _copy_blobs(src / "blobs", blobs) if (src / "blobs").is_dir() else set()
    for name in keys:
        _write_private(data_dir / name, (src / name).read_bytes())
    db = Database(database_url)
    try:
        db.upgrade()
        restored = _prove_whole(db, files, keys, blob_store)
    finally:
        db.dispose()
    for name, value in (configured_keys or {}).items():
        kept = src / name
        if value and kept.is_file() and kept.read_text().strip() != value:
            variable, lost = (("SERVER_SECRET_KEY", "the volunteers' Collect URLs will not work")
                              if name == "secret_key" else
                              ("SERVER_PID_KEY", "identity numbers will not match earlier ones"))
            restored.warnings.append(f"{variable} differs from the backed-up {name} and wins: "
                                     f"{lost}")
    return restored


def _manifest(src: Path) -> dict:
    path = src / MANIFEST
    if not path.is_file():
        raise RestoreError(f"{path} is missing: not a backup, or a backup that did not finish")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RestoreError(f"{path} is unreadable: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise RestoreError(f"{path} is not a backup manifest this version can read")
    return manifest


def _require_empty_database(url: URL) -> None:
    if url.get_backend_name() == "sqlite":
        path = Path(str(url.database))
        if not path.exists() or path.stat().st_size == 0:
            return
        conn = sqlite3.connect(path)
        try:
            tables = conn.execute("SELECT count(*) FROM sqlite_master WHERE type='table'")
            holds = tables.fetchone()[0] > 0
        except sqlite3.DatabaseError:
            holds = True  # not even a database: nothing to overwrite either
        finally:
            conn.close()
        if holds:
            raise RestoreError(f"{path} already holds a database: move it away first")
        return
    engine = create_engine(url)
    try:
        if inspect(engine).get_table_names():
            raise RestoreError(f"the database {url.database!r} is not empty: create a new one "
                               "(createdb) and point SERVER_DATABASE_URL at it")
    finally:
        engine.dispose()


def _check_keys(src: Path, data_dir: Path, manifest: dict) -> list[str]:
    """The backed-up keys to write; a different key already in the data dir is refused."""
    keys = [k for k in manifest.get("keys", []) if k in KEY_FILES]
    for name in keys:
        if not (src / name).is_file():
            raise RestoreError(f"{src / name} is missing from the backup")
        mine = data_dir / name
        if mine.exists():
            if mine.read_bytes() != (src / name).read_bytes():
                raise RestoreError(f"{mine} differs from the backup's: restore into a fresh "
                                   "data dir")
    return [k for k in keys if not (data_dir / k).exists()]


def _restore_sqlite(copy: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-restore-", suffix=".db")
    os.close(fd)
    try:
        source = sqlite3.connect(copy)
        try:
            check = source.execute("PRAGMA integrity_check").fetchall()
            if check != [("ok",)]:
                raise RestoreError(f"{copy} is damaged: {check[:3]}")
            dest = sqlite3.connect(tmp)
            with dest:
                source.backup(dest)
            dest.close()
        finally:
            source.close()
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        for suffix in ("-wal", "-shm"):  # an empty target's leftovers must not replay
            Path(f"{target}{suffix}").unlink(missing_ok=True)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _restore_postgresql(dump: Path, url: URL) -> None:
    if shutil.which("pg_restore") is None:
        raise RestoreError("pg_restore is needed to restore a PostgreSQL backup")
    where, env = libpq(url)
    done = subprocess.run(
        ["pg_restore", "--exit-on-error", "--single-transaction", "--no-owner",
         "--no-privileges", "--dbname", where, str(dump)],
        capture_output=True, text=True, check=False, env=env)
    if done.returncode != 0:
        raise RestoreError(f"pg_restore failed: {done.stderr.strip()[:300]}")


def _copy_blobs(src: Path, dest: Path) -> set[str]:
    """Copy every blob file, each checked against its name; the digests copied."""
    copied = set()
    for path in sorted(src.rglob("*")):
        if not path.is_file() or path.name.startswith(".tmp-"):
            continue
        name = path.name
        if len(name) != 64 or path.parent.name != name[:2]:
            raise RestoreError(f"{path} is not a blob file of a backup")
        target = dest / name[:2] / name
        target.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with open(path, "rb") as source, os.fdopen(fd, "wb") as out:
                while chunk := source.read(1 << 20):
                    digest.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            if digest.hexdigest() != name:
                raise RestoreError(f"{path} is damaged: its bytes do not match its name")
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        copied.add(name)
    return copied


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _prove_whole(db: Database, files: set[str], keys: list[str], blob_store: str) -> Restored:
    with db.session() as session:
        rows = set(session.scalars(select(Blob.sha256)))
        in_db = set(session.scalars(select(BlobContent.sha256)))
        missing = sorted(rows - in_db - files)
        if missing:
            raise RestoreError(f"{len(missing)} blobs have no bytes in the backup "
                               f"(first: {missing[0]})")
        restored = Restored(
            submissions=session.scalar(select(func.count()).select_from(Submission)) or 0,
            attachments=session.scalar(select(func.count()).select_from(Attachment)) or 0,
            blobs=len(rows), blob_files=len(files), blobs_in_database=len(in_db), keys=keys)
    if blob_store == "files" and rows - files:
        restored.warnings.append(f"{len(rows - files)} blobs are kept in the database: serve "
                                 "with SERVER_BLOB_STORE=database")
    if blob_store == "database" and rows - in_db:
        restored.warnings.append(f"{len(rows - in_db)} blobs are files under the data dir: "
                                 "serve with SERVER_BLOB_STORE=files")
    return restored
