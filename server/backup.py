"""A consistent copy of the database and the blobs while the server runs.

The database is copied first (SQLite's online backup API, or pg_dump: one snapshot either
way), then the blob files: a blob is written and fsynced before the commit that references
it, and blobs never change, so every blob the copied database refers to is already on disk
when the files are copied. The keys kept in the data dir (`secret_key`, `pid_key`) are copied
too: without them the volunteers' Collect URLs and the identity-number hashes would not work
on a restored server. `backup.json` is written last, so a backup without it is unfinished.

    DEST/server.db | DEST/database.dump    the database
    DEST/blobs/ab/abcd…                    attachment and media files (file blob store)
    DEST/secret_key, DEST/pid_key          when the data dir holds them (mode 0600)
    DEST/backup.json                       what was copied, and when
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.engine import URL, make_url

MANIFEST = "backup.json"
KEY_FILES = ("secret_key", "pid_key")
FORMAT = 1


class BackupError(RuntimeError):
    pass


def libpq(url: URL) -> tuple[str, dict[str, str]]:
    """A URL for pg_dump/pg_restore, and the environment that carries its password (never
    on the command line, where `ps` shows it)."""
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    plain = url.set(drivername="postgresql", password=None)
    return plain.render_as_string(hide_password=False), env


def backup(database_url: str, data_dir: str, dest: Path) -> list[Path]:
    dest.mkdir(mode=0o700, parents=True, exist_ok=True)  # it holds keys and personal data
    if any(dest.iterdir()):
        raise BackupError(f"{dest} is not empty")
    url = make_url(database_url)
    kind = url.get_backend_name()
    written = []
    if kind == "sqlite":
        target = dest / "server.db"
        source = sqlite3.connect(url.database)
        try:
            copy = sqlite3.connect(target)
            with copy:
                source.backup(copy)  # all pages in one step: one consistent snapshot
            copy.close()
        finally:
            source.close()
        written.append(target)
    elif kind == "postgresql":
        if shutil.which("pg_dump") is None:
            raise BackupError("pg_dump is needed to back up PostgreSQL")
        target = dest / "database.dump"
        where, env = libpq(url)
        done = subprocess.run(["pg_dump", "--format=custom", "--file", str(target), where],
                              capture_output=True, text=True, check=False, env=env)
        if done.returncode != 0:
            raise BackupError(f"pg_dump failed: {done.stderr.strip()[:300]}")
        written.append(target)
    else:
        raise BackupError(f"cannot back up a {kind} database")
    blobs = Path(data_dir) / "blobs"
    blob_files = 0
    if blobs.is_dir():
        shutil.copytree(blobs, dest / "blobs",
                        ignore=shutil.ignore_patterns(".tmp-*"))  # unfinished writes
        blob_files = sum(1 for p in (dest / "blobs").rglob("*") if p.is_file())
        written.append(dest / "blobs")
    keys = []
    for name in KEY_FILES:
        source_key = Path(data_dir) / name
        if source_key.is_file():
            fd = os.open(dest / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(source_key.read_bytes())
            keys.append(name)
            written.append(dest / name)
    os.sync()  # everything above is on disk before the manifest says the backup is whole
    manifest = {"format": FORMAT, "created": datetime.now(UTC).isoformat(timespec="seconds"),
                "database": kind, "database_file": target.name, "blob_files": blob_files,
                "keys": keys}
    with open(dest / MANIFEST, "w", encoding="utf-8") as fh:
        json.dump(manifest, fh, indent=2)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    written.append(dest / MANIFEST)
    return written
