"""Who is calling the OpenRosa API: a volunteer's token in the URL, or a password user.

Password users authenticate reactively, as Collect expects: a 401 always carries a
WWW-Authenticate challenge. Digest (MD5, qop=auth) works on http and https; Basic is
offered and accepted only on https (Collect never sends Basic over plain http).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time

from flask import Request
from sqlalchemy.orm import Session
from werkzeug.datastructures import WWWAuthenticate

from server.db.models import User
from server.domain import accounts
from server.errors import Forbidden, Unauthorized, problem

NONCE_LIFETIME_S = 300


class Challenge(Unauthorized):
    """401 with the challenges this request may answer; `stale`: the right password with an
    expired nonce (not a failed attempt)."""

    def __init__(self, challenges: list[WWWAuthenticate], *, stale: bool = False):
        super().__init__()
        self.challenges = challenges
        self.stale = stale


TooManyAttempts = problem(
    429.1,
    "Sai mật khẩu quá nhiều lần. Hãy thử lại sau 15 phút.",
    "Too many failed logins for this account from this address. Try again in 15 minutes.",
    "TooManyAttempts",
)


def claimed_username(request: Request) -> str | None:
    """The username that this request's credentials claim (Basic or Digest), if any: what
    failed attempts are counted against."""
    header = request.headers.get("Authorization", "")
    if header[:6].lower() == "basic ":
        try:
            decoded = base64.b64decode(header[6:].strip(), validate=True).decode("latin-1")
        except ValueError:
            return None
        return decoded.partition(":")[0] or None
    auth = request.authorization if header else None
    if auth is not None and auth.type == "digest":
        return auth.parameters.get("username") or None
    return None


def _nonce(secret: str, now: int | None = None) -> str:
    ts = str(now if now is not None else int(time.time()))
    sig = hmac.new(secret.encode(), f"nonce:{ts}".encode(), hashlib.sha256).hexdigest()[:32]
    return base64.b64encode(f"{ts}:{sig}".encode()).decode()


def _nonce_state(secret: str, nonce: str) -> str:
    """'ok', 'stale' (ours but expired) or 'bad'."""
    try:
        ts, _ = base64.b64decode(nonce, validate=True).decode().split(":", 1)
        issued = int(ts)
    except (ValueError, UnicodeDecodeError):
        return "bad"
    if not hmac.compare_digest(_nonce(secret, issued), nonce):
        return "bad"
    return "ok" if time.time() - issued <= NONCE_LIFETIME_S else "stale"


def challenges(request: Request, secret: str, digest_enabled: bool, *, stale=False):
    out = []
    if digest_enabled:
        ch = WWWAuthenticate("digest", {
            "realm": accounts.DIGEST_REALM,
            "qop": "auth",
            "nonce": _nonce(secret),
            "opaque": secrets.token_hex(8),
            "algorithm": "MD5",
            # HA1 is kept over the UTF-8 password; okhttp-digest encodes with this charset.
            "charset": "UTF-8",
        })
        if stale:
            ch.parameters["stale"] = "true"
        out.append(ch)
    if request.is_secure or not digest_enabled:
        # Without Digest a 401 still names a scheme, though Basic is only accepted on https.
        out.append(WWWAuthenticate("basic", {"realm": accounts.DIGEST_REALM}))
    return out


def authenticate_password(session: Session, request: Request, secret: str,
                          digest_enabled: bool) -> User:
    """The password user of this request, or a Challenge (401) to send back."""
    header = request.headers.get("Authorization", "")
    user = None
    if header[:6].lower() == "basic ":
        # Parsed here, not by Werkzeug, which gives up on Collect's latin-1 credentials.
        user = _check_basic(session, header[6:]) if request.is_secure else None
    elif header:
        auth = request.authorization
        if auth is not None and auth.type == "digest" and digest_enabled:
            user = _check_digest(session, request, auth, secret)
    if user is None:
        raise Challenge(challenges(request, secret, digest_enabled))
    return user


def _check_basic(session: Session, credentials: str) -> User | None:
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True)
    except ValueError:
        return None
    # Collect (okhttp) encodes Basic credentials as ISO-8859-1; browsers and curl use UTF-8.
    for encoding in ("utf-8", "latin-1"):
        try:
            username, _, password = decoded.decode(encoding).partition(":")
        except UnicodeDecodeError:
            continue
        user = accounts.get_user(session, username)
        if user is not None and accounts.check_password(user, password):
            return user
    return None


def _check_digest(session: Session, request: Request, auth, secret: str) -> User | None:
    p = auth.parameters
    username, nonce, response = p.get("username"), p.get("nonce"), p.get("response")
    if not (username and nonce and response and p.get("uri")):
        return None
    if p["uri"].split("?", 1)[0] not in (request.path, request.url.split("?", 1)[0]):
        return None  # a response computed for another URL
    user = accounts.get_user(session, username)
    if user is None or not user.active or not user.digest_ha1:
        return None
    state = _nonce_state(secret, nonce)
    if state == "bad":
        return None
    ha2 = hashlib.md5(f"{request.method}:{p['uri']}".encode()).hexdigest()  # noqa: S324
    if p.get("qop") == "auth":
        material = f"{user.digest_ha1}:{nonce}:{p.get('nc', '')}:{p.get('cnonce', '')}:auth:{ha2}"
    else:
        material = f"{user.digest_ha1}:{nonce}:{ha2}"
    expected = hashlib.md5(material.encode()).hexdigest()  # noqa: S324
    if not hmac.compare_digest(expected, response):
        return None
    if state == "stale":  # right password, old nonce: Collect retries without prompting
        raise Challenge(challenges(request, secret, True, stale=True), stale=True)
    return user


def authenticate_token(session: Session, token: str) -> User:
    """A volunteer's token. Unknown or revoked gives 403, never 401: Collect would prompt."""
    user = accounts.user_for_token(session, token)
    if user is None:
        raise Forbidden()
    return user


def may_use_project(user: User, project_id: int) -> bool:
    return user.active and (user.role == "admin" or user.project_id == project_id)
