"""Forms: the list, one form, a new form, drafts, their attachments, publishing a draft.

A new version goes through a draft, as in Central: the draft is uploaded (or copied from the
current version), its files are uploaded one by one, and publishing makes it the version
Collect gets. Supervisors read; every change is an admin's. The form's XML stays at the
OpenRosa URL (`…/forms/<id>.xml`), which accepts the same bearer token.
"""

from __future__ import annotations

import mimetypes
import re
from urllib.parse import unquote

from flask import current_app, request
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import defer

from server.central import bp
from server.central.common import (
    AlreadyExists,
    MissingParameter,
    UnexpectedValue,
    Unparseable,
    caller,
    iso,
    project,
    query_bool,
    success,
)
from server.db.models import Blob, Form, FormMedia, FormVersion
from server.domain import accounts
from server.domain import forms as forms_domain
from server.errors import NotFound, PublishError, TooLarge, problem
from server.web_context import blob_store, db_session

FORMS = "/v1/projects/<int:project_id>/forms"
FORM = FORMS + "/<form_id>"
MAX_DEFINITION_BYTES = 10 * 1024 * 1024  # as the forms page's upload
XML_TYPES = frozenset({"application/xml", "text/xml"})
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
XLS_TYPE = "application/vnd.ms-excel"

XlsFormInvalid = problem(400.15, "Không chuyển được XLSForm thành biểu mẫu.",
                         "The given XLSForm file was not valid.", "XlsFormInvalid")
XlsFormWarnings = problem(400.16, "XLSForm có cảnh báo; gửi lại với ignoreWarnings=true nếu "
                          "vẫn muốn dùng.", "The XLSForm has warnings; send it again with "
                          "ignoreWarnings=true to accept them.", "XlsFormWarnings")
VersionTaken = problem(409.6, "Phiên bản này của biểu mẫu đã được đăng.",
                       "This version of the form has already been published.", "VersionTaken")


# JSON ---------------------------------------------------------------------------------------


def form_json(form: Form, fv: FormVersion) -> dict:
    """Central's Form; a draft's own version is in its XForm (the row holds a mark)."""
    draft = fv.id == form.draft_version_id
    version = (forms_domain.schema_of(fv.xml).version or "") if draft else fv.version
    return {"projectId": form.project_id, "xmlFormId": form.xml_form_id, "name": fv.title,
            "version": version, "enketoId": None, "keyId": None, "hash": fv.md5,
            "state": form.state, "createdAt": iso(form.created_at), "updatedAt": None,
            "publishedAt": None if draft else iso(fv.published_at)}


def attachment_json(name: str, row: FormMedia | None, blob: Blob | None) -> dict:
    """Central's FormAttachment. A file the server builds for each device (an entity list,
    a register) exists without stored bytes; its hash depends on who downloads it."""
    kind = (mimetypes.guess_type(name)[0] or "").split("/")[0]
    return {"name": name, "type": kind if kind in ("image", "audio", "video") else "file",
            "hash": blob.md5 if blob is not None else None,
            "exists": row is not None, "blobExists": blob is not None,
            "datasetExists": name in forms_domain.ENTITY_LISTS and row is not None,
            "updatedAt": iso(blob.created_at) if blob is not None else None}


# Lookups ------------------------------------------------------------------------------------


def the_form(project_id: int, form_id: str, *, write: bool = False) -> Form:
    project(project_id, write=write)
    form = forms_domain.get_form(db_session(), project_id, form_id)
    if form is None:
        raise NotFound(f"form {form_id}")
    return form


def the_draft(form: Form) -> FormVersion:
    draft = forms_domain.draft_of(db_session(), form)
    if draft is None:
        raise NotFound(f"draft of form {form.xml_form_id}")
    return draft


def shown_version(form: Form) -> FormVersion:
    """The current version, or the draft of a form never published (listed as Central does)."""
    return db_session().get(FormVersion, form.current_version_id or form.draft_version_id)


# Request bodies -----------------------------------------------------------------------------


def read_body(limit: int) -> bytes:
    """The raw body, sent with a Content-Length or chunked; never more than `limit` read."""
    data = request.stream.read(limit + 1)
    if len(data) > limit:
        raise TooLarge(f"limit {limit} bytes")
    return data


def read_definition(project_id: int) -> forms_domain.Converted | None:
    """The XForm or XLSForm of the body as the XForm to store; None for an empty body.
    An XLSForm without a form id takes the X-XlsForm-FormId-Fallback header's."""
    data = read_body(MAX_DEFINITION_BYTES)
    if not data:
        return None
    mimetype, fallback = request.mimetype, None
    if mimetype in XML_TYPES:
        filename = "form.xml"
    elif mimetype == XLSX_TYPE:
        # pyodk sends the file's stem percent-encoded
        fallback = unquote(request.headers.get("X-XlsForm-FormId-Fallback", "")).strip() or None
        filename = re.sub(r"[^\w.-]", "_", fallback or "form") + ".xlsx"  # kept for download
    elif mimetype == XLS_TYPE:
        raise UnexpectedValue("an .xls workbook is not accepted: save it as .xlsx (Excel "
                              "2007 or later) and upload that")
    else:
        raise UnexpectedValue(f"{mimetype or 'no Content-Type'}: send an XForm "
                              f"(application/xml) or an XLSForm ({XLSX_TYPE})")
    try:
        converted = forms_domain.convert_file(
            db_session(), project_id, filename, data, ward=current_app.extensions.get("ward"),
            validate=bool(current_app.config["VALIDATE_FORMS"]), fallback_id=fallback)
    except PublishError as exc:
        raise (XlsFormInvalid if mimetype == XLSX_TYPE else Unparseable)(str(exc)) from exc
    if converted.warnings and not query_bool("ignoreWarnings"):
        raise XlsFormWarnings("; ".join(converted.warnings)[:2000])
    return converted


# Forms --------------------------------------------------------------------------------------


@bp.get(FORMS)
def list_forms(project_id: int):
    project(project_id)
    db = db_session()
    shown = func.coalesce(Form.current_version_id, Form.draft_version_id)
    rows = db.execute(
        select(Form, FormVersion).join(FormVersion, FormVersion.id == shown)
        .where(Form.project_id == project_id).order_by(Form.xml_form_id)
        .options(defer(FormVersion.xml), defer(FormVersion.xlsform))).all()
    return [form_json(form, fv) for form, fv in rows]


@bp.get(FORM)
def get_form(project_id: int, form_id: str):
    form = the_form(project_id, form_id)
    return form_json(form, shown_version(form))


@bp.post(FORMS)
def create_form(project_id: int):
    """`?publish=true` publishes at once; otherwise the form has only a draft to publish."""
    project(project_id, write=True)
    publish = query_bool("publish")
    converted = read_definition(project_id)
    if converted is None:
        raise MissingParameter("the form definition (an XForm or XLSForm body)")
    db = db_session()
    try:
        made = forms_domain.add_form(
            db, blob_store(), project_id, converted.xml, publish=publish,
            xlsform=converted.xlsform, xlsform_name=converted.xlsform_name)
    except forms_domain.FormExists as exc:
        raise AlreadyExists(str(exc)) from exc
    except PublishError as exc:
        raise Unparseable(str(exc)) from exc
    except IntegrityError as exc:  # the same form id created meanwhile
        raise AlreadyExists(f"form {forms_domain.schema_of(converted.xml).form_id}") from exc
    body = form_json(made.form, made.version)
    accounts.audit(db, "form.publish" if publish else "form.draft", actor=caller(),
                   target=made.form.xml_form_id, project=project_id, version=body["version"],
                   md5=made.version.md5)
    return body


# Drafts -------------------------------------------------------------------------------------


@bp.post(FORM + "/draft")
def create_draft(project_id: int, form_id: str):
    """A new draft from the body's XForm or XLSForm, or without a body a copy of the
    current version with its files; it replaces the draft the form had."""
    form = the_form(project_id, form_id, write=True)
    converted = read_definition(project_id)
    db = db_session()
    try:
        if converted is None:
            made = forms_domain.make_draft(db, blob_store(), form)
        else:
            made = forms_domain.make_draft(db, blob_store(), form, converted.xml,
                                           xlsform=converted.xlsform,
                                           xlsform_name=converted.xlsform_name)
    except forms_domain.WrongForm as exc:
        raise UnexpectedValue(str(exc)) from exc
    except PublishError as exc:
        raise Unparseable(str(exc)) from exc
    except IntegrityError as exc:  # another draft of this form made meanwhile
        raise AlreadyExists(f"a draft of form {form_id} made at the same time") from exc
    accounts.audit(db, "form.draft", actor=caller(), target=form.xml_form_id,
                   project=project_id, md5=made.version.md5)
    return success()


@bp.get(FORM + "/draft")
def get_draft(project_id: int, form_id: str):
    form = the_form(project_id, form_id)
    return form_json(form, the_draft(form))


def attachments_json(fv: FormVersion) -> list[dict]:
    """Every file the version's XForm references, uploaded or not."""
    db = db_session()
    rows = {m.filename: m for m in forms_domain.media_of(db, fv)}
    blobs = {b.sha256: b for b in db.scalars(select(Blob).where(
        Blob.sha256.in_([m.blob_sha256 for m in rows.values() if m.blob_sha256])))}
    names = forms_domain.schema_of(fv.xml).media_references()
    return [attachment_json(name, rows.get(name), blobs.get(rows[name].blob_sha256)
                            if name in rows and rows[name].blob_sha256 else None)
            for name in sorted(names)]


@bp.get(FORM + "/draft/attachments")
def list_draft_attachments(project_id: int, form_id: str):
    return attachments_json(the_draft(the_form(project_id, form_id)))


@bp.post(FORM + "/draft/attachments/<name>")
def upload_draft_attachment(project_id: int, form_id: str, name: str):
    """The body is the file (pyodk sends it chunked, without a Content-Length)."""
    form = the_form(project_id, form_id, write=True)
    the_draft(form)
    data = read_body(current_app.config["MAX_SUBMISSION_BYTES"])
    db = db_session()
    try:
        row = forms_domain.set_draft_media(db, blob_store(), form, name, data)
    except PublishError as exc:
        raise UnexpectedValue(str(exc)) from exc
    if row is None:
        raise NotFound(f"{name}: the draft's XForm references no file of this name")
    return attachment_json(name, row, db.get(Blob, row.blob_sha256))


@bp.post(FORM + "/draft/publish")
def publish_draft(project_id: int, form_id: str):
    """`?version=V` publishes the draft as version V (its XForm is changed to say so)."""
    form = the_form(project_id, form_id, write=True)
    the_draft(form)
    version = request.args.get("version")
    if version is not None and not (0 < len(version) <= 255 and version.isprintable()):
        raise UnexpectedValue("version must be 1–255 printable characters")
    db = db_session()
    try:
        fv = forms_domain.publish_draft(db, form, version)
    except forms_domain.VersionConflict as exc:
        raise VersionTaken(str(exc)) from exc
    except IntegrityError as exc:  # the same version published meanwhile
        raise VersionTaken(f"form {form_id}") from exc
    accounts.audit(db, "form.publish", actor=caller(), target=form.xml_form_id,
                   project=project_id, version=fv.version, md5=fv.md5)
    return success()


@bp.get(FORM + "/attachments")
def list_form_attachments(project_id: int, form_id: str):
    form = the_form(project_id, form_id)
    if form.current_version_id is None:
        raise NotFound(f"form {form_id} is not published")
    return attachments_json(db_session().get(FormVersion, form.current_version_id))
