"""Users, passwords, volunteers' Collect tokens, projects. Plain functions on a Session."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from sqlalchemy import bindparam, delete, func, select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from server.db.models import AuditEntry, LoginAttempt, Project, User, utcnow

ROLES = ("admin", "supervisor", "volunteer")
DIGEST_REALM = "ODK Server"


class AccountError(ValueError):
    pass


class WrongPassword(AccountError):
    pass


@dataclass(frozen=True)
class NewUser:
    user: User
    password: str | None


def digest_ha1(username: str, password: str) -> str:
    """HA1 of RFC 2617 Digest: the only form in which Digest can check a password."""
    return hashlib.md5(f"{username}:{DIGEST_REALM}:{password}".encode()).hexdigest()  # noqa: S324


def set_password(user: User, password: str, *, digest: bool) -> None:
    if len(password) < 10:
        raise AccountError("password must have at least 10 characters")
    user.password_hash = generate_password_hash(password)  # scrypt
    user.digest_ha1 = digest_ha1(user.username, password) if digest else None


def check_password(user: User, password: str) -> bool:
    if not user.password_hash or not user.active:
        # Still spend the time of a hash check, so a missing user is not faster.
        check_password_hash(_DUMMY_HASH, password)
        return False
    return check_password_hash(user.password_hash, password)


_DUMMY_HASH = generate_password_hash("not-a-real-password")


def create_project(session: Session, name: str) -> Project:
    project = Project(name=name)
    session.add(project)
    session.flush()
    return project


def get_project(session: Session, project_id: int) -> Project | None:
    return session.get(Project, project_id)


def create_user(
    session: Session,
    username: str,
    role: str,
    *,
    project_id: int | None,
    team: str | None = None,
    display_name: str | None = None,
    password: str | None = None,
    digest: bool = True,
    joined_on: str | None = None,
) -> NewUser:
    if role not in ROLES:
        raise AccountError(f"role must be one of {', '.join(ROLES)}")
    username = username.strip()
    if not username or len(username) > 100 or any(c in username for c in ":/ \t"):
        raise AccountError("username must be 1-100 characters without spaces, ':' or '/'")
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise AccountError(f"user {username!r} already exists")
    if role != "admin" and project_id is None:
        raise AccountError("supervisors and volunteers belong to a project")
    if project_id is not None and get_project(session, project_id) is None:
        raise AccountError(f"project {project_id} does not exist")
    user = User(
        username=username,
        role=role,
        project_id=project_id if role != "admin" else None,
        team=team,
        display_name=display_name or username,
        session_epoch=0,
        active=True,
        joined_on=joined_on,
    )
    if role != "volunteer" and password is None:
        password = secrets.token_urlsafe(12)
    if password is not None:
        set_password(user, password, digest=digest)
    session.add(user)
    session.flush()
    return NewUser(user, password)


def get_user(session: Session, username: str) -> User | None:
    return session.scalar(select(User).where(User.username == username))


# Collect tokens --------------------------------------------------------------------------


def _token_from_salt(secret_key: str, salt: str) -> str:
    mac = hmac.new(secret_key.encode(), f"collect-token:{salt}".encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()).decode().rstrip("=")  # 256 bits, 43 chars


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def collect_token(session: Session, user: User, secret_key: str) -> str:
    """The user's Collect token; issued on first use and the same every time after.

    Only a salt and the token's hash are stored: the database alone cannot rebuild it.
    """
    if not user.active:
        raise AccountError(f"user {user.username!r} is revoked")
    if user.token_salt is None:
        user.token_salt = secrets.token_hex(32)
    token = _token_from_salt(secret_key, user.token_salt)
    user.token_hash = token_hash(token)
    session.flush()
    return token


def live_collect_token(user: User, secret_key: str) -> str | None:
    """The token the user's phone holds now (rebuilt from the salt), issuing none; None for
    a user without one or revoked."""
    if not user.active or user.token_salt is None or user.token_hash is None:
        return None
    return _token_from_salt(secret_key, user.token_salt)


# Every Collect request runs this lookup: one statement built once (SQLAlchemy reuses its
# compiled form). Tokens are random 256-bit secrets: a plain SHA-256 finds them, no KDF needed.
_BY_TOKEN = select(User).where(User.token_hash == bindparam("token_hash"))


def user_for_token(session: Session, token: str) -> User | None:
    if not token or len(token) > 100:
        return None
    user = session.scalar(_BY_TOKEN, {"token_hash": token_hash(token)})
    return user if user is not None and user.active else None


def revoke(session: Session, user: User) -> None:
    """Takes effect at once: the token no longer matches and web sessions end.

    A later `collect_token` issues a different token (a new salt) for a new phone.
    """
    user.token_hash = None
    user.token_salt = None
    user.session_epoch += 1
    session.flush()


def deactivate(session: Session, user: User, left_on: str) -> None:
    """The member left the team on `left_on` (a local date): the account stops working at
    once, as with `revoke`, and reports count the member as active only before that day."""
    user.active = False
    user.left_on = left_on
    user.left_recorded_at = utcnow()
    revoke(session, user)


# Unambiguous when read aloud or copied from paper: no 0/o, 1/l/i.
_READABLE = "abcdefghjkmnpqrstuvwxyz23456789"


def readable_password() -> str:
    """12 random characters in three groups (about 59 bits), e.g. `k7mq-x3vr-9tpz`."""
    chars = "".join(secrets.choice(_READABLE) for _ in range(12))
    return "-".join(chars[i:i + 4] for i in range(0, 12, 4))


def reset_password(session: Session, user: User, *, digest: bool) -> str:
    """A new password for someone who lost theirs; their open web sessions end."""
    password = readable_password()
    set_password(user, password, digest=digest)
    user.session_epoch += 1
    session.flush()
    return password


def change_password(session: Session, user: User, current: str, new: str, *,
                    digest: bool) -> None:
    """The user's own change: the current password first, so an open session left on a
    shared computer cannot take the account over. Other sessions end."""
    if not check_password(user, current):
        raise WrongPassword("the current password is wrong")
    set_password(user, new, digest=digest)
    user.session_epoch += 1
    session.flush()


def audit(session: Session, action: str, *, actor: User | None = None, target: str | None = None,
          **details) -> None:
    session.add(
        AuditEntry(action=action, actor_id=actor.id if actor else None, target=target,
                   details=details or None)
    )


def has_admin(session: Session) -> bool:
    return session.scalar(select(User.id).where(User.role == "admin").limit(1)) is not None


# Password logins (web page and API) are throttled per typed username and address.
MAX_FAILED_LOGINS = 5
FAILED_LOGIN_WINDOW = dt.timedelta(minutes=15)


def login_throttled(session: Session, username: str, ip: str) -> bool:
    since = utcnow() - FAILED_LOGIN_WINDOW
    failures = session.scalar(select(func.count()).select_from(LoginAttempt).where(
        LoginAttempt.username == username, LoginAttempt.ip == ip, LoginAttempt.at >= since))
    return (failures or 0) >= MAX_FAILED_LOGINS


def record_failed_login(session: Session, username: str, ip: str) -> None:
    session.execute(delete(LoginAttempt).where(
        LoginAttempt.at < utcnow() - dt.timedelta(days=1)))
    session.add(LoginAttempt(username=username, ip=ip, at=utcnow()))


def clear_failed_logins(session: Session, username: str, ip: str) -> None:
    session.execute(delete(LoginAttempt).where(LoginAttempt.username == username,
                                               LoginAttempt.ip == ip))
