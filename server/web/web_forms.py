"""`/forms/<id>/fill`: fill and send a published form in the browser with ODK Web Forms;
`/fill` lists the forms the user may fill (a volunteer with a password sees only this).

The page loads the form's current XForm into `OdkWebForm` (@getodk/web-forms, vendored under
static/webforms/ by `make webforms-assets`: no CDN, no npm at run time). Its attachments come
from the same files the user's own Collect would get (entity lists built for the user's tổ),
and the filled form is stored through the same path as a Collect submission, with the
logged-in user as its submitter.
"""

from __future__ import annotations

import json
import secrets
from functools import cache
from pathlib import Path

from flask import Response, abort, current_app, g, jsonify, render_template, request, url_for
from flask_babel import gettext as _

from server import intake
from server.db.models import Form, FormVersion
from server.domain import forms as forms_domain
from server.domain import generated_media
from server.domain.submissions import Uploader
from server.errors import DomainError, InvalidSubmission
from server.openrosa.upload import read_upload
from server.web import bp, scope
from server.web.labels import form_labels
from server.web.templating import lang
from server.web_context import blob_store, database, db_session

ASSETS = Path(__file__).parent / "static" / "webforms"
# The vendored files never change under their versioned folder names, so browsers keep them.
LONG_CACHE = "public, max-age=31536000, immutable"


@cache
def _versions() -> dict[str, str]:
    """The pinned versions, which name the folders `make webforms-assets` fills."""
    pins = json.loads((ASSETS / "package.json").read_text(encoding="utf-8"))["dependencies"]
    return {"web-forms": pins["@getodk/web-forms"], "vue": pins["vue"]}


def _asset(path: str) -> str:
    return url_for("web.static", filename=f"webforms/{path}")


def import_map() -> dict:
    """web-forms' only bare import is `vue`; our page script imports web-forms by name too."""
    v = _versions()
    return {"imports": {
        "vue": _asset(f"vue-{v['vue']}/vue.esm-browser.prod.js"),
        "@getodk/web-forms": _asset(f"web-forms-{v['web-forms']}/index.js"),
    }}


def page_csp(nonce: str) -> str:
    """The site's policy (security.CSP), relaxed for this page only as far as Web Forms needs:
    - script-src 'nonce-…': the inline import map (a browser loads no import map from a file);
    - script-src 'wasm-unsafe-eval': the XPath engine compiles its WebAssembly parser (inlined
      in the bundle), which a policy without it refuses;
    - style-src 'unsafe-inline': the bundle injects its CSS as a <style> element and its
      components set style attributes;
    - font-src data:: the fonts are inlined in that CSS;
    - img-src/media-src blob:: previews of the photos being attached, before they are sent;
    - worker-src blob: data:: the photo resizer runs in workers made from such URLs (without
      them it falls back to the page's own thread, and logs CSP errors).
    """
    return ("default-src 'self'; "
            f"script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; "
            "style-src 'self' 'unsafe-inline'; font-src 'self' data:; "
            "img-src 'self' data: blob:; media-src 'self' blob:; worker-src 'self' blob: data:; "
            "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


@bp.after_app_request
def cache_vendored_assets(response: Response) -> Response:
    filename = (request.view_args or {}).get("filename", "")
    if (request.endpoint == "web.static" and response.status_code == 200
            and filename.startswith(("webforms/web-forms-", "webforms/vue-"))):
        response.headers["Cache-Control"] = LONG_CACHE
    return response


def _form(fid: int) -> tuple[Form, FormVersion]:
    """A form of the request's project with its current version, or a 404 page."""
    form = db_session().get(Form, fid)
    if form is None or form.project_id != scope.project_id() or form.current_version is None:
        abort(404)
    return form, form.current_version


# The pages -----------------------------------------------------------------------------------


@bp.get("/fill")
def fill_list():
    rows = []
    for form in scope.fillable_forms():
        version = form.current_version
        rows.append((form, form_labels(version.xml, lang()).title or version.title
                     or form.xml_form_id))
    return render_template("fill_list.html", rows=rows)


@bp.get("/forms/<id:fid>/fill")
def fill_form(fid: int):
    form, version = _form(fid)
    nonce = secrets.token_urlsafe(16)
    title = form_labels(version.xml, lang()).title or version.title or form.xml_form_id
    page = render_template(
        "fill.html", form=form, version=version, title=title, nonce=nonce,
        import_map=import_map(), accepts=form.state != "closed",
        xform_url=url_for("web.fill_xform", fid=form.id, vid=version.id),
        files_url=url_for("web.fill_attachment", fid=form.id, vid=version.id,
                          filename="_").removesuffix("_"),
        submit_url=url_for("web.submit_filled", fid=form.id))
    response = Response(page, content_type="text/html; charset=utf-8")
    response.headers["Content-Security-Policy"] = page_csp(nonce)
    return response


def _version(fid: int, vid: int) -> tuple[Form, FormVersion]:
    """A version of a form of the request's project, or a 404 page."""
    form = db_session().get(Form, fid)
    version = db_session().get(FormVersion, vid)
    if (form is None or form.project_id != scope.project_id() or version is None
            or version.form_id != form.id):
        abort(404)
    return form, version


@bp.get("/forms/<id:fid>/versions/<id:vid>/fill.xml")
def fill_xform(fid: int, vid: int):
    """The XForm the page renders (the version it was opened with, should a new one be
    published meanwhile)."""
    _form, version = _version(fid, vid)
    response = Response(version.xml, content_type="text/xml; charset=utf-8")
    response.headers["Content-Disposition"] = "attachment"  # read by the page's script only
    return response


@bp.get("/forms/<id:fid>/versions/<id:vid>/fill/<filename>")
def fill_attachment(fid: int, vid: int, filename: str):
    """A form attachment as the logged-in user's Collect gets it: stored media as published,
    entity lists built for the user's tổ (the whole ward for the ward office and admins)."""
    form, version = _version(fid, vid)
    db = db_session()
    media = next((m for m in forms_domain.media_of(db, version) if m.filename == filename), None)
    if media is None:
        abort(404)
    if media.blob_sha256 is not None:
        data = blob_store().get(db, media.blob_sha256)
    else:
        try:
            data = generated_media.render(db, current_app.extensions["list_cache"], filename,
                                          form.project_id, g.actor).data
        except KeyError:  # a generated name this server does not build
            abort(404)
    response = Response(data, content_type=media.content_type)
    # read by the page's script only: never shown as a page of this site
    response.headers["Content-Disposition"] = "attachment"
    return response


# Sending -------------------------------------------------------------------------------------


@bp.post("/forms/<id:fid>/fill")
def submit_filled(fid: int):
    """The page's FormData (xml_submission_file and the attached files), CSRF token in a
    header; answers JSON. Anything refused stores nothing."""
    form, _version = _form(fid)
    try:
        upload = read_upload(request)
        prepared = intake.parse(upload.xml, upload.files)
        if prepared.envelope.form_id != form.xml_form_id:
            raise InvalidSubmission(f"this is form {prepared.envelope.form_id!r}, "
                                    f"not {form.xml_form_id!r}")
        uploader = Uploader(user_id=g.actor.id, device_id=None,
                            user_agent=request.headers.get("User-Agent"))
        # The submission is written by the group writer: this request's own session must not
        # keep SQLite's write lock meanwhile, so it reads on without one.
        db_session().close()
        g.db_session = database().session(write=False)
        result = intake.store(g.db_session, prepared, project_id=form.project_id,
                              uploader=uploader)
    except DomainError as exc:
        return jsonify(message=exc.message), exc.status
    # A volunteer reads no submission pages: its answer links nowhere.
    submission_url = (None if g.actor.role == "volunteer"
                      else url_for("web.submission", sid=result.submission_id))
    return jsonify(
        message=_("Đã gửi phiếu."), instance_id=prepared.instance_id,
        submission_url=submission_url,
        missing_attachments=list(result.missing_attachments)), 201
