"""What every API route needs: the caller, project access, JSON input, Central's formats."""

from __future__ import annotations

from datetime import datetime

from flask import g, request

from server.db.models import Project, User
from server.domain import accounts, api_sessions
from server.errors import Forbidden, NotFound, problem
from server.web_context import db_session

# Central's codes for what pyodk may send wrong.
Unparseable = problem(400.1, "Không đọc được dữ liệu gửi lên.",
                      "Could not parse the given data.", "Unparseable")
MissingParameter = problem(400.2, "Thiếu tham số bắt buộc.",
                           "Required parameters are missing.", "MissingParameter")
UnexpectedValue = problem(400.8, "Giá trị không hợp lệ.", "Unexpected value.", "UnexpectedValue")
AlreadyExists = problem(409.3, "Đã có bản ghi này.",
                        "A resource already exists with the given key.", "AlreadyExists")


def authenticate_bearer() -> User | None:
    header = request.headers.get("Authorization", "")
    scheme, _sep, token = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return api_sessions.user_for_bearer(db_session(), token.strip())


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
    """The tổ a supervisor is limited to (None: the whole project)."""
    user = caller()
    return None if user.role == "admin" else user.team


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
