"""Submissions: the list, one submission, creation from its XML, its attachments, edits,
review and comments.

A submission is named by the instanceID it was first sent with, as in Central. Creating and
editing take the OpenRosa path (identity number blanked, households matched, entities applied,
the group writer's commit), so a 200 means stored. A team leader (a supervisor with a tổ)
reads, reviews and writes only its tổ's submissions, as on the web review page; others'
answer 404.
"""

from __future__ import annotations

import io
import mimetypes
from collections.abc import Callable
from typing import TypeVar
from urllib.parse import quote

from flask import Response, current_app, g, request, send_file
from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from server import intake
from server.central import bp
from server.central.common import (
    AlreadyExists,
    MissingParameter,
    UnexpectedValue,
    Unparseable,
    caller,
    iso,
    json_body,
    project,
    success,
    team_scope,
)
from server.db.models import (
    Attachment,
    Form,
    ReviewComment,
    Submission,
    SubmissionVersion,
)
from server.domain import accounts, review
from server.domain import forms as forms_domain
from server.domain import submissions as ingest
from server.errors import EditConflict, Forbidden, FormNotFound, NotFound, problem
from server.storage import FileBlobStore
from server.web_context import blob_store, database, db_session

SV = SubmissionVersion
T = TypeVar("T")
ROUTE = "/v1/projects/<int:project_id>/forms/<form_id>/submissions"
ONE = ROUTE + "/<iid>"
MAX_COMMENT = 4000  # as the web review form

ExpectedDeprecation = problem(
    400.19, "Phiếu sửa phải có meta/deprecatedID là instanceID của bản hiện tại.",
    "This PUT expects a meta/deprecatedID naming the current version's instanceID.",
    "ExpectedDeprecation")
InstanceIdConflict = problem(
    409.8, "instanceID của bản sửa đã có trên máy chủ; hãy dùng một mã mới.",
    "The instanceID of this edit already exists on the server; use a new one.",
    "InstanceIdConflict")


# Scope --------------------------------------------------------------------------------------


def _team() -> str | None:
    """The tổ the caller is limited to; the ward office ("ward") sees the whole project."""
    team = team_scope()
    return None if team in (None, "ward") else team


def _paths() -> dict:
    return g.setdefault("tdp_paths", {})


def _form(project_id: int, form_id: str) -> Form:
    project(project_id)
    form = forms_domain.get_form(db_session(), project_id, form_id)
    if form is None or form.current_version_id is None:
        raise FormNotFound(form_id)
    return form


def _submission(form: Form, iid: str) -> tuple[Submission, SubmissionVersion]:
    """The logical submission and its current version, if the caller's tổ may see it."""
    db = db_session()
    found = db.execute(
        select(Submission, SV)
        .join(SV, (SV.submission_id == Submission.id) & SV.current.is_(True))
        .where(Submission.form_id == form.id, Submission.instance_id == iid)).first()
    team = _team()
    if found is None or (team is not None and
                         review.tdp_of(db, form, found[1], _paths()) != team):
        raise NotFound(f"submission {iid[:100]}")
    return found[0], found[1]


def _require_team_data(form: Form, prepared: ingest.Prepared) -> None:
    """A team leader writes only its tổ's data (it could not read anything else back)."""
    team = _team()
    if team is None:
        return
    db = db_session()
    fv = forms_domain.get_version(db, form, prepared.envelope.version or "")
    if fv is None:
        return  # the ingest refuses an unknown form version
    fields, _expected = prepared.read(ingest.form_schema(db, fv.id, fv.md5))
    if review.tdp_of_fields(db, form, fields, _paths()) != team:
        raise Forbidden(f"only submissions of {team}")


# Central's submission JSON --------------------------------------------------------------------


def _json_rows(form: Form, *where) -> list[dict]:
    """Submissions of the form as Central describes them, newest first."""
    db = db_session()
    versions, agents = aliased(SV), aliased(SV)
    edits = (select(func.count()).select_from(versions)
             .where(versions.submission_id == Submission.id).scalar_subquery() - 1)
    first_agent = (select(agents.user_agent).where(agents.submission_id == Submission.id)
                   .order_by(agents.id).limit(1).scalar_subquery())
    reviewed = (select(func.max(ReviewComment.at))
                .where(ReviewComment.submission_id == Submission.id,
                       ReviewComment.review_state.is_not(None)).scalar_subquery())
    query = (select(Submission.instance_id, Submission.submitter_id, Submission.device_id,
                    Submission.review_state, Submission.created_at, SV.instance_id,
                    SV.instance_name, SV.submitter_id, SV.device_id, SV.user_agent,
                    SV.received_at, edits, first_agent, reviewed)
             .join(SV, (SV.submission_id == Submission.id) & SV.current.is_(True))
             .where(Submission.form_id == form.id, *where)
             .order_by(Submission.id.desc()))
    out = []
    for (iid, submitter, device, state, created, v_iid, name, v_submitter, v_device, v_agent,
         received, n_edits, agent, reviewed_at) in db.execute(query):
        updated = max((t for t in (received if n_edits else None, reviewed_at) if t),
                      default=None)
        out.append({
            "instanceId": iid, "submitterId": submitter, "deviceId": device,
            "userAgent": agent, "instanceName": name,
            "reviewState": review.central_state(state, n_edits),
            "createdAt": iso(created), "updatedAt": iso(updated), "deletedAt": None,
            "currentVersion": {
                "instanceId": v_iid, "instanceName": name, "submitterId": v_submitter,
                "deviceId": v_device, "userAgent": v_agent, "createdAt": iso(received),
                "current": True},
        })
    return out


def _one_json(form: Form, submission_id: int) -> dict:
    return _json_rows(form, Submission.id == submission_id)[0]


# Writing through the OpenRosa path ----------------------------------------------------------


def _read_only_from_here() -> Session:
    """Writes go through the group writer: end the request's own transaction (on SQLite it
    holds the write lock) before the body is received, and read on without it."""
    db_session().close()
    g.db_session = database().session(write=False)
    return g.db_session


def _commit(work: Callable[[Session], T]) -> T:
    """Run `work` in the submissions' group writer (shared with Collect's route); returns once
    committed. A racing request that stored the same instanceID first makes the retry see its
    row (and refuse)."""
    result = intake.commit(work)
    db_session().close()  # its snapshot predates the commit: read on in a fresh one
    return result


def _prepared_body() -> ingest.Prepared:
    raw = request.get_data(cache=False)
    if not raw.strip():
        raise Unparseable("expected the submission XML as the request body")
    cfg = current_app.config
    return ingest.prepare(raw, [], secret=cfg["SECRET_KEY"], pid_key=cfg["PID_KEY"])


def _require_form_id(prepared: ingest.Prepared, form_id: str) -> None:
    if prepared.envelope.form_id != form_id:
        raise UnexpectedValue(f"the XML's form id {prepared.envelope.form_id[:100]!r} "
                              f"does not match the form ID in the URL")


def _uploader() -> ingest.Uploader:
    return ingest.Uploader(user_id=caller().id,
                           device_id=request.args.get("deviceID", "")[:255] or None,
                           user_agent=request.headers.get("User-Agent"))


def _ingester(prepared: ingest.Prepared, project_id: int
              ) -> Callable[[Session], ingest.IngestResult]:
    """The ingest of this request's upload, with everything taken from the request now: the
    writer may run it on another request's thread."""
    store, uploader = blob_store(), _uploader()
    zone, matcher = current_app.config["TIMEZONE"], current_app.extensions["matcher"]
    return lambda session: ingest.ingest_prepared(
        session, store, prepared, project_id=project_id, uploader=uploader, timezone=zone,
        matcher=matcher)


def _instance_taken(session: Session, form_id: int, instance_id: str) -> bool:
    return session.scalar(select(SV.id).where(SV.form_id == form_id,
                                              SV.instance_id == instance_id)) is not None


# Routes ---------------------------------------------------------------------------------------


@bp.get(ROUTE)
def list_submissions(project_id: int, form_id: str):
    form = _form(project_id, form_id)
    team = _team()
    where = [] if team is None else [review.tdp_condition(db_session(), [form], team, _paths())]
    return _json_rows(form, *where)


@bp.post(ROUTE)
def create_submission(project_id: int, form_id: str):
    """A new submission from its XML. Unlike Collect's resend, any second POST of an
    instanceID is refused (409.3), as Central's REST route does; files follow one by one."""
    _read_only_from_here()
    form = _form(project_id, form_id)
    prepared = _prepared_body()
    _require_form_id(prepared, form_id)
    if prepared.envelope.deprecated_id:
        raise UnexpectedValue("an edit (meta/deprecatedID) is sent with PUT to "
                              "…/submissions/<instanceId>")
    _require_team_data(form, prepared)
    form_pk, store = form.id, _ingester(prepared, project_id)

    def work(session):
        if _instance_taken(session, form_pk, prepared.instance_id):
            raise AlreadyExists(f"instanceID {prepared.instance_id[:100]}")
        return store(session)

    result = _commit(work)
    return _one_json(form, result.submission_id)


@bp.get(ONE)
def get_submission(project_id: int, form_id: str, iid: str):
    form = _form(project_id, form_id)
    sub, _current = _submission(form, iid)
    return _one_json(form, sub.id)


@bp.get(ONE + ".xml")
def submission_xml(project_id: int, form_id: str, iid: str):
    _sub, current = _submission(_form(project_id, form_id), iid)
    return Response(current.xml, content_type="application/xml; charset=utf-8")


@bp.put(ONE)
def edit_submission(project_id: int, form_id: str, iid: str):
    """An edit: the XML's meta/deprecatedID names the current version, as Collect's edit."""
    _read_only_from_here()
    form = _form(project_id, form_id)
    sub, current = _submission(form, iid)
    prepared = _prepared_body()
    _require_form_id(prepared, form_id)
    deprecated = prepared.envelope.deprecated_id
    if not deprecated:
        raise ExpectedDeprecation()
    if deprecated != current.instance_id:
        raise EditConflict(deprecated[:100])
    _require_team_data(form, prepared)
    form_pk, sub_pk, store = form.id, sub.id, _ingester(prepared, project_id)

    def work(session):
        now_current = session.scalar(select(SV.instance_id).where(
            SV.submission_id == sub_pk, SV.current.is_(True)))
        if now_current != deprecated:  # another edit came first
            raise EditConflict(deprecated[:100])
        if _instance_taken(session, form_pk, prepared.instance_id):
            raise InstanceIdConflict(prepared.instance_id[:100])
        return store(session)

    _commit(work)
    return _one_json(form, sub_pk)


@bp.patch(ONE)
def update_submission(project_id: int, form_id: str, iid: str):
    """`{"reviewState": …}`: a review step, as on the web review page."""
    form = _form(project_id, form_id)
    sub, _current = _submission(form, iid)
    body = json_body()
    if "reviewState" not in body:
        raise MissingParameter("reviewState")
    word = body["reviewState"]
    if word is not None and not isinstance(word, str):
        raise UnexpectedValue("reviewState")
    db = db_session()
    edits = db.scalar(select(func.count()).where(SV.submission_id == sub.id)) - 1
    try:
        state = review.state_from_central(word, edits)
    except review.NotAReviewState as exc:
        raise UnexpectedValue(str(exc)) from exc
    review.record_review(db, sub, caller(), state)
    return _one_json(form, sub.id)


# Attachments ----------------------------------------------------------------------------------


def _attachments(current: SubmissionVersion) -> list[Attachment]:
    return list(db_session().scalars(select(Attachment).where(
        Attachment.submission_version_id == current.id).order_by(Attachment.name)))


@bp.get(ONE + "/attachments")
def list_attachments(project_id: int, form_id: str, iid: str):
    _sub, current = _submission(_form(project_id, form_id), iid)
    return [{"name": a.name, "exists": a.blob_sha256 is not None}
            for a in _attachments(current)]


@bp.get(ONE + "/attachments/<filename>")
def get_attachment(project_id: int, form_id: str, iid: str, filename: str):
    _sub, current = _submission(_form(project_id, form_id), iid)
    att = next((a for a in _attachments(current) if a.name == filename), None)
    if att is None or att.blob_sha256 is None:
        raise NotFound(filename[:100])
    store = blob_store()
    if isinstance(store, FileBlobStore):
        source = store.path(att.blob_sha256)
    else:
        source = io.BytesIO(store.get(db_session(), att.blob_sha256))
    response = send_file(source, mimetype=_content_type(att.name, att.content_type),
                         as_attachment=True, download_name=att.name, max_age=0)
    response.headers["Content-Disposition"] = (
        f"attachment; filename*=UTF-8''{quote(att.name, safe='')}")
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


def _content_type(name: str, given: str | None) -> str:
    return given or mimetypes.guess_type(name)[0] or "application/octet-stream"


@bp.post(ONE + "/attachments/<filename>")
def upload_attachment(project_id: int, form_id: str, iid: str, filename: str):
    """One file the current version's XML references, as the body (chunked or not)."""
    _read_only_from_here()
    form = _form(project_id, form_id)
    sub, current = _submission(form, iid)
    if filename not in {a.name for a in _attachments(current)}:
        raise NotFound(f"{filename[:100]} is not a file of this submission")
    data = request.get_data(cache=False)
    if not data:
        raise Unparseable("expected the file as the request body")
    content_type = (request.mimetype or "")[:100] or None
    upload = ingest.UploadedFile(name=filename, data=data,
                                 content_type=_content_type(filename, content_type))
    store = blob_store()
    written = store.write(data)  # the file is on disk before the transaction records it
    actor, sub_pk, instance_id = caller(), sub.id, sub.instance_id

    def work(session):
        if not ingest.attach_to_current(session, store, sub_pk, upload, written):
            raise NotFound(f"{filename[:100]} is not a file of this submission")
        accounts.audit(session, "submission.attachment", actor=actor, target=str(sub_pk),
                       instance_id=instance_id, name=filename, sha256=written.sha256)

    _commit(work)
    return success()


# Comments -------------------------------------------------------------------------------------


def _comment_json(comment: ReviewComment) -> dict:
    return {"body": comment.body, "actorId": comment.author_id, "createdAt": iso(comment.at)}


@bp.get(ONE + "/comments")
def list_comments(project_id: int, form_id: str, iid: str):
    """The review thread's messages (state changes without words are not comments)."""
    sub, _current = _submission(_form(project_id, form_id), iid)
    comments = db_session().scalars(
        select(ReviewComment).where(ReviewComment.submission_id == sub.id,
                                    ReviewComment.body != "")
        .order_by(ReviewComment.at, ReviewComment.id))
    return [_comment_json(c) for c in comments]


@bp.post(ONE + "/comments")
def add_comment(project_id: int, form_id: str, iid: str):
    sub, _current = _submission(_form(project_id, form_id), iid)
    body = json_body().get("body")
    if not isinstance(body, str) or not body.strip():
        raise MissingParameter("body")
    if len(body) > MAX_COMMENT:
        raise UnexpectedValue(f"a comment has at most {MAX_COMMENT} characters")
    comment = review.record_review(db_session(), sub, caller(), None, body)
    return _comment_json(comment)
