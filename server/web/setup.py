"""Putting a volunteer's phone on the server: the Collect QR code (openrosa.md §8) and the
token URL it carries, issued and revoked here. A team leader sets up its own tổ's volunteers.
"""

from __future__ import annotations

import segno
from flask import abort, current_app, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from markupsafe import Markup
from sqlalchemy import select

from server.cli import collect_settings, qr_text
from server.db.models import User
from server.domain import accounts
from server.web import bp, scope
from server.web.inputs import ActionInput
from server.web_context import db_session


def _volunteers(db, project_id: int) -> list[User]:
    q = select(User).where(User.project_id == project_id, User.role == "volunteer")
    if scope.team() is not None:
        q = q.where(User.team == scope.team())
    return list(db.scalars(q.order_by(User.team, User.display_name)))


def _load_volunteer(uid: int) -> User:
    user = db_session().get(User, uid)
    if user is None or user.role != "volunteer" or user.project_id != scope.project_id():
        abort(404)
    scope.require_tdp(user.team)
    return user


def base_url() -> str:
    root = current_app.config["BASE_URL"] or (request.host_url.rstrip("/") + request.script_root)
    return root.rstrip("/")


def collect_url(db, user: User) -> str:
    token = accounts.collect_token(db, user, current_app.config["SECRET_KEY"])
    return f"{base_url()}/v1/key/{token}/projects/{user.project_id}"


def qr_svg(text: str) -> Markup:
    """The QR code as inline SVG (error correction L, as Collect's own generator uses)."""
    code = segno.make(text, error="l", micro=False, boost_error=False)
    return Markup(code.svg_inline(border=4, omitsize=True, title="ODK Collect"))  # noqa: S704


@bp.get("/setup")
def setup():
    db = db_session()
    return render_template("setup.html", people=_volunteers(db, scope.project_id()),
                           inp=ActionInput())


@bp.get("/setup/<id:uid>")
def setup_volunteer(uid: int):
    db = db_session()
    user = _load_volunteer(uid)
    text = url = svg = None
    if user.active and user.token_salt is not None:
        url = collect_url(db, user)
        text = qr_text(collect_settings(url, g.project.name, user.username))
        svg = qr_svg(text)
    return render_template("setup_volunteer.html", user=user, url=url, text=text, svg=svg,
                           inp=ActionInput())


@bp.post("/setup/<id:uid>/token")
def issue_token(uid: int):
    db = db_session()
    user = _load_volunteer(uid)
    if not ActionInput().validate_on_submit():
        abort(400)
    if not user.active:
        abort(409)
    accounts.collect_token(db, user, current_app.config["SECRET_KEY"])
    accounts.audit(db, "user.token_issued", actor=g.actor, target=user.username)
    return redirect(url_for("web.setup_volunteer", uid=uid))


@bp.post("/setup/<id:uid>/revoke")
def revoke_token(uid: int):
    db = db_session()
    user = _load_volunteer(uid)
    if not ActionInput().validate_on_submit():
        abort(400)
    accounts.revoke(db, user)
    accounts.audit(db, "user.revoke", actor=g.actor, target=user.username)
    flash(_("Đã thu hồi mã. Điện thoại cũ không gửi được phiếu nữa."), "ok")
    return redirect(url_for("web.setup_volunteer", uid=uid))
