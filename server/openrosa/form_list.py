"""The form list document, rendered once for each state of a project's forms.

Each request reads the project's open forms and their current versions (one indexed query
without the XForm bytes). Those rows are the list's revision: the rendered document is cached
under them, so publishing a version, or opening or closing a form, through any app server
sharing the database, gives a new document at the next request, and nothing in this process
has to be told. A volunteer with assigned forms gets only those rows, so its assignments are
part of the key too. The ETag is the document's digest; a matching If-None-Match gets a 304.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from urllib.parse import quote

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from server.db.models import Form, FormVersion
from server.domain.assignments import visible_clause
from server.domain.submissions import form_schema
from server.openrosa import render

_LISTED = (
    select(Form.xml_form_id, FormVersion.id, FormVersion.version, FormVersion.title,
           FormVersion.md5)
    .join(FormVersion, FormVersion.id == Form.current_version_id)
    .where(Form.project_id == bindparam("project_id"), Form.state == "open", visible_clause())
    .order_by(Form.xml_form_id)
)


class FormListCache:
    """A small LRU of rendered form lists: (body, digest) by everything that decides the body."""

    def __init__(self, size: int = 256):
        self._items: OrderedDict[tuple, tuple[bytes, str]] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def document(self, session: Session, project_id: int, base: str,
                 form_id: str | None, user_id: int | None = None) -> tuple[bytes, str]:
        """`user_id`: a volunteer limited to its assigned forms (None: every open form)."""
        rows = tuple(tuple(r) for r in session.execute(
            _LISTED, {"project_id": project_id, "user_id": user_id}))
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
        body = render.form_list(_entry(session, base, row) for row in rows)
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
