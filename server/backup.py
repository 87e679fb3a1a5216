"""A consistent copy of the database and the blobs while the server runs.

The database is copied first (SQLite's online backup API, or pg_dump), then the blob files:
a blob is written and fsynced before the commit that references it, and blobs never change,
so every blob the copied database refers to is already on disk when the files are copied.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
from pathlib import Path

from sqlalchemy.engine import make_url


class BackupError(RuntimeError):
    pass


def backup(database_url: str, data_dir: str, dest: Path) -> list[Path]:
    dest.mkdir(parents=True, exist_ok=True)
    if any(dest.iterdir()):
        raise BackupError(f"{dest} is not empty")
    url = make_url(database_url)
    written = []
    if url.get_backend_name() == "sqlite":
        target = dest / "server.db"
        source = sqlite3.connect(url.database)
        try:
            copy = sqlite3.connect(target)
            with copy:
                source.backup(copy)
            copy.close()
        finally:
            source.close()
        written.append(target)
    elif url.get_backend_name() == "postgresql":
        if shutil.which("pg_dump") is None:
            raise BackupError("pg_dump is needed to back up PostgreSQL")
        target = dest / "database.dump"
        env_url = url.set(drivername="postgresql").render_as_string(hide_password=False)
        done = subprocess.run(["pg_dump", "--format=custom", "--file", str(target), env_url],
                              capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise BackupError(f"pg_dump failed: {done.stderr.strip()[:300]}")
        written.append(target)
    else:
        raise BackupError(f"cannot back up a {url.get_backend_name()} database")
    blobs = Path(data_dir) / "blobs"
    if blobs.is_dir():
        shutil.copytree(blobs, dest / "blobs",
                        ignore=shutil.ignore_patterns(".tmp-*"))  # unfinished writes
        written.append(dest / "blobs")
    return written
