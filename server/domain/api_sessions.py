"""Bearer sessions for the Central-compatible API (`POST /v1/sessions`).

A token is a random 256-bit secret handed out once; only its SHA-256 is stored, so a copy
of the database lets nobody in. A token dies at its expiry, on logout, and at once when the
user's sessions are ended (revoke, password reset, departure: `session_epoch` moves on).
"""

from __future__ import annotations

import datetime as dt
import secrets

from sqlalchemy import bindparam, delete, select
from sqlalchemy.orm import Session

from server.db.models import ApiSession, User, utcnow
from server.domain.accounts import token_hash

LIFETIME = dt.timedelta(hours=24)  # as Central's sessions
API_ROLES = ("admin", "supervisor")  # volunteers use their Collect token, not the API


def open_session(session: Session, user: User) -> tuple[str, ApiSession]:
    """A new token for `user` (who has just proved their password)."""
    now = utcnow()
    session.execute(delete(ApiSession).where(ApiSession.expires_at < now))
    token = secrets.token_urlsafe(48)
    row = ApiSession(token_hash=token_hash(token), user_id=user.id,
                     session_epoch=user.session_epoch, created_at=now,
                     expires_at=now + LIFETIME)
    session.add(row)
    session.flush()
    return token, row


_BY_HASH = (select(ApiSession, User).join(User, User.id == ApiSession.user_id)
            .where(ApiSession.token_hash == bindparam("token_hash")))


def user_for_bearer(session: Session, token: str) -> User | None:
    """The live user behind a bearer token, or None."""
    if not token or len(token) > 200:
        return None
    found = session.execute(_BY_HASH, {"token_hash": token_hash(token)}).first()
    if found is None:
        return None
    api_session, user = found
    if (api_session.expires_at <= utcnow() or not user.active or user.role not in API_ROLES
            or api_session.session_epoch != user.session_epoch):
        return None
    return user


def close_session(session: Session, token: str) -> bool:
    """Logout: the token stops working. False when it was not a live token."""
    result = session.execute(delete(ApiSession).where(
        ApiSession.token_hash == token_hash(token)))
    return bool(result.rowcount)
