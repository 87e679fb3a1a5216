"""Login and logout: passwords checked by accounts, throttled per username and address.

The session is cleared at login (a fresh session and CSRF token); the login cookie carries
the user's `session_epoch`, so `user revoke` ends every web session at once. A volunteer
logs in only when it has been given a password, and lands on its forms (`/fill`).
"""

from __future__ import annotations

import secrets

from flask import abort, current_app, g, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import UserMixin, login_user, logout_user
from werkzeug.exceptions import HTTPException

from server.db.models import User
from server.domain import accounts
from server.web import LANGUAGES, VOLUNTEER_ENDPOINTS, bp, login_manager, safe_next
from server.web.inputs import ActionInput, LoginInput
from server.web_context import db_session

# A volunteer without a password never gets here: its password check fails.
WEB_ROLES = ("admin", "supervisor", "volunteer")


class WebUser(UserMixin):
    """The logged-in account; `row` is the User of this request's database session."""

    def __init__(self, row: User):
        self.row = row

    def get_id(self) -> str:
        return f"{self.row.id}:{self.row.session_epoch}"


@login_manager.user_loader
def load_user(value: str) -> WebUser | None:
    user_id, _sep, epoch = value.partition(":")
    if not user_id.isdigit() or not epoch.isdigit() or len(user_id) > 9:
        return None
    user = db_session().get(User, int(user_id))
    if (user is None or not user.active or user.role not in WEB_ROLES
            or user.session_epoch != int(epoch) or not user.password_hash):
        return None
    return WebUser(user)


def _landing(user: User, target: str) -> str:
    """Where the login leads: a volunteer's `next` only when it is a page it may open."""
    if user.role != "volunteer":
        return target
    try:
        endpoint, _args = current_app.url_map.bind("").match(target.split("?", 1)[0])
    except HTTPException:
        endpoint = None
    if endpoint in VOLUNTEER_ENDPOINTS and endpoint != "web.logout":
        return target
    return url_for("web.fill_list")


def _key() -> tuple[str, str]:
    username = (request.form.get("username") or "").strip().casefold()[:100]
    return username, (request.remote_addr or "")[:64]


@bp.route("/login", methods=["GET", "POST"])
def login():
    inp = LoginInput()
    if request.method == "GET":
        inp.next.data = safe_next(request.args.get("next"))
        return render_template("login.html", inp=inp)
    if not inp.validate_on_submit():
        return render_template("login.html", inp=inp, error=_("Hãy nhập tên và mật khẩu.")), 400
    db = db_session()
    username, ip = _key()
    if accounts.login_throttled(db, username, ip):
        error = _("Sai mật khẩu quá nhiều lần. Hãy thử lại sau 15 phút.")
        return render_template("login.html", inp=inp, error=error), 429
    user = accounts.get_user(db, inp.username.data.strip())
    ok = accounts.check_password(user, inp.password.data) if user is not None else (
        accounts.check_password(User(active=False), inp.password.data))
    if not ok or user.role not in WEB_ROLES:
        accounts.record_failed_login(db, username, ip)
        accounts.audit(db, "web.login_failed", target=username[:255], ip=ip)
        return render_template("login.html", inp=inp,
                               error=_("Tên đăng nhập hoặc mật khẩu không đúng.")), 200
    accounts.clear_failed_logins(db, username, ip)
    lang = session.get("lang")
    session.clear()  # a new session: nothing from before the login survives
    if lang in LANGUAGES:
        session["lang"] = lang
    session.permanent = True
    session["sid"] = secrets.token_urlsafe(16)
    login_user(WebUser(user))
    accounts.audit(db, "web.login", actor=user, target=user.username, ip=ip)
    return redirect(_landing(user, safe_next(inp.next.data)))


@bp.post("/logout")
def logout():
    if not ActionInput().validate_on_submit():
        abort(400)
    logout_user()
    session.clear()
    return redirect(url_for("web.login"))


@bp.post("/language")
def set_language():
    lang = request.form.get("lang")
    if lang in LANGUAGES:
        session["lang"] = lang
    return redirect(safe_next(request.form.get("next")))


@bp.post("/project")
def set_project():
    if g.actor.role != "admin":
        abort(403)
    wanted = request.form.get("project", "")
    if wanted.isdigit() and any(p.id == int(wanted) for p in g.projects):
        session["project_id"] = int(wanted)
    return redirect(url_for("web.dashboard"))
