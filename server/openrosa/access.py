"""Authentication and least privilege for the OpenRosa routes."""

from __future__ import annotations

from flask import current_app, g, request

from server.domain import accounts
from server.errors import Forbidden, NotFound
from server.openrosa import auth
from server.web_context import db_session


def authenticate_request() -> None:
    session = db_session()
    cfg = current_app.config
    if g.token is not None:
        user = auth.authenticate_token(session, g.token)
    else:
        user = auth.authenticate_password(session, request, cfg["SECRET_KEY"],
                                          bool(cfg["DIGEST_AUTH"]))
    if accounts.get_project(session, g.project_id) is None:
        raise NotFound(f"project {g.project_id}")
    if not auth.may_use_project(user, g.project_id):
        raise Forbidden()
    g.user = user


def base_url() -> str:
    """External URL of the prefix this request came in under (token prefix kept)."""
    # SERVER_BASE_URL is the whole external root (with any path the proxy adds).
    root = current_app.config["BASE_URL"] or (request.host_url.rstrip("/") + request.script_root)
    prefix = (f"/v1/key/{g.token}/projects/{g.project_id}" if g.token is not None
              else f"/v1/projects/{g.project_id}")
    return root.rstrip("/") + prefix
