"""Authentication and least privilege for the OpenRosa routes."""

from __future__ import annotations

from flask import current_app, g, request

from server.domain import accounts, api_sessions
from server.errors import Forbidden, NotFound
from server.openrosa import auth
from server.web_context import database


def authenticate_request() -> None:
    # OpenRosa requests only read through the request's session (a submission is written by
    # the group writer), so even a POST never holds SQLite's write lock while it authenticates
    # and receives its body.
    if "db_session" not in g:
        g.db_session = database().session(write=False)
    session = g.db_session
    cfg = current_app.config
    bearer = request.headers.get("Authorization", "")
    if g.token is not None:
        user = auth.authenticate_token(session, g.token)
    elif bearer.startswith("Bearer ") and (user := api_sessions.user_for_bearer(
            session, bearer.partition(" ")[2].strip())) is not None:
        pass  # an API session: pyodk reads a form's XML and attachments at these URLs
    else:  # no valid bearer: the password challenge, as for any client
        user = _password_user(session, cfg)
    if not _project_exists(session, g.project_id):
        raise NotFound(f"project {g.project_id}")
    if not auth.may_use_project(user, g.project_id):
        raise Forbidden()
    g.user = user


def _password_user(session, cfg):
    """Digest or Basic, throttled like the web login: five wrong passwords for a username from
    one address lock that pair out for 15 minutes, the right password included."""
    claimed = auth.claimed_username(request)
    key = ((claimed or "").strip().casefold()[:100], (request.remote_addr or "")[:64])
    if claimed and accounts.login_throttled(session, *key):
        raise auth.TooManyAttempts()
    try:
        return auth.authenticate_password(session, request, cfg["SECRET_KEY"],
                                          bool(cfg["DIGEST_AUTH"]))
    except auth.Challenge as challenge:
        if claimed and not challenge.stale:
            # The request's own session only reads: the failure is written apart, at once.
            with database().session(write=True) as writer:
                accounts.record_failed_login(writer, *key)
                accounts.audit(writer, "openrosa.login_failed", target=key[0][:255], ip=key[1])
                writer.commit()
        raise


def _project_exists(session, project_id: int) -> bool:
    """Projects are never deleted, so one that was found once is remembered by this app."""
    known = current_app.extensions.setdefault("openrosa_projects", set())
    if project_id in known:
        return True
    if accounts.get_project(session, project_id) is None:
        return False
    known.add(project_id)
    return True


def base_url() -> str:
    """External URL of the prefix this request came in under (token prefix kept)."""
    # SERVER_BASE_URL is the whole external root (with any path the proxy adds).
    root = current_app.config["BASE_URL"] or (request.host_url.rstrip("/") + request.script_root)
    prefix = (f"/v1/key/{g.token}/projects/{g.project_id}" if g.token is not None
              else f"/v1/projects/{g.project_id}")
    return root.rstrip("/") + prefix
