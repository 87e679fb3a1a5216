"""ODK-compatible field data server for Vietnam's community digital-technology teams."""

from __future__ import annotations

from pathlib import Path

from flask import Flask, g, jsonify, request
from werkzeug.middleware.proxy_fix import ProxyFix

from server.config import load_config
from server.db import Database
from server.domain.dedupe import DEFAULT_CONFIG, DedupeConfig
from server.domain.generated_media import ListCache
from server.domain.ward import load_ward_config
from server.http_request import ServerRequest
from server.request_log import USER_KEY, RequestLog
from server.storage import make_blob_store


def create_app(overrides: dict | None = None) -> Flask:
    app = Flask(__name__)
    app.request_class = ServerRequest
    load_config(app, overrides)
    if app.config["TRUST_PROXY"]:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1)  # type: ignore[method-assign]
    app.wsgi_app = RequestLog(app.wsgi_app)  # type: ignore[method-assign]

    app.extensions["db"] = Database(app.config["DATABASE_URL"])
    app.extensions["blobs"] = make_blob_store(app.config["BLOB_STORE"], app.config["DATA_DIR"])
    app.extensions["list_cache"] = ListCache()
    ward_file = Path(app.config["WARD_CONFIG"])
    app.extensions["ward"] = load_ward_config(ward_file) if ward_file.exists() else None
    app.extensions["matcher"] = (DedupeConfig.for_ward(app.extensions["ward"])
                                 if app.extensions["ward"] else DEFAULT_CONFIG)

    from server import central, openrosa

    app.register_blueprint(openrosa.bp)
    central.init_app(app)  # Central's REST API, for pyodk and OData clients
    openrosa.register_error_pages(app)

    from server import web

    web.init_app(app)  # the supervisors' pages, with login, CSRF and Babel

    @app.teardown_request
    def close_uploads(_exc):
        request.close_part_streams()

    @app.teardown_request
    def name_user_for_log(_exc):
        user = g.get("user") or g.get("actor")  # OpenRosa's account, or the web page's
        if user is not None:
            request.environ[USER_KEY] = user.id

    @app.teardown_appcontext
    def close_session(_exc):
        session = g.pop("db_session", None)
        if session is not None:
            session.close()

    @app.get("/healthz")
    def healthz():
        try:
            ok = app.extensions["db"].ping()
        except Exception:  # noqa: BLE001  (any database failure means "not ready")
            ok = False
        if not ok:
            return jsonify(status="unavailable"), 503
        return jsonify(status="ok")

    return app
