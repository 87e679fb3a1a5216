"""The form list document, rendered once for each state of a project's forms.

Each request reads the project's open forms and their current versions (one indexed query
without the XForm bytes). Those rows are the list's revision: the rendered document is cached
under them, so publishing a version, or opening or closing a form, through any app server
sharing the database, gives a new document at the next request, and nothing in this process
has to be told. A volunteer with assigned forms gets only those rows, so its assignments are
part of the key too. The ETag is the document's digest; a matching If-None-Match gets a 304.

A volunteer's token request, the most frequent one, finds its user and that user's rows in a
single statement (`token_listing`), so the token is still checked at every request.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import NamedTuple
from urllib.parse import quote

from sqlalchemy import Connection, and_, bindparam, join, select
from sqlalchemy.orm import Session

from server.db.models import Form, FormVersion, User
from server.domain.accounts import token_hash
from server.domain.assignments import visible_clause, visible_to_user_row
from server.domain.submissions import form_schema
from server.openrosa import render

_LISTED_COLUMNS = (Form.xml_form_id, FormVersion.id, FormVersion.version, FormVersion.title,
                   FormVersion.md5)

_LISTED = (
    select(*_LISTED_COLUMNS)
    .join(FormVersion, FormVersion.id == Form.current_version_id)
    .where(Form.project_id == bindparam("project_id"), Form.state == "open", visible_clause())
    .order_by(Form.xml_form_id)
)

# The token's user, once per listed form (once with NULL forms when none is listed).
_TOKEN_LISTING = (
    select(User.id, User.role, User.project_id, User.active, *_LISTED_COLUMNS)
    .select_from(User)
    .outerjoin(join(Form, FormVersion, FormVersion.id == Form.current_version_id),
               and_(Form.project_id == bindparam("project_id"), Form.state == "open",
                    visible_to_user_row()))
    .where(User.token_hash == bindparam("token_hash"))
    .order_by(Form.xml_form_id)
)


class TokenUser(NamedTuple):
    """What the form list needs to know about a token's user (read without the ORM)."""

    id: int
    role: str
    project_id: int | None
    active: bool


def token_listing(connection: Connection, token: str,
                  project_id: int) -> tuple[TokenUser | None, tuple[tuple, ...]]:
    """The token's user (None: unknown or revoked) and the rows of the forms it lists."""
    if not token or len(token) > 100:
        return None, ()
    result = connection.execute(_TOKEN_LISTING,
                                {"token_hash": token_hash(token), "project_id": project_id})
    user, rows = None, []
    for row in result:
        user = TokenUser(*row[:4])
        if row[4] is not None:
            rows.append(tuple(row[4:]))
    return user, tuple(rows)


def listed_rows(session: Session, project_id: int, user_id: int | None) -> tuple[tuple, ...]:
    """`user_id`: a volunteer limited to its assigned forms (None: every open form)."""
    return tuple(tuple(r) for r in session.execute(
        _LISTED, {"project_id": project_id, "user_id": user_id}))


class FormListCache:
    """A small LRU of rendered form lists: (body, digest) by everything that decides the body."""

    def __init__(self, size: int = 256):
        self._items: OrderedDict[tuple, tuple[bytes, str]] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def document(self, rows: tuple[tuple, ...], project_id: int, base: str,
                 form_id: str | None, session: Callable[[], Session]) -> tuple[bytes, str]:
        """`rows` from `listed_rows` or `token_listing`; `session` is only opened to render a
        list not seen before."""
        if form_id is not None:
            rows = tuple(r for r in rows if r[0] == form_id)
        # `base` carries the volunteer's token (download URLs keep its prefix): the key stays
        # in this process's memory only, like the token in the request itself.
        key = (project_id, base, rows)
        with self._lock:
            hit = self._items.get(key)
            if hit is not None:
                self._items.move_to_end(key)
                return hit
        body = render.form_list(_entry(session(), base, row) for row in rows)
        item = (body, hashlib.sha256(body).hexdigest()[:32])
        with self._lock:
            self._items[key] = item
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return item


def _entry(session: Session, base: str, row) -> render.FormListEntry:
    xml_form_id, version_id, version, title, md5 = row
    path = f"{base}/forms/{quote(xml_form_id, safe='')}"
    if version:
        path += f"/versions/{quote(version, safe='')}"
    has_media = bool(form_schema(session, version_id, md5).media_references())
    return render.FormListEntry(form_id=xml_form_id, name=title, version=version, md5=md5,
                                download_url=f"{path}.xml",
                                manifest_url=f"{path}/manifest" if has_media else None)
