"""Forms assigned to volunteers (Central's app-user role 2 on a form).

A volunteer with at least one assignment lists, downloads and submits only its assigned
forms; one with none keeps every form of its project, the ward's default. Other roles are
never limited.
"""

from __future__ import annotations

from sqlalchemy import bindparam, delete, or_, select
from sqlalchemy.orm import Session

from server.db.models import Form, FormAssignment, User

APP_USER_ROLE = 2  # the only form role Central gives app users

def _assigned_to(user_id):
    return select(FormAssignment.form_id).where(FormAssignment.user_id == user_id)


# The forms a user is assigned; `user_id` NULL (not a volunteer) matches none.
_ASSIGNED = _assigned_to(bindparam("user_id"))


def visible_clause():
    """A WHERE clause on Form for queries bound with `user_id`: the forms the user may use."""
    return or_(~_ASSIGNED.exists(), Form.id.in_(_ASSIGNED))


def visible_to_user_row():
    """The same rule for a query that selects from `users`: the forms that row's user may use
    (correlated on User, so one statement serves any caller)."""
    assigned = _assigned_to(User.id)
    return or_(User.role != "volunteer", ~assigned.exists(), Form.id.in_(assigned))


def limited_user_id(user: User) -> int | None:
    """The id to bind as `user_id`: only volunteers are limited by assignments."""
    return user.id if user.role == "volunteer" else None


def may_use(session: Session, user: User, form: Form) -> bool:
    if limited_user_id(user) is None:
        return True
    assigned = set(session.scalars(_ASSIGNED, {"user_id": user.id}))
    return not assigned or form.id in assigned


def assign(session: Session, form: Form, user: User) -> bool:
    """False when the form was already assigned to the user."""
    if session.get(FormAssignment, (form.id, user.id)) is not None:
        return False
    session.add(FormAssignment(form_id=form.id, user_id=user.id, role_id=APP_USER_ROLE))
    session.flush()
    return True


def unassign(session: Session, form: Form, user: User) -> bool:
    """False when the form was not assigned to the user."""
    result = session.execute(delete(FormAssignment).where(
        FormAssignment.form_id == form.id, FormAssignment.user_id == user.id))
    return bool(result.rowcount)


def assigned_users(session: Session, form: Form) -> list[tuple[User, FormAssignment]]:
    return list(session.execute(
        select(User, FormAssignment).join(FormAssignment, FormAssignment.user_id == User.id)
        .where(FormAssignment.form_id == form.id).order_by(User.id)).all())
