"""The supervisors' web UI: server-rendered pages, Vietnamese first, English selectable.

Every page needs a logged-in supervisor or admin unless its endpoint is in PUBLIC_ENDPOINTS
(deny by default); a volunteer with a password reaches only VOLUNTEER_ENDPOINTS, for the forms
its Collect lists. Every form carries a CSRF token (the OpenRosa blueprint is the one
exemption); each request that writes commits once, after its view succeeded.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    abort,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import Babel
from flask_babel import gettext as _
from flask_login import LoginManager, current_user
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import HTTPException, InternalServerError
from werkzeug.routing import BaseConverter

from server.web import security

bp = Blueprint("web", __name__, template_folder="templates", static_folder="static",
               static_url_path="/assets")
csrf = CSRFProtect()
login_manager = LoginManager()

PUBLIC_ENDPOINTS = frozenset({"web.login", "web.set_language", "web.static", "static", "healthz"})
# A volunteer who has a password fills its own forms in the browser and nothing more: every
# other page answers 403. A URL naming a form (`fid`) must also be one its Collect lists.
VOLUNTEER_ENDPOINTS = frozenset({"web.fill_list", "web.fill_form", "web.fill_xform",
                                 "web.fill_attachment", "web.submit_filled", "web.logout"})
LANGUAGES = ("vi", "en")


class IdConverter(BaseConverter):
    """A database id: 1-9 digits, so no URL can overflow an integer column."""

    regex = r"[1-9][0-9]{0,8}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value) -> str:
        return str(int(value))


def init_app(app: Flask) -> None:
    """Bind the web UI to the app: converters, blueprint, login, CSRF, Babel, headers."""
    app.url_map.converters["id"] = IdConverter
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)  # valid as long as the session
    app.config["PERMANENT_SESSION_LIFETIME"] = timedelta(hours=12)  # idle time allowed
    app.config.setdefault("BABEL_DEFAULT_LOCALE", "vi")
    app.config.setdefault("BABEL_DEFAULT_TIMEZONE", app.config["TIMEZONE"])
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = str(Path(__file__).parent / "translations")
    app.session_interface = security.SessionInterface()
    app.register_blueprint(bp)  # its login guard runs before the CSRF check
    login_manager.init_app(app)
    login_manager.login_view = "web.login"
    login_manager.login_message = None
    csrf.init_app(app)
    from server import central, openrosa

    csrf.exempt(openrosa.bp)
    csrf.exempt(central.bp)  # bearer tokens, never cookies
    Babel(app, locale_selector=select_locale)


def select_locale() -> str:
    lang = session.get("lang") if request else None
    return lang if lang in LANGUAGES else "vi"


def is_web_request() -> bool:
    return request.blueprint != "openrosa" and not request.path.startswith("/v1/")


def safe_next(target: str | None) -> str:
    """Only a path on this site (no scheme, host or `//`) may be a redirect target."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return url_for("web.dashboard")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return url_for("web.dashboard")
    return target


@bp.before_app_request
def require_login():
    if not is_web_request() or request.endpoint in PUBLIC_ENDPOINTS:
        return None
    if not current_user.is_authenticated:
        target = request.full_path if request.method == "GET" else None
        return redirect(url_for("web.login", next=target.rstrip("?") if target else None))
    from server.web import scope

    scope.load()
    if g.actor.role == "volunteer":
        return _volunteer_gate()
    return None


def _volunteer_gate():
    if request.endpoint == "web.dashboard" and request.method in ("GET", "HEAD"):
        return redirect(url_for("web.fill_list"))
    if request.endpoint not in VOLUNTEER_ENDPOINTS:
        abort(403)
    from server.web import scope

    fid = (request.view_args or {}).get("fid")
    if fid is not None and not scope.may_fill(fid):
        abort(403)
    return None


@bp.after_request
def commit(response):
    """The one commit point: a writing request commits when its view succeeded."""
    db = g.get("db_session")
    if db is not None and response.status_code < 400 and request.method not in (
            "GET", "HEAD", "OPTIONS"):
        db.commit()
    return response


@bp.after_app_request
def headers(response):
    if is_web_request():
        security.add_headers(response)
    return response


def error_message(code: int | None) -> str | None:
    """What an error page says, in the reader's language."""
    return {
        400: _("Yêu cầu không hợp lệ."),
        403: _("Bạn không có quyền xem trang này."),
        404: _("Không tìm thấy trang hoặc bản ghi này."),
        405: _("Thao tác này không được phép ở đây."),
        413: _("Dữ liệu gửi lên quá lớn."),
    }.get(code or 500)


@bp.errorhandler(HTTPException)
def error_page(exc: HTTPException):
    if isinstance(exc, CSRFError):
        message = _("Phiên làm việc đã hết hạn hoặc biểu mẫu không hợp lệ. "
                    "Hãy tải lại trang và thử lại.")
    else:
        message = error_message(exc.code) or exc.description or exc.name
    return render_template("error.html", code=exc.code, message=message), exc.code or 500


@bp.errorhandler(InternalServerError)
def server_error(exc):
    return render_template("error.html", code=500,
                           message=_("Máy chủ gặp lỗi. Hãy thử lại sau.")), 500


from server.web import (  # noqa: E402,F401  (register the routes)
    audit,
    auth,
    dashboard,
    downloads,
    duplicates,
    erasure,
    forms_page,
    households,
    issued,
    people,
    review,
    setup,
    templating,
    trainings,
    web_forms,
)
