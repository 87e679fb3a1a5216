"""Sessions, the current user, projects."""

from __future__ import annotations

from flask import request
from sqlalchemy import select

from server.central import bp
from server.central.common import (
    MissingParameter,
    TooManyLogins,
    caller,
    iso,
    json_body,
    project,
    success,
)
from server.db.models import Project, User
from server.domain import accounts, api_sessions
from server.errors import Forbidden, NotFound, Unauthorized
from server.web_context import db_session


def user_json(user: User) -> dict:
    return {"id": user.id, "type": "user", "displayName": user.display_name,
            "email": user.username, "createdAt": iso(user.created_at), "updatedAt": None,
            "deletedAt": None}


def project_json(row: Project) -> dict:
    return {"id": row.id, "name": row.name, "description": None, "archived": False,
            "keyId": None, "createdAt": iso(row.created_at), "updatedAt": None,
            "deletedAt": None}


@bp.post("/v1/sessions")
def create_session():
    """`{"email", "password"}` → a bearer token. The email is the server's username."""
    body = json_body()
    username, password = body.get("email"), body.get("password")
    if not isinstance(username, str) or not isinstance(password, str):
        raise MissingParameter("email, password")
    db = db_session()
    key = (username.strip().casefold()[:100], (request.remote_addr or "")[:64])
    if accounts.login_throttled(db, *key):
        raise TooManyLogins()
    user = accounts.get_user(db, username.strip())
    ok = accounts.check_password(user, password) if user is not None else (
        accounts.check_password(User(active=False), password))
    if not ok or user.role not in api_sessions.API_ROLES:
        accounts.record_failed_login(db, *key)
        accounts.audit(db, "api.login_failed", target=key[0][:255], ip=key[1])
        db.commit()  # the failure is kept although the answer is an error
        raise Unauthorized()
    accounts.clear_failed_logins(db, *key)
    token, row = api_sessions.open_session(db, user)
    accounts.audit(db, "api.login", actor=user, target=user.username, ip=key[1])
    return {"token": token, "csrf": "", "createdAt": iso(row.created_at),
            "expiresAt": iso(row.expires_at)}


@bp.delete("/v1/sessions/<token>")
def delete_session(token: str):
    """Logout; only one's own token (or any, for an admin)."""
    db = db_session()
    own = request.headers.get("Authorization", "").partition(" ")[2].strip()
    if token != own and caller().role != "admin":
        raise Forbidden()
    if not api_sessions.close_session(db, token):
        raise NotFound("session")
    return success()


@bp.get("/v1/users/current")
def current_user():
    return user_json(caller())


@bp.get("/v1/projects")
def list_projects():
    user = caller()
    query = select(Project).order_by(Project.id)
    if user.role != "admin":
        query = query.where(Project.id == user.project_id)
    return [project_json(p) for p in db_session().scalars(query)]


@bp.get("/v1/projects/<int:project_id>")
def get_project(project_id: int):
    return project_json(project(project_id))


