"""`/forms`: the project's published forms and their versions, with downloads of each
version's XLSForm and XForm and its media. Admins also publish a new XLSForm (the same
publishing as `python -m server forms publish`) and open, close or retire a form (`forms
state`); supervisors only read and download.
"""

from __future__ import annotations

from dataclasses import dataclass
from io import BytesIO
from urllib.parse import quote

from flask import (
    Response,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from sqlalchemy import func, select, true
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import defer
from wtforms import SelectField
from wtforms.validators import InputRequired

from server.db.models import AuditEntry, Form, FormMedia, FormVersion, Submission, User
from server.db.models import SubmissionVersion as SV
from server.domain import accounts
from server.domain import forms as forms_domain
from server.errors import PublishError
from server.web import bp, scope
from server.web.inputs import ActionInput, options
from server.web.labels import form_labels
from server.web.review import project_forms, tdp_condition
from server.web.templating import lang, ward
from server.web_context import blob_store, db_session

MAX_XLSFORM_BYTES = 10 * 1024 * 1024
# The whole upload request: the file plus multipart framing and the CSRF field.
MAX_UPLOAD_BODY = MAX_XLSFORM_BYTES + 64 * 1024
UPLOAD_ENDPOINTS = frozenset({"web.upload_form", "web.upload_version"})
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
ZIP_MAGIC = b"PK\x03\x04"  # an .xlsx workbook is a zip archive


def state_label(state: str) -> str:
    return str({
        "open": _l("Đang mở"),
        "closing": _l("Sắp đóng"),
        "closed": _l("Đã đóng"),
    }.get(state, state))


def state_help(state: str) -> str:
    return str({
        "open": _l("hiện trên Collect, nhận phiếu"),
        "closing": _l("ẩn khỏi Collect, vẫn nhận phiếu đã điền"),
        "closed": _l("ẩn khỏi Collect, không nhận phiếu nữa"),
    }.get(state, ""))


class StateInput(FlaskForm):
    state = SelectField(_l("Trạng thái"), validators=[InputRequired()],
                        choices=options((s, s) for s in forms_domain.FORM_STATES))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.state.choices = options(
            (s, f"{state_label(s)} – {state_help(s)}") for s in forms_domain.FORM_STATES)


class UploadRefused(Exception):
    """An upload that publishes nothing: the message for the page and the HTTP status."""

    def __init__(self, message: str, status: int, detail: str | None = None):
        super().__init__(message)
        self.message, self.status, self.detail = message, status, detail


@bp.before_app_request
def bound_upload_body():
    """Refuse an oversized upload before anything reads its body (the CSRF check included:
    this runs after the login guard and before CSRFProtect, both registered around it)."""
    if request.endpoint in UPLOAD_ENDPOINTS:
        request.max_content_length = MAX_UPLOAD_BODY


def _require_admin() -> None:
    if g.actor.role != "admin":
        abort(403)


def _load_form(fid: int) -> Form:
    form = db_session().get(Form, fid)
    if form is None or form.project_id != scope.project_id():
        abort(404)
    return form


def _load_version(fid: int, vid: int) -> tuple[Form, FormVersion]:
    form = _load_form(fid)
    version = db_session().get(FormVersion, vid)
    if version is None or version.form_id != form.id:
        abort(404)
    return form, version


def _title(version: FormVersion | None, fallback: str) -> str:
    if version is None:
        return fallback
    return form_labels(version.xml, lang()).title or version.title


def _submission_counts(db, forms: list[Form]) -> dict[int, int]:
    """Submissions per form; a team leader counts only those of its tổ (as /submissions)."""
    if not forms:
        return {}
    q = select(Submission.form_id, func.count()).where(
        Submission.form_id.in_([f.id for f in forms]))
    if scope.team() is not None:
        q = (q.join(SV, (SV.submission_id == Submission.id) & (SV.current == true()))
             .where(tdp_condition(db, forms, scope.team())))
    return dict(db.execute(q.group_by(Submission.form_id)).all())


@dataclass
class FormRow:
    form: Form
    current: FormVersion | None
    title: str
    versions: int
    submissions: int


def _rows(db) -> list[FormRow]:
    forms = project_forms(db, scope.project_id())
    counts = _submission_counts(db, forms)
    versions = dict(db.execute(
        select(FormVersion.form_id, func.count())
        .where(FormVersion.form_id.in_([f.id for f in forms]),
               FormVersion.version != forms_domain.DRAFT_VERSION)  # a draft is not published
        .group_by(FormVersion.form_id)).all()) if forms else {}
    rows = []
    for form in forms:
        current = db.get(FormVersion, form.current_version_id) if form.current_version_id else None
        rows.append(FormRow(form, current, _title(current, form.xml_form_id),
                            versions.get(form.id, 0), counts.get(form.id, 0)))
    return rows


def _publishers(db, form: Form) -> dict[str, str]:
    """version → who published it from this page (the audit log; the CLI has no actor)."""
    q = (select(AuditEntry, User.display_name).outerjoin(User, User.id == AuditEntry.actor_id)
         .where(AuditEntry.action == "form.publish", AuditEntry.target == form.xml_form_id)
         .order_by(AuditEntry.id))
    out = {}
    for entry, name in db.execute(q).all():
        details = entry.details or {}
        if details.get("project") == form.project_id and name:
            out[str(details.get("version", ""))] = name
    return out


def _list_page(error: UploadRefused | None = None):
    return render_template("forms.html", rows=_rows(db_session()), inp=ActionInput(),
                           error=error, state_label=state_label,
                           max_mb=MAX_XLSFORM_BYTES // (1024 * 1024)), (
        error.status if error else 200)


def _form_page(form: Form, error: UploadRefused | None = None):
    db = db_session()
    # the bytes of every version stay in the database until one is downloaded
    versions = list(db.scalars(
        select(FormVersion).where(FormVersion.form_id == form.id,
                                  FormVersion.version != forms_domain.DRAFT_VERSION)
        .options(defer(FormVersion.xml), defer(FormVersion.xlsform))
        .order_by(FormVersion.published_at.desc(), FormVersion.id.desc())))
    with_xlsform = set(db.scalars(select(FormVersion.id).where(
        FormVersion.form_id == form.id, FormVersion.xlsform.is_not(None))))
    media = {v.id: forms_domain.media_of(db, v) for v in versions}
    current = next((v for v in versions if v.id == form.current_version_id), None)
    state_input = StateInput(formdata=None, state=form.state)
    return render_template(
        "forms_form.html", form=form, current=current, title=_title(current, form.xml_form_id),
        versions=versions, with_xlsform=with_xlsform, media=media,
        publishers=_publishers(db, form),
        submissions=_submission_counts(db, [form]).get(form.id, 0),
        state_input=state_input, error=error, state_label=state_label, state_help=state_help,
        max_mb=MAX_XLSFORM_BYTES // (1024 * 1024)), (error.status if error else 200)


# Pages ---------------------------------------------------------------------------------------


@bp.get("/forms")
def forms():
    return _list_page()


@bp.get("/forms/<id:fid>")
def form_page(fid: int):
    return _form_page(_load_form(fid))


# Downloads -----------------------------------------------------------------------------------


def _attachment(data: bytes, name: str, mimetype: str) -> Response:
    response = send_file(BytesIO(data), mimetype=mimetype, as_attachment=True,
                         download_name=name, max_age=0)
    # RFC 6266 name for Vietnamese file names, as the export downloads send it
    response.headers["Content-Disposition"] = (
        f"attachment; filename*=UTF-8''{quote(name, safe='')}")
    return response


@bp.get("/forms/<id:fid>/versions/<id:vid>/xform")
def download_xform(fid: int, vid: int):
    form, version = _load_version(fid, vid)
    suffix = f"-{version.version}" if version.version else ""
    return _attachment(version.xml, f"{form.xml_form_id}{suffix}.xml", "text/xml")


@bp.get("/forms/<id:fid>/versions/<id:vid>/xlsform")
def download_xlsform(fid: int, vid: int):
    _form, version = _load_version(fid, vid)
    if version.xlsform is None:  # published from an XForm
        abort(404)
    return _attachment(version.xlsform, version.xlsform_name or "form.xlsx", XLSX)


@bp.get("/forms/<id:fid>/versions/<id:vid>/media/<id:mid>")
def download_media(fid: int, vid: int, mid: int):
    _form, version = _load_version(fid, vid)
    db = db_session()
    item = db.get(FormMedia, mid)
    if item is None or item.form_version_id != version.id or item.blob_sha256 is None:
        abort(404)  # files built per user (entity lists) have no stored bytes
    return _attachment(blob_store().get(db, item.blob_sha256), item.filename,
                       item.content_type)


# Admin: publish and state --------------------------------------------------------------------


def _uploaded_xlsform() -> tuple[str, bytes]:
    """The uploaded file's name and bytes, or UploadRefused (nothing read beyond the limit)."""
    if not ActionInput().validate_on_submit():
        abort(400)
    upload = request.files.get("xlsform")
    if upload is None or not upload.filename:
        raise UploadRefused(_("Hãy chọn một tệp XLSForm (.xlsx)."), 400)
    # only the base name, without control characters, is kept (it is stored with the form)
    name = upload.filename.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if c.isprintable())[-200:] or "form.xlsx"
    data = upload.stream.read(MAX_XLSFORM_BYTES + 1)
    if len(data) > MAX_XLSFORM_BYTES:
        raise UploadRefused(_("Tệp quá lớn: tối đa %(mb)s MB.",
                              mb=MAX_XLSFORM_BYTES // (1024 * 1024)), 413)
    if not name.lower().endswith(".xlsx") or not data.startswith(ZIP_MAGIC):
        raise UploadRefused(_("Chỉ nhận tệp XLSForm dạng .xlsx (Excel). Tệp này không phải."),
                            415)
    return name, data


def _publish(expected: Form | None) -> forms_domain.PublishResult:
    """Publish the upload in this request's transaction; UploadRefused if it cannot be."""
    name, data = _uploaded_xlsform()
    db = db_session()
    try:
        result = forms_domain.publish_file(
            db, blob_store(), scope.project_id(), name, data, ward=ward(),
            validate=bool(current_app.config["VALIDATE_FORMS"]), keep_media=True)
    except forms_domain.VersionConflict as exc:
        raise UploadRefused(_(
            "Phiên bản %(version)s của biểu mẫu %(form)s đã được đăng với nội dung khác. "
            "Hãy tăng số phiên bản (cột version ở trang tính settings) rồi tải lên lại.",
            version=exc.version, form=exc.form_id), 409, str(exc)) from exc
    except PublishError as exc:
        raise UploadRefused(_("Không đăng được biểu mẫu. Thông báo của pyxform (kèm trang "
                              "tính và dòng bị lỗi):"), 400, str(exc)) from exc
    except IntegrityError as exc:  # another admin published the same version meanwhile
        raise UploadRefused(_("Biểu mẫu vừa được thay đổi cùng lúc. Hãy tải lại trang và "
                              "thử lại."), 409) from exc
    if expected is not None and result.form_id != expected.xml_form_id:
        raise UploadRefused(_(
            "Tệp này là biểu mẫu %(got)s, không phải %(want)s. Hãy tải nó lên ở trang danh "
            "sách biểu mẫu.", got=result.form_id, want=expected.xml_form_id), 400)
    if result.created:
        digest = forms_domain.get_version(
            db, forms_domain.get_form(db, scope.project_id(), result.form_id), result.version)
        accounts.audit(db, "form.publish", actor=g.actor, target=result.form_id,
                       project=scope.project_id(), version=result.version, file=name,
                       md5=digest.md5 if digest else None)
        flash(_("Đã đăng phiên bản %(version)s của biểu mẫu %(form)s. Collect sẽ nhận "
                "phiên bản này ở lần tải biểu mẫu tới.",
                version=result.version, form=result.form_id), "ok")
    else:
        flash(_("Phiên bản %(version)s của biểu mẫu %(form)s đã được đăng đúng như tệp này: "
                "không có gì thay đổi.", version=result.version, form=result.form_id), "ok")
    for warning in result.warnings:
        flash(_("Lưu ý: %(text)s", text=warning), "warning")
    return result


def _published_form_url(result: forms_domain.PublishResult) -> str:
    form = forms_domain.get_form(db_session(), scope.project_id(), result.form_id)
    return url_for("web.form_page", fid=form.id)


@bp.post("/forms")
def upload_form():
    _require_admin()
    try:
        result = _publish(None)
    except UploadRefused as refused:
        db_session().rollback()  # nothing of a refused upload is kept
        return _list_page(refused)
    return redirect(_published_form_url(result))


@bp.post("/forms/<id:fid>/versions")
def upload_version(fid: int):
    _require_admin()
    form = _load_form(fid)
    try:
        result = _publish(form)
    except UploadRefused as refused:
        db_session().rollback()
        return _form_page(_load_form(fid), refused)
    return redirect(_published_form_url(result))


@bp.post("/forms/<id:fid>/state")
def form_state(fid: int):
    _require_admin()
    form = _load_form(fid)
    inp = StateInput()
    if not inp.validate_on_submit():
        abort(400)
    db = db_session()
    before = form.state
    forms_domain.set_state(db, form.project_id, form.xml_form_id, inp.state.data)
    if before != form.state:
        accounts.audit(db, "form.state", actor=g.actor, target=form.xml_form_id,
                       project=form.project_id, before=before, after=form.state)
        flash(_("Biểu mẫu %(form)s: %(state)s (%(help)s).", form=form.xml_form_id,
                state=state_label(form.state), help=state_help(form.state)), "ok")
    return redirect(url_for("web.form_page", fid=form.id))
