"""The OpenRosa API that ODK Collect talks to, under two prefixes:

    /v1/projects/<N>/…             password users (Digest; Basic over https only)
    /v1/key/<token>/projects/<N>/… volunteers' tokens (what the QR code carries)

Every response carries the OpenRosa headers; every error is an OpenRosaResponse.
"""

from __future__ import annotations

from email.utils import formatdate

from flask import Blueprint, Flask, Response, current_app, g, make_response, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from server.errors import DomainError, NotFound, TooLarge
from server.openrosa import render
from server.openrosa.auth import Challenge

bp = Blueprint("openrosa", __name__)

PREFIXES = ("/v1/projects/<int:project_id>", "/v1/key/<token>/projects/<int:project_id>")


def route(rule: str, **options):
    """Register a view under both prefixes."""

    def decorator(view):
        for prefix in PREFIXES:
            bp.add_url_rule(prefix + rule, view_func=view, **options)
        return view

    return decorator


@bp.url_value_preprocessor
def take_prefix(_endpoint, values):
    if values is not None:
        g.project_id = values.pop("project_id")
        g.token = values.pop("token", None)


@bp.before_request
def authenticate():
    from server.openrosa.access import authenticate_request

    authenticate_request()


@bp.after_request
def openrosa_headers(response: Response) -> Response:
    return add_openrosa_headers(response)


def add_openrosa_headers(response: Response) -> Response:
    response.headers["X-OpenRosa-Version"] = "1.0"
    response.headers["X-OpenRosa-Accept-Content-Length"] = str(
        current_app.config["MAX_SUBMISSION_BYTES"]
    )
    response.headers["Date"] = formatdate(usegmt=True)
    response.headers.setdefault("Content-Language", "vi")
    if request.method in ("GET", "HEAD"):
        response.headers.setdefault("Cache-Control", "private, no-cache")
        response.headers["Vary"] = "Authorization"
    else:
        response.headers["Cache-Control"] = "no-store"
    return response


def error_response(exc: Exception) -> Response:
    if isinstance(exc, RequestEntityTooLarge):
        exc = TooLarge(
            f"limit {current_app.config['MAX_SUBMISSION_BYTES']} bytes"
        )
    if isinstance(exc, DomainError):
        status, message = exc.status, exc.message
    elif isinstance(exc, HTTPException):
        status = exc.code or 500
        message = f"{exc.name}: {exc.description}" if exc.description else exc.name
        if status == 404:
            status, message = 404, NotFound().message
    else:  # pragma: no cover - a bug, not bad input
        raise exc
    response = Response(render.response(message, error=True), status=status,
                        content_type="text/xml; charset=utf-8")
    if isinstance(exc, Challenge):
        for ch in exc.challenges:
            response.headers.add("WWW-Authenticate", ch.to_header())
    return response


@bp.errorhandler(DomainError)
@bp.errorhandler(HTTPException)
def openrosa_error(exc):
    return error_response(exc)


def register_error_pages(app: Flask) -> None:
    """Errors raised before routing (unknown URL, oversize body) under /v1 answer in XML too."""

    from server import central

    @app.errorhandler(HTTPException)
    def any_http_error(exc: HTTPException):
        if request.path.startswith("/v1/"):
            if central.wants_json():
                return central.error_body(exc)
            return add_openrosa_headers(error_response(exc))
        if exc.code is None or exc.code < 400:
            return exc  # a redirect raised by routing (a missing trailing slash)
        from server.web import error_page  # people's pages: the same page as inside the UI

        response = make_response(error_page(exc))
        for name, value in exc.get_headers():
            if name.lower() != "content-type":
                response.headers[name] = value  # Allow, Retry-After
        return response


from server.openrosa import views  # noqa: E402,F401  (registers the routes)
