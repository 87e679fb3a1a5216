"""What every API route needs: the caller, project access, JSON input, Central's formats."""

from __future__ import annotations

import base64
from datetime import datetime

from flask import g, request

from server.db.models import Project, User
from server.domain import accounts, api_sessions
from server.errors import Forbidden, NotFound, problem
from server.web_context import database, db_session

# Central's codes for what pyodk may send wrong.
Unparseable = problem(400.1, "Không đọc được dữ liệu gửi lên.",
                      "Could not parse the given data.", "Unparseable")
MissingParameter = problem(400.2, "Thiếu tham số bắt buộc.",
                           "Required parameters are missing.", "MissingParameter")
UnexpectedValue = problem(400.8, "Giá trị không hợp lệ.", "Unexpected value.", "UnexpectedValue")
AlreadyExists = problem(409.3, "Đã có bản ghi này.",
                        "A resource already exists with the given key.", "AlreadyExists")
TooManyLogins = problem(429.1, "Đăng nhập sai quá nhiều lần. Hãy thử lại sau 15 phút.",
                        "Too many failed logins. Try again in 15 minutes.", "TooManyLogins")


def authenticate_caller() -> User | None:
    """A bearer token from `POST /v1/sessions` (pyodk), or, over https only, a username and
    password with HTTP Basic (what Excel and Power BI send to an OData feed)."""
    header = request.headers.get("Authorization", "")
    scheme, _sep, value = header.partition(" ")
    if scheme.lower() == "bearer":
        return api_sessions.user_for_bearer(db_session(), value.strip())
    if scheme.lower() == "basic" and request.is_secure:
        return _basic_user(value.strip())
    return None


def _basic_user(credentials: str) -> User | None:
    """Throttled and audited like every password login."""
    try:
        decoded = base64.b64decode(credentials, validate=True)
        text = decoded.decode("utf-8")
    except UnicodeDecodeError:
        text = decoded.decode("latin-1")
    except ValueError:
        return None
    username, _sep, password = text.partition(":")
    key = (username.strip().casefold()[:100], (request.remote_addr or "")[:64])
    db = db_session()
    if accounts.login_throttled(db, *key):
        raise TooManyLogins()
    user = accounts.get_user(db, username.strip())
    ok = accounts.check_password(user, password) if user is not None else (
        accounts.check_password(User(active=False), password))
    if ok and user.role in api_sessions.API_ROLES:
        return user
    with database().session(write=True) as writer:  # this request's session may only read
        accounts.record_failed_login(writer, *key)
        accounts.audit(writer, "api.login_failed", target=key[0][:255], ip=key[1])
        writer.commit()
    return None


def caller() -> User:
    return g.api_user


def is_admin() -> bool:
    return caller().role == "admin"


def require_admin() -> None:
    if not is_admin():
        raise Forbidden("admin only")


def project(project_id: int, *, write: bool = False) -> Project:
    """The project, if the caller may see it (and change it, for `write`): an admin any
    project, a supervisor its own; changes to forms, users and lists are admins' work."""
    found = accounts.get_project(db_session(), project_id)
    user = caller()
    if found is None or (user.role != "admin" and user.project_id != project_id):
        raise NotFound(f"project {project_id}")
    if write:
        require_admin()
    return found


def team_scope() -> str | None:
    """The tổ a supervisor is limited to (None: the whole project, for admins and for the
    ward office, whose team is `ward`)."""
    user = caller()
    if user.role == "admin" or user.team in (None, "", "ward"):
        return None
    return user.team


def query_bool(name: str, default: bool = False) -> bool:
    """Central's query booleans; pyodk sends Python's `True`/`False`."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in ("true", "1"):
        return True
    if value in ("false", "0"):
        return False
    raise UnexpectedValue(f"{name}={raw[:20]}")


def json_body() -> dict:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise Unparseable("expected a JSON object")
    return data


def iso(moment: datetime | None) -> str | None:
    """Central's timestamps: UTC with milliseconds and a Z."""
    if moment is None:
        return None
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def success() -> dict:
    return {"success": True}
