"""Submissions: the filtered list, one submission's answers and history, its review thread."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from flask import (
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
from sqlalchemy import func, select, true

from server.db.models import (
    Attachment,
    Form,
    FormVersion,
    ReviewComment,
    Submission,
    SubmissionVersion,
    User,
)
from server.domain import masking, review
from server.domain.forms import schema_of
from server.storage import FileBlobStore
from server.web import bp, scope
from server.web.inputs import (
    REVIEW_STATES,
    ReviewInput,
    SubmissionFilter,
    options,
    review_state_label,
)
from server.web.labels import form_labels
from server.web.templating import lang, tdp_choices
from server.web_context import blob_store, db_session

SV = SubmissionVersion
PAGE_SIZE = 50
INLINE_TYPES = {"image/jpeg", "image/png", "image/gif", "image/webp"}


# Scope --------------------------------------------------------------------------------------


def project_forms(db, project_id: int) -> list[Form]:
    return list(db.scalars(select(Form).where(Form.project_id == project_id)
                           .order_by(Form.xml_form_id)))


def tdp_paths(db, form: Form) -> list[str]:
    """Root paths of the form's `tdp` field over all its versions (groups may have moved)."""
    return review.tdp_paths(db, form, g.setdefault("tdp_paths", {}))


def tdp_condition(db, forms: list[Form], tdp: str):
    """Submissions (joined to their current version) whose `tdp` answer is `tdp`."""
    return review.tdp_condition(db, forms, tdp, g.setdefault("tdp_paths", {}))


def tdp_of(db, form: Form, version: SubmissionVersion) -> str | None:
    return review.tdp_of(db, form, version, g.setdefault("tdp_paths", {}))


def summary(version: SubmissionVersion) -> str:
    """A line that names the submission: its instanceName, else the household it is about."""
    if version.instance_name:
        return version.instance_name
    root = (version.fields or {}).get("root") or {}
    for ending in ("hh_label", "head_name"):
        value = next((v for k, v in root.items() if k.split("/")[-1] == ending and v), None)
        if value:
            return value
    return version.instance_id


def load_submission(sid: int) -> tuple[Submission, Form]:
    """The submission if it is in the actor's project and tổ; 404 / 403 otherwise."""
    db = db_session()
    sub = db.get(Submission, sid)
    form = db.get(Form, sub.form_id) if sub is not None else None
    if form is None or form.project_id != scope.project_id():
        abort(404)
    if scope.team() is not None:
        current = next((v for v in sub.versions if v.current), sub.versions[-1])
        scope.require_tdp(tdp_of(db, form, current))
    return sub, form


# The list -----------------------------------------------------------------------------------


def _local_start(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, ZoneInfo(current_app.config["TIMEZONE"]))


def _volunteers(db, project_id: int) -> list[User]:
    q = select(User).where(User.project_id == project_id, User.role != "admin")
    if scope.team() is not None:
        q = q.where(User.team == scope.team())
    return list(db.scalars(q.order_by(User.display_name)))


@bp.get("/submissions")
def submissions():
    db = db_session()
    pid = scope.project_id()
    forms = project_forms(db, pid)
    people = _volunteers(db, pid)
    inp = SubmissionFilter(formdata=request.args)
    every = [("", _("Tất cả"))]
    inp.form.choices = options(every + [(f.xml_form_id, _form_title(db, f)) for f in forms])
    inp.tdp.choices = options(every + tdp_choices())
    inp.volunteer.choices = options(every + [(str(u.id), u.display_name) for u in people])
    inp.state.choices = options(every + [(s, review_state_label(s)) for s in REVIEW_STATES])
    f = inp.clean()
    where = [Form.project_id == pid]
    if scope.team() is not None:
        where.append(tdp_condition(db, forms, scope.team()))
    if "form" in f:
        where.append(Form.xml_form_id == f["form"])
    if "tdp" in f:
        where.append(tdp_condition(db, forms, f["tdp"]))
    if f.get("volunteer", "").isdigit() and len(f["volunteer"]) <= 9:
        where.append(Submission.submitter_id == int(f["volunteer"]))
    if f.get("state") in REVIEW_STATES:
        where.append(Submission.review_state == f["state"])
    if "date_from" in f:
        where.append(Submission.created_at >= _local_start(f["date_from"]))
    if "date_to" in f and f["date_to"] < dt.date.max:
        where.append(Submission.created_at < _local_start(f["date_to"] + dt.timedelta(days=1)))
    base = (select(Submission.id).join(Form, Form.id == Submission.form_id)
            .join(SV, (SV.submission_id == Submission.id) & (SV.current == true()))
            .where(*where))
    total = db.scalar(select(func.count()).select_from(base.subquery())) or 0
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(f["page"], pages)
    q = (select(Submission, SV, Form, User.display_name)
         .join(Form, Form.id == Submission.form_id)
         .join(SV, (SV.submission_id == Submission.id) & (SV.current == true()))
         .outerjoin(User, User.id == Submission.submitter_id)
         .where(*where).order_by(Submission.id.desc())
         .limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE))
    found = db.execute(q).all()
    edits = dict(db.execute(select(SV.submission_id, func.count() - 1)
                            .where(SV.submission_id.in_([r[0].id for r in found]))
                            .group_by(SV.submission_id)).all()) if found else {}
    rows = [{"sub": s, "version": v, "form": fm, "title": _form_title(db, fm), "name": summary(v),
             "submitter": name, "tdp": tdp_of(db, fm, v), "edits": edits.get(s.id, 0)}
            for s, v, fm, name in found]
    args = {k: v for k, v in request.args.items() if k != "page" and len(v) <= 255}
    return render_template("submissions.html", inp=inp, rows=rows, total=total, page=page,
                           pages=pages, args=args)


def _form_title(db, form: Form) -> str:
    version = db.get(FormVersion, form.current_version_id) if form.current_version_id else None
    if version is None:
        return form.xml_form_id
    return form_labels(version.xml, lang()).title or version.title


# One submission -----------------------------------------------------------------------------


@dataclass
class Answer:
    label: str
    value: str
    path: str
    name: str
    attachment: Attachment | None = None
    inline: bool = False
    calculated: bool = False


@dataclass
class Section:
    label: str
    answers: list[Answer] = field(default_factory=list)
    items: list[list[Section]] = field(default_factory=list)  # repeat items


def _display(f, raw: str, labels) -> str:
    if f.type == "geopoint":
        parts = raw.split()
        if len(parts) >= 2:
            acc = f" (± {parts[3]} m)" if len(parts) >= 4 else ""
            return f"{parts[0]}, {parts[1]}{acc}"
    if f.select_multiple:
        return "; ".join(labels.choice(f.path, v) for v in raw.split())
    if f.control in ("select1", "rank") or f.type == "select1":
        return labels.choice(f.path, raw)
    return raw


def answers(schema, labels, fields: dict, files: dict[str, Attachment],
            mask_phones: bool = False) -> tuple[list[Section], list[Answer]]:
    """The labelled answers, grouped as the form groups them; unlabelled ones apart."""
    others: list[Answer] = []
    repeats = fields.get("repeats") or {}

    def build(values: dict, repeat: str | None, key: str | None) -> list[Section]:
        sections = [Section("")]
        for f in schema.fields:
            if f.repeat != repeat:
                continue
            label = labels.fields.get(f.path, "")
            if f.kind == "group":
                if label:
                    sections.append(Section(label))
            elif f.kind == "repeat":
                section = Section(label or f.name)
                section.items = [build(item.get("values") or {}, f.path, item.get("key"))
                                 for item in repeats.get(f.rel_path, [])
                                 if item.get("parent_key") == key]
                if section.items:
                    sections.append(section)
            elif raw := values.get(f.table_path) or "":
                shown = (masking.mask_phone(raw) if mask_phones and f.name in masking.PHONE_FIELDS
                         else raw)
                answer = Answer(label, _display(f, shown, labels), f.path, f.name)
                if f.is_binary:
                    answer.attachment = files.get(raw)
                    answer.inline = bool(answer.attachment is not None and
                                         answer.attachment.content_type in INLINE_TYPES)
                if label:
                    sections[-1].answers.append(answer)
                elif repeat is not None:  # inside a repeat a calculation may be its name
                    answer.label, answer.calculated = f.name, True
                    sections[-1].answers.append(answer)
                elif not f.rel_path.startswith("meta/"):
                    others.append(answer)
        return [s for s in sections if s.answers or s.items]

    return build(fields.get("root") or {}, None, fields.get("key")), others


@bp.get("/submissions/<id:sid>")
def submission(sid: int):
    db = db_session()
    sub, form = load_submission(sid)
    versions = list(sub.versions)
    wanted = request.args.get("version", "")
    version = next((v for v in versions if wanted.isdigit() and v.id == int(wanted)),
                   next((v for v in versions if v.current), versions[-1]))
    fv = version.form_version
    schema, labels = schema_of(fv.xml), form_labels(fv.xml, lang())
    files = {a.name: a for a in version.attachments}
    full = masking.sees_full_phone(g.actor, tdp_of(db, form, version))
    sections, others = ([], []) if version.encrypted else answers(
        schema, labels, version.fields or {}, files, mask_phones=not full)
    people = {u.id: u.display_name for u in db.scalars(select(User).where(User.id.in_(
        {v.submitter_id for v in versions} | {c.author_id for c in _comments(db, sub)})))}
    return render_template(
        "submission.html", sub=sub, form=form, version=version, versions=versions,
        title=labels.title or fv.title, name=summary(version), sections=sections, others=others,
        people=people,
        comments=_comments(db, sub), inp=ReviewInput(), tdp=tdp_of(db, form, version),
        attachments=version.attachments)


def _comments(db, sub: Submission) -> list[ReviewComment]:
    return list(db.scalars(select(ReviewComment).where(ReviewComment.submission_id == sub.id)
                           .order_by(ReviewComment.at, ReviewComment.id)))


@bp.post("/submissions/<id:sid>/review")
def review_submission(sid: int):
    db = db_session()
    sub, _form = load_submission(sid)
    inp = ReviewInput()
    if not inp.validate_on_submit():
        abort(400)
    if review.record_review(db, sub, g.actor, inp.state.data or None,
                            inp.comment.data or "") is None:
        flash(_("Chưa có thay đổi nào."), "info")
        return redirect(url_for("web.submission", sid=sid))
    flash(_("Đã lưu."), "ok")
    return redirect(url_for("web.submission", sid=sid))


@bp.get("/submissions/<id:sid>/attachments/<id:aid>")
def attachment(sid: int, aid: int):
    db = db_session()
    load_submission(sid)
    att = db.get(Attachment, aid)
    if att is None or att.version.submission_id != sid or att.blob_sha256 is None:
        abort(404)
    inline = att.content_type in INLINE_TYPES
    mimetype = att.content_type if inline else "application/octet-stream"
    store = blob_store()
    if isinstance(store, FileBlobStore):
        source = store.path(att.blob_sha256)
    else:
        import io

        source = io.BytesIO(store.get(db, att.blob_sha256))
    response = send_file(source, mimetype=mimetype, as_attachment=not inline,
                         download_name=att.name, max_age=0)
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response
