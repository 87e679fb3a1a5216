"""Training sessions of the team registry: date, topic, organiser and who attended (I07).

A session is the ward's record (anyone of the project may see its date and topic); its
attendees are people, so each actor sees and marks only the members of the tổ it sees.
"""

from __future__ import annotations

from flask import abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.validators import DataRequired, Length

from server.db.models import TrainingSession, User
from server.domain import accounts, team_registry
from server.web import bp, scope
from server.web.inputs import ActionInput
from server.web.people import LocalDate, strip, today
from server.web_context import db_session

MAX_ATTENDEES = 500


class TrainingInput(FlaskForm):
    date = StringField(_l("Ngày tập huấn"), render_kw={"type": "date"}, validators=[LocalDate()])
    topic = StringField(_l("Chủ đề"), filters=[strip], validators=[
        DataRequired(message=_l("Hãy nhập chủ đề tập huấn.")),
        Length(max=500, message=_l("Chủ đề dài quá 500 ký tự."))])
    organiser = StringField(_l("Đơn vị tổ chức"), filters=[strip], validators=[
        DataRequired(message=_l("Hãy nhập đơn vị tổ chức.")),
        Length(max=200, message=_l("Tên đơn vị tổ chức dài quá 200 ký tự."))])


def _members() -> list[User]:
    return team_registry.members(db_session(), scope.project_id(), scope.team())


def _chosen(members: list[User]) -> list[User] | None:
    """The attendees ticked on the form; None when an id is not a member of this project.

    A member of a tổ the actor does not see is refused outright (403)."""
    raw = request.form.getlist("attendee")
    if len(raw) > MAX_ATTENDEES or not all(v.isdigit() and len(v) <= 9 for v in raw):
        return None
    visible = {u.id: u for u in members}
    chosen = []
    for uid in dict.fromkeys(int(v) for v in raw):
        if uid not in visible:
            user = db_session().get(User, uid)
            if (user is None or user.project_id != scope.project_id()
                    or user.role not in team_registry.MEMBER_ROLES):
                return None
            abort(403)
        chosen.append(visible[uid])
    return chosen


def _load_session(tid: int) -> TrainingSession:
    training = db_session().get(TrainingSession, tid)
    if training is None or training.project_id != scope.project_id():
        abort(404)
    return training


@bp.get("/trainings")
def trainings():
    db = db_session()
    seen = {u.id for u in _members()}
    rows = []
    for training in team_registry.sessions(db, scope.project_id()):
        attended = team_registry.attendee_ids(db, training) & seen
        rows.append({"session": training, "attendees": len(attended)})
    return render_template("trainings.html", rows=rows)


def _render_new(inp: TrainingInput, members: list[User], ticked: set[int], error=None,
                status: int = 200):
    return render_template("training_new.html", inp=inp, members=members, ticked=ticked,
                           error=error), status


@bp.route("/trainings/new", methods=["GET", "POST"])
def add_training():
    db = db_session()
    members = _members()
    inp = TrainingInput()
    if request.method == "GET":
        inp.date.data = today().isoformat()
        return _render_new(inp, members, set())
    chosen = _chosen(members)
    ticked = {u.id for u in chosen or ()}
    if not inp.validate_on_submit():
        return _render_new(inp, members, ticked, status=400)
    if chosen is None:
        return _render_new(inp, members, ticked, _("Danh sách người tham dự không hợp lệ."), 400)
    if not chosen:
        return _render_new(inp, members, ticked, _("Hãy chọn ít nhất một người tham dự."), 400)
    training = team_registry.record_session(
        db, scope.project_id(), day=inp.date.day, topic=inp.topic.data,
        organiser=inp.organiser.data, recorded_by=g.actor)
    team_registry.add_attendees(db, training, chosen, recorded_by=g.actor)
    accounts.audit(db, "training.create", actor=g.actor, target=str(training.id),
                   date=training.date, topic=training.topic[:200],
                   attendees=[u.username for u in chosen])
    flash(_("Đã ghi buổi tập huấn với %(n)s người tham dự.", n=len(chosen)), "ok")
    return redirect(url_for("web.training", tid=training.id))


def _render_session(session_row: TrainingSession, error: str | None = None,
                    status: int = 200):
    members = _members()
    attended = team_registry.attendee_ids(db_session(), session_row)
    return render_template(
        "training.html", s=session_row, inp=ActionInput(), error=error,
        attendees=[u for u in members if u.id in attended],
        others=[u for u in members if u.id not in attended]), status


@bp.get("/trainings/<id:tid>")
def training(tid: int):
    return _render_session(_load_session(tid))


@bp.post("/trainings/<id:tid>/attendees")
def add_training_attendees(tid: int):
    db = db_session()
    session_row = _load_session(tid)
    if not ActionInput().validate_on_submit():
        abort(400)
    chosen = _chosen(_members())
    if chosen is None:
        return _render_session(session_row, _("Danh sách người tham dự không hợp lệ."), 400)
    if not chosen:
        return _render_session(session_row, _("Hãy chọn ít nhất một người tham dự."), 400)
    added = team_registry.add_attendees(db, session_row, chosen, recorded_by=g.actor)
    if added:
        accounts.audit(db, "training.attendance", actor=g.actor, target=str(session_row.id),
                       added=[u.username for u in added])
    flash(_("Đã thêm %(n)s người tham dự.", n=len(added)), "ok")
    return redirect(url_for("web.training", tid=tid))
