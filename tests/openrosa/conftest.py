"""A ward with its forms, a small photo form, and Collect clients for each kind of account."""

from __future__ import annotations

import pytest
from pyxform.xls2xform import convert
from sqlalchemy import select

from server.domain import forms as forms_domain

PHOTO_FORM_MD = """
| survey   |              |           |              |                 |
|          | type         | name      | label        | media::image    |
|          | audit        | audit     |              |                 |
|          | text         | name      | Name         |                 |
|          | image        | photo     | Photo        |                 |
|          | note         | logo_note | Our logo     | logo.png        |
|          | begin_repeat | kids      | Kids         |                 |
|          | text         | kid       | Kid          |                 |
|          | image        | kid_photo | Kid photo    |                 |
|          | end_repeat   |           |              |                 |
| settings |              |           |              |                 |
|          | form_id      | version   | form_title   |                 |
|          | photo_form   | 1         | Ảnh hộ       |                 |
"""
LOGO = b"\x89PNG\r\n\x1a\n fake logo bytes"


def xform_from_md(md: str) -> bytes:
    return convert(xlsform=md, pretty_print=True, validate=False, file_type=".md").xform.encode()


def publish(app, xml: bytes, media=None, project_id: int = 1):
    session = app.extensions["db"].session(write=True)
    try:
        result = forms_domain.publish_xform(session, app.extensions["blobs"], project_id, xml,
                                            media=media or {})
        session.commit()
        return result
    finally:
        session.close()


def set_state(app, form_id: str, state: str, project_id: int = 1):
    session = app.extensions["db"].session(write=True)
    try:
        forms_domain.set_state(session, project_id, form_id, state)
        session.commit()
    finally:
        session.close()


def rows(app, model, *where):
    session = app.extensions["db"].session()
    try:
        return list(session.scalars(select(model).where(*where)))
    finally:
        session.close()


@pytest.fixture
def photo_xml(app, ward):
    xml = xform_from_md(PHOTO_FORM_MD)
    publish(app, xml, {"logo.png": LOGO})
    return xml
