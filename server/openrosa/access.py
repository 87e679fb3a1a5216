"""Authentication and least privilege for the OpenRosa routes."""

from __future__ import annotations

import functools

from flask import current_app, g, request
from werkzeug.sansio.utils import get_current_url

from server.domain import accounts, api_sessions
from server.errors import Forbidden, NotFound
from server.openrosa import auth, form_list
from server.web_context import database, db_session


def authenticate_request() -> None:
    if g.token is not None and request.endpoint == "openrosa.form_list":
        _authenticate_token_form_list()
        return
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
    _check_project(user)
    g.user = user


def _authenticate_token_form_list() -> None:
    """Collect's most frequent request: the token's user and its form rows in one statement,
    on a connection of its own (no ORM session unless the list must be rendered)."""
    with database().engine.connect() as connection:
        user, rows = form_list.token_listing(connection, g.token, g.project_id)
    if user is None or not user.active:
        raise Forbidden()  # as auth.authenticate_token: never 401, Collect would prompt
    _check_project(user)
    g.user = user
    g.listed_forms = rows


def _check_project(user) -> None:
    if not _project_exists(g.project_id):
        raise NotFound(f"project {g.project_id}")
    if not auth.may_use_project(user, g.project_id):
        raise Forbidden()


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


def _project_exists(project_id: int) -> bool:
    """Projects are never deleted, so one that was found once is remembered by this app."""
    known = current_app.extensions.setdefault("openrosa_projects", set())
    if project_id in known:
        return True
    if accounts.get_project(db_session(), project_id) is None:
        return False
    known.add(project_id)
    return True


def base_url() -> str:
    """External URL of the prefix this request came in under (token prefix kept)."""
    # SERVER_BASE_URL is the whole external root (with any path the proxy adds).
    root = current_app.config["BASE_URL"] or _request_root(
        request.scheme, request.host, request.root_path)
    prefix = (f"/v1/key/{g.token}/projects/{g.project_id}" if g.token is not None
              else f"/v1/projects/{g.project_id}")
    return root.rstrip("/") + prefix


@functools.lru_cache(maxsize=64)
def _request_root(scheme: str, host: str, root_path: str) -> str:
    # What request.host_url + request.script_root give, worked out once per host: decoding the URL
    # is most of the cost of building download URLs, and Collect asks under one host.
    return get_current_url(scheme, host).rstrip("/") + root_path
