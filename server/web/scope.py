"""Who is asking and what they may see: the project and, for a team leader, the tổ.

contract.md, "Roles": a supervisor reads its own project, limited to its team (tổ dân phố)
when it has one (`ward` = the ward office, no limit); an admin reads every project.
"""

from __future__ import annotations

from flask import abort, g, session
from flask_login import current_user
from sqlalchemy import select

from server.db.models import Form, Project, User
from server.domain import assignments
from server.web_context import db_session


def load() -> None:
    """Fill g.actor, g.project, g.projects and g.team for the current request."""
    actor: User = current_user.row
    db = db_session()
    g.actor = actor
    if actor.role == "admin":
        g.projects = list(db.scalars(select(Project).order_by(Project.id)))
        wanted = session.get("project_id")
        g.project = next((p for p in g.projects if p.id == wanted), None) or (
            g.projects[0] if g.projects else None)
        g.team = None
    else:
        g.projects = []
        g.project = db.get(Project, actor.project_id) if actor.project_id else None
        g.team = actor.team if actor.team and actor.team != "ward" else None
    g.project_id = g.project.id if g.project is not None else None


def project_id() -> int:
    """The project of this request; a 404 page when there is none yet."""
    if g.get("project_id") is None:
        abort(404)
    return g.project_id


def team() -> str | None:
    """The tổ the actor is limited to, or None for the ward office and admins."""
    return g.get("team")


def sees_tdp(tdp: str | None) -> bool:
    return team() is None or tdp == team()


def require_tdp(tdp: str | None) -> None:
    if not sees_tdp(tdp):
        abort(403)


def is_office() -> bool:
    """Admins and supervisors without a tổ: they decide cross-tổ pairs and undo merges."""
    actor = g.actor
    return actor.role == "admin" or (actor.role == "supervisor" and team() is None)


def fillable_forms() -> list[Form]:
    """The forms the actor may fill in the browser: for a volunteer, the ones its Collect
    lists (open, published, within its assignments); for others every open form."""
    if g.get("project_id") is None:
        return []
    query = (select(Form)
             .where(Form.project_id == g.project_id, Form.state == "open",
                    Form.current_version_id.is_not(None), assignments.visible_clause())
             .order_by(Form.xml_form_id))
    return list(db_session().scalars(
        query, {"user_id": assignments.limited_user_id(g.actor)}))


def may_fill(fid: int) -> bool:
    """The volunteer's rule for a URL naming a form: one that `fillable_forms` lists."""
    db = db_session()
    form = db.get(Form, fid)
    return (form is not None and form.project_id == g.get("project_id")
            and form.state == "open" and form.current_version_id is not None
            and assignments.may_use(db, g.actor, form))
