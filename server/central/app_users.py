"""App users (Central's name for a device's account: here the project's volunteers with a
Collect token) and the forms assigned to them. Admin only.

A created app user is a ward-level volunteer (no tổ) with a generated username; its token
is the one its Collect is set up with. Assigning forms to a volunteer limits its Collect to
those forms (see server/domain/assignments.py).
"""

from __future__ import annotations

import re
import secrets
import unicodedata

from flask import current_app
from sqlalchemy import func, select

from server.central import bp
from server.central.common import (
    MissingParameter,
    UnexpectedValue,
    caller,
    iso,
    json_body,
    project,
    success,
)
from server.central.forms import FORM
from server.db.models import Form, User
from server.domain import accounts, assignments, forms
from server.errors import NotFound
from server.web_context import db_session

APP_USERS = "/v1/projects/<int:project_id>/app-users"
ASSIGNMENTS = FORM + "/assignments/<int:role_id>"
MAX_DISPLAY_NAME = 200  # users.display_name


def app_user_json(user: User, token: str | None) -> dict:
    return {"projectId": user.project_id, "id": user.id, "displayName": user.display_name,
            "createdAt": iso(user.created_at), "type": "field_key", "token": token,
            "updatedAt": None, "deletedAt": None}


def the_volunteer(project_id: int, user_id: int) -> User:
    user = db_session().get(User, user_id)
    if user is None or user.role != "volunteer" or user.project_id != project_id:
        raise NotFound(f"app user {user_id}")
    return user


def new_username(display_name: str) -> str:
    """A free username from the display name without diacritics, e.g. `may-to-3-4f1a9c`."""
    plain = unicodedata.normalize("NFKD", display_name.replace("đ", "d").replace("Đ", "D"))
    slug = re.sub(r"[^a-z0-9]+", "-", plain.encode("ascii", "ignore").decode().lower())
    base = slug.strip("-")[:40] or "app"
    while True:
        username = f"{base}-{secrets.token_hex(3)}"
        taken = db_session().scalar(
            select(User.id).where(func.lower(User.username) == username))
        if taken is None:
            return username


# App users ----------------------------------------------------------------------------------


@bp.get(APP_USERS)
def list_app_users(project_id: int):
    """The project's active volunteers; `token` is null for one whose token was revoked."""
    project(project_id, write=True)
    secret = current_app.config["SECRET_KEY"]
    users = db_session().scalars(
        select(User).where(User.project_id == project_id, User.role == "volunteer",
                           User.active.is_(True)).order_by(User.id))
    return [app_user_json(u, accounts.live_collect_token(u, secret)) for u in users]


@bp.post(APP_USERS)
def create_app_user(project_id: int):
    project(project_id, write=True)
    name = json_body().get("displayName")
    if not isinstance(name, str) or not name.strip():
        raise MissingParameter("displayName")
    name = " ".join(name.split())
    if len(name) > MAX_DISPLAY_NAME:
        raise UnexpectedValue(f"displayName is longer than {MAX_DISPLAY_NAME} characters")
    db = db_session()
    user = accounts.create_user(db, new_username(name), "volunteer", project_id=project_id,
                                team=None, display_name=name).user
    token = accounts.collect_token(db, user, current_app.config["SECRET_KEY"])
    accounts.audit(db, "user.create", actor=caller(), target=user.username, role="volunteer",
                   team=None, via="api")
    return app_user_json(user, token)


@bp.delete(APP_USERS + "/<int:user_id>")
def revoke_app_user(project_id: int, user_id: int):
    """The token stops working at once; the volunteer and its data stay."""
    project(project_id, write=True)
    user = the_volunteer(project_id, user_id)
    accounts.revoke(db_session(), user)
    accounts.audit(db_session(), "user.revoke", actor=caller(), target=user.username)
    return success()


# Form assignments ---------------------------------------------------------------------------


def assignment_target(project_id: int, form_id: str, role_id: int) -> Form:
    project(project_id, write=True)
    if role_id != assignments.APP_USER_ROLE:
        raise NotFound(f"role {role_id}")
    form = forms.get_form(db_session(), project_id, form_id)
    if form is None:
        raise NotFound(f"form {form_id}")
    return form


@bp.get(ASSIGNMENTS)
def list_form_assignments(project_id: int, form_id: str, role_id: int):
    """The app users the form is assigned to (Central's actors)."""
    form = assignment_target(project_id, form_id, role_id)
    return [{"id": user.id, "type": "field_key", "displayName": user.display_name,
             "createdAt": iso(user.created_at), "updatedAt": None, "deletedAt": None}
            for user, _assignment in assignments.assigned_users(db_session(), form)]


@bp.post(ASSIGNMENTS + "/<int:user_id>")
def assign_form(project_id: int, form_id: str, role_id: int, user_id: int):
    """Idempotent: assigning a form already assigned changes nothing."""
    form = assignment_target(project_id, form_id, role_id)
    user = the_volunteer(project_id, user_id)
    if assignments.assign(db_session(), form, user):
        accounts.audit(db_session(), "form.assign", actor=caller(), target=form.xml_form_id,
                       project=project_id, user=user.username)
    return success()


@bp.delete(ASSIGNMENTS + "/<int:user_id>")
def unassign_form(project_id: int, form_id: str, role_id: int, user_id: int):
    form = assignment_target(project_id, form_id, role_id)
    user = the_volunteer(project_id, user_id)
    if not assignments.unassign(db_session(), form, user):
        raise NotFound(f"form {form_id} is not assigned to app user {user_id}")
    accounts.audit(db_session(), "form.unassign", actor=caller(), target=form.xml_form_id,
                   project=project_id, user=user.username)
    return success()
