"""Per-request access to the database session and blob store (the one commit point)."""

from __future__ import annotations

from flask import current_app, g, request
from sqlalchemy.orm import Session

from server.db import Database
from server.storage import BlobStore

READ_METHODS = {"GET", "HEAD", "OPTIONS"}


def database() -> Database:
    return current_app.extensions["db"]


def blob_store() -> BlobStore:
    return current_app.extensions["blobs"]


def db_session() -> Session:
    """One session per request; writes only in requests that may write."""
    if "db_session" not in g:
        g.db_session = database().session(write=request.method not in READ_METHODS)
    return g.db_session
