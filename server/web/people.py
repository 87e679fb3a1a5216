"""The team registry's people: members per tổ with their dates and trainings, adding a
volunteer, a member leaving the team, and passwords (an admin resetting a team leader's,
anyone changing their own).

A team leader manages the volunteers of its own tổ; the ward office (a supervisor without a
tổ) those of the whole project; only an admin touches supervisors' accounts.
"""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

from flask import abort, current_app, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import login_user
from flask_wtf import FlaskForm
from sqlalchemy import func, select
from wtforms import PasswordField, SelectField, StringField
from wtforms.validators import DataRequired, EqualTo, Length, Regexp, ValidationError

from server.db.models import User
from server.domain import accounts, team_registry
from server.web import auth, bp, scope
from server.web.inputs import ActionInput, options
from server.web.templating import tdp_choices, tdp_name
from server.web_context import db_session

EARLIEST = dt.date(2000, 1, 1)
USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def today() -> dt.date:
    return dt.datetime.now(ZoneInfo(current_app.config["TIMEZONE"])).date()


class LocalDate:
    """A `YYYY-MM-DD` date (what a date input sends) between 2000 and today."""

    def __call__(self, form, field) -> None:
        text = (field.data or "").strip()
        try:
            day = dt.date.fromisoformat(text) if len(text) == 10 else None
        except ValueError:
            day = None
        if day is None:
            raise ValidationError(_("Ngày không hợp lệ: hãy chọn ngày theo dạng ngày/tháng/năm."))
        if not EARLIEST <= day <= today():
            raise ValidationError(_("Ngày phải từ năm 2000 đến hôm nay."))
        field.day = day


def strip(value):
    return value.strip() if isinstance(value, str) else value


class VolunteerInput(FlaskForm):
    username = StringField(_l("Tên đăng nhập"), filters=[strip], validators=[
        DataRequired(message=_l("Hãy nhập tên đăng nhập.")),
        Regexp(USERNAME.pattern + "$", message=_l(
            "Tên đăng nhập chỉ gồm chữ không dấu, số, dấu chấm, gạch ngang, gạch dưới "
            "(tối đa 100 ký tự), bắt đầu bằng chữ hoặc số."))])
    display_name = StringField(_l("Họ tên"), filters=[strip], validators=[
        DataRequired(message=_l("Hãy nhập họ tên.")),
        Length(max=200, message=_l("Họ tên dài quá 200 ký tự."))])
    # Checked by hand: an unknown tổ is an input error, another leader's tổ a refusal.
    team = SelectField(_l("Tổ"), validate_choice=False)
    joined_on = StringField(_l("Ngày vào tổ"), render_kw={"type": "date"},
                            validators=[LocalDate()])


class LeaveInput(FlaskForm):
    left_on = StringField(_l("Nghỉ từ ngày"), render_kw={"type": "date"},
                          validators=[LocalDate()])


NEW_PASSWORD = [DataRequired(message=_l("Hãy nhập mật khẩu mới.")),
                Length(min=10, max=200, message=_l("Mật khẩu mới cần từ 10 đến 200 ký tự."))]


class OwnPasswordInput(FlaskForm):
    current = PasswordField(_l("Mật khẩu hiện tại"), validators=[
        DataRequired(message=_l("Hãy nhập mật khẩu hiện tại.")), Length(max=200)])
    new = PasswordField(_l("Mật khẩu mới"), validators=NEW_PASSWORD)
    again = PasswordField(_l("Nhập lại mật khẩu mới"), validators=[
        EqualTo("new", message=_l("Hai lần nhập mật khẩu mới không giống nhau."))])


# Who may do what --------------------------------------------------------------------------


def counts_for_i07(user: User) -> bool:
    """A team member in I07: volunteers, and supervisors who lead a tổ (not the office)."""
    return user.role == "volunteer" or team_registry.team_of(user) != team_registry.WARD_TEAM


def role_label(user: User) -> str:
    if user.role == "volunteer":
        return _("Tình nguyện viên")
    if counts_for_i07(user):
        return _("Tổ trưởng")
    return _("Cán bộ phường")


def may_manage(user: User) -> bool:
    """Volunteers are managed by whoever sees their tổ; supervisors only by an admin."""
    if user.id == g.actor.id:
        return False
    if user.role == "volunteer":
        return scope.sees_tdp(user.team)
    return g.actor.role == "admin"


def load_member(uid: int) -> User:
    """A member of this project that the actor sees: 404 outside it, 403 in another tổ."""
    user = db_session().get(User, uid)
    if (user is None or user.role not in team_registry.MEMBER_ROLES
            or user.project_id != scope.project_id()):
        abort(404)
    scope.require_tdp(user.team)
    return user


def team_options() -> list[tuple[str, str]]:
    """The teams the actor may add a volunteer to: its tổ, or every tổ and the ward."""
    choices = tdp_choices()
    if scope.team() is None:
        choices.append((team_registry.WARD_TEAM, _("Cấp phường")))
    return choices


# Pages --------------------------------------------------------------------------------------


def member_rows(db, people: list[User]) -> list[dict]:
    zone = current_app.config["TIMEZONE"]
    day = today()
    trainings = team_registry.trainings_by_member(db, (u.id for u in people))
    rows = []
    for u in people:
        attended = trainings.get(u.id, [])
        rows.append({
            "user": u, "role": role_label(u), "joined": team_registry.joined_date(u, zone),
            "active": team_registry.member_on(u, day, zone),
            "last_training": attended[0] if attended else None,
            "trained_this_year": any(f"{day.year}-01-01" <= t.date <= day.isoformat()
                                     for t in attended),
            "i07": counts_for_i07(u),
        })
    return rows


def groups(rows: list[dict]) -> list[dict]:
    """Rows per team, current members first; with I07's count as it stands today."""
    out: dict[str, dict] = {}
    for row in rows:
        team = team_registry.team_of(row["user"])
        group = out.setdefault(team, {
            "team": team, "rows": [], "active": 0, "counted": 0, "trained": 0,
            "name": _("Cấp phường") if team == team_registry.WARD_TEAM else tdp_name(team)})
        group["rows"].append(row)
        group["active"] += row["active"]
        if row["active"] and row["i07"]:
            group["counted"] += 1
            group["trained"] += row["trained_this_year"]
    for group in out.values():
        group["rows"].sort(key=lambda r: not r["active"])
    return list(out.values())


@bp.get("/people")
def people():
    db = db_session()
    members = team_registry.members(db, scope.project_id(), scope.team())
    return render_template("people.html", groups=groups(member_rows(db, members)),
                           year=today().year)


def _render_new(inp: VolunteerInput, status: int = 200):
    return render_template("people_new.html", inp=inp), status


@bp.route("/people/new", methods=["GET", "POST"])
def add_volunteer():
    db = db_session()
    project_id = scope.project_id()
    inp = VolunteerInput()
    inp.team.choices = options(team_options())
    if request.method == "GET":
        inp.joined_on.data = today().isoformat()
        if scope.team():
            inp.team.data = scope.team()
        return _render_new(inp)
    if not inp.validate_on_submit():
        return _render_new(inp, 400)
    team = inp.team.data or ""
    config = current_app.extensions.get("ward")
    known = {*(config.tdp_codes if config is not None else ()), team_registry.WARD_TEAM}
    if team not in known:
        inp.team.errors = [_("Hãy chọn một tổ trong danh sách.")]
        return _render_new(inp, 400)
    if team not in {code for code, _name in team_options()}:
        abort(403)
    username = inp.username.data
    taken = db.scalar(select(User.id).where(func.lower(User.username) == username.lower()))
    if taken is not None:
        inp.username.errors = [_("Tên đăng nhập “%(name)s” đã có người dùng. Hãy chọn tên khác.",
                                 name=username)]
        return _render_new(inp, 400)
    user = accounts.create_user(db, username, "volunteer", project_id=project_id, team=team,
                                display_name=inp.display_name.data,
                                joined_on=inp.joined_on.day.isoformat()).user
    # A volunteer has no password: the token its phone is set up with is issued right away.
    accounts.collect_token(db, user, current_app.config["SECRET_KEY"])
    accounts.audit(db, "user.create", actor=g.actor, target=username, role="volunteer",
                   team=team, joined_on=user.joined_on)
    flash(_("Đã thêm %(name)s. Quét mã QR dưới đây bằng ODK Collect trên điện thoại của họ.",
            name=user.display_name), "ok")
    return redirect(url_for("web.setup_volunteer", uid=user.id))


def _render_person(user: User, leave: LeaveInput | None = None, status: int = 200):
    db = db_session()
    row = member_rows(db, [user])[0]
    trainings = team_registry.trainings_by_member(db, [user.id]).get(user.id, [])
    if leave is None:
        leave = LeaveInput()
        leave.left_on.data = today().isoformat()
    return render_template(
        "people_person.html", user=user, row=row, trainings=trainings, leave=leave,
        inp=ActionInput(), manage=may_manage(user), year=today().year,
        reset=user.role == "supervisor" and g.actor.role == "admin" and user.id != g.actor.id,
        own=user.id == g.actor.id), status


@bp.get("/people/<id:uid>")
def person(uid: int):
    return _render_person(load_member(uid))


@bp.post("/people/<id:uid>/leave")
def person_leave(uid: int):
    db = db_session()
    user = load_member(uid)
    if not may_manage(user):
        abort(403)
    leave = LeaveInput()
    if not leave.validate_on_submit():
        if leave.csrf_token.errors:
            abort(400)
        return _render_person(user, leave, 400)
    if not user.active:
        flash(_("Người này đã nghỉ; không có gì thay đổi."), "info")
        return redirect(url_for("web.person", uid=uid))
    zone = current_app.config["TIMEZONE"]
    if leave.left_on.day < team_registry.joined_date(user, zone):
        leave.left_on.errors = [_("Ngày nghỉ không được trước ngày vào tổ.")]
        return _render_person(user, leave, 400)
    accounts.deactivate(db, user, leave.left_on.day.isoformat())
    accounts.audit(db, "user.leave", actor=g.actor, target=user.username,
                   left_on=user.left_on)
    flash(_("%(name)s đã nghỉ từ %(day)s. Mã kết nối và phiên đăng nhập đã bị thu hồi.",
            name=user.display_name, day=leave.left_on.day.strftime("%d/%m/%Y")), "ok")
    return redirect(url_for("web.person", uid=uid))


@bp.post("/people/<id:uid>/password")
def reset_password(uid: int):
    """An admin gives a team leader who lost its password a new one, shown once.

    Generated rather than typed by the admin: the ward office then never picks (or reuses)
    a guessable password for someone else, and the leader changes it to its own at once on
    /account/password. It is shown on this response only, never stored in a cookie or log.
    """
    db = db_session()
    user = load_member(uid)
    if g.actor.role != "admin" or user.role != "supervisor" or user.id == g.actor.id:
        abort(403)
    if not ActionInput().validate_on_submit():
        abort(400)
    if not user.active:
        abort(409)
    password = accounts.reset_password(db, user, digest=bool(current_app.config["DIGEST_AUTH"]))
    accounts.audit(db, "user.password_reset", actor=g.actor, target=user.username)
    return render_template("people_password_reset.html", user=user, password=password)


@bp.route("/account/password", methods=["GET", "POST"])
def change_own_password():
    db = db_session()
    inp = OwnPasswordInput()
    if request.method == "GET":
        return render_template("people_password.html", inp=inp)
    if not inp.validate_on_submit():
        return render_template("people_password.html", inp=inp), 400
    user = g.actor
    # Wrong current passwords count as failed logins of this name and address: an open
    # session cannot be used to guess the password faster than the login page allows.
    key = (user.username.casefold()[:100], (request.remote_addr or "")[:64])
    if accounts.login_throttled(db, *key):
        inp.current.errors = [_("Sai mật khẩu quá nhiều lần. Hãy thử lại sau 15 phút.")]
        return render_template("people_password.html", inp=inp), 429
    try:
        accounts.change_password(db, user, inp.current.data, inp.new.data,
                                 digest=bool(current_app.config["DIGEST_AUTH"]))
    except accounts.WrongPassword:
        accounts.record_failed_login(db, *key)
        accounts.audit(db, "web.password_change_failed", actor=user, target=user.username)
        inp.current.errors = [_("Mật khẩu hiện tại không đúng.")]
        return render_template("people_password.html", inp=inp)  # 200: the attempt is kept
    login_user(auth.WebUser(user))  # other sessions ended with the new epoch; this one goes on
    accounts.audit(db, "user.password_change", actor=user, target=user.username)
    flash(_("Đã đổi mật khẩu. Các phiên đăng nhập khác đã kết thúc."), "ok")
    return redirect(url_for("web.people"))
