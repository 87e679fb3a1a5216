"""OpenRosa routes: form list, form XML, manifest, media, submission."""

from __future__ import annotations

from urllib.parse import quote

from flask import Response, current_app, g, request

from server import intake
from server.db.models import Form, FormVersion
from server.domain import assignments, entities, generated_media
from server.domain import forms as forms_domain
from server.domain.submissions import Uploader
from server.errors import Forbidden, FormNotFound, NotFound
from server.openrosa import render, route
from server.openrosa.access import base_url
from server.openrosa.form_list import FormListCache, listed_rows
from server.openrosa.upload import read_upload
from server.web_context import blob_store, db_session

XML = "text/xml; charset=utf-8"


def _xml(body: bytes, status: int = 200) -> Response:
    return Response(body, status=status, content_type=XML)


def _form_path(form: Form, fv: FormVersion) -> str:
    fid = quote(form.xml_form_id, safe="")
    if fv.version:
        return f"{base_url()}/forms/{fid}/versions/{quote(fv.version, safe='')}"
    return f"{base_url()}/forms/{fid}"


@route("/formList", methods=["GET"])
def form_list():
    cache = current_app.extensions.get("form_lists")
    if cache is None:
        cache = current_app.extensions.setdefault("form_lists", FormListCache())
    rows = g.get("listed_forms")  # read with a token's authentication (see access.py)
    if rows is None:
        rows = listed_rows(db_session(), g.project_id, assignments.limited_user_id(g.user))
    body, digest = cache.document(rows, g.project_id, base_url(), request.args.get("formID"),
                                  db_session)
    return _etagged(body, digest, XML)


def _load(form_id: str, version: str | None) -> tuple[Form, FormVersion]:
    session = db_session()
    form = forms_domain.get_form(session, g.project_id, form_id)
    if form is None:
        raise FormNotFound(form_id)
    _check_assigned(form)
    fv = (forms_domain.get_version(session, form, version) if version is not None
          else form.current_version)
    if fv is None:
        raise FormNotFound(f"{form_id} version {version!r}")
    return form, fv


def _check_assigned(form: Form) -> None:
    """A volunteer with assigned forms uses only those."""
    if not assignments.may_use(db_session(), g.user, form):
        raise Forbidden(f"form {form.xml_form_id} is not assigned to this account")


@route("/forms/<form_id>.xml", methods=["GET"])
@route("/forms/<form_id>/versions/<version>.xml", methods=["GET"])
def form_xml(form_id: str, version: str | None = None):
    _, fv = _load(form_id, version)
    return _etagged(fv.xml, fv.md5, "application/xml")


@route("/forms/<form_id>/manifest", methods=["GET"])
@route("/forms/<form_id>/versions/<version>/manifest", methods=["GET"])
def manifest(form_id: str, version: str | None = None):
    session = db_session()
    form, fv = _load(form_id, version)
    path = _form_path(form, fv)
    entries = []
    for media in forms_domain.media_of(session, fv):
        data_md5 = (media.blob.md5 if media.blob is not None
                    else _generated(media.filename).md5)
        entity_list = media.filename in forms_domain.ENTITY_LISTS
        integrity = (f"{base_url()}/datasets/{media.filename[:-4]}/integrity"
                     if entity_list else None)
        entries.append(render.ManifestEntry(
            filename=media.filename, md5=data_md5,
            download_url=f"{path}/attachments/{quote(media.filename, safe='')}",
            entity_list=entity_list, integrity_url=integrity,
        ))
    return _xml(render.manifest(entries))


@route("/forms/<form_id>/attachments/<filename>", methods=["GET"])
@route("/forms/<form_id>/versions/<version>/attachments/<filename>", methods=["GET"])
def media_file(form_id: str, filename: str, version: str | None = None):
    session = db_session()
    _, fv = _load(form_id, version)
    media = next((m for m in forms_domain.media_of(session, fv) if m.filename == filename), None)
    if media is None:
        raise NotFound(filename)
    if media.blob is None:
        generated = _generated(filename)
        return _etagged(generated.data, generated.md5, media.content_type, filename)
    data = blob_store().get(session, media.blob_sha256)
    return _etagged(data, media.blob.md5, media.content_type, filename)


def _generated(filename: str) -> generated_media.Generated:
    return generated_media.render(db_session(), current_app.extensions["list_cache"], filename,
                                  g.project_id, g.user)


@route("/datasets/<dataset>/integrity", methods=["GET"])
def dataset_integrity(dataset: str):
    """Whether each entity id a device asks about was deleted (merged away or erased)."""
    ids = request.args.get("id", "").split(",")
    states = entities.integrity(db_session(), g.project_id, dataset, ids)
    return _xml(render.integrity(states))


def _etagged(data: bytes, md5: str, content_type: str, filename: str | None = None) -> Response:
    """ETag = the md5 the manifest lists (the form list's digest for the form list); 304 only
    for a matching If-None-Match."""
    etag = f'"{md5}"'
    if etag in [t.strip() for t in request.headers.get("If-None-Match", "").split(",")]:
        response = Response(status=304)
    else:
        response = Response(data, content_type=content_type)
        if filename:
            response.headers["Content-Disposition"] = (
                f"attachment; filename*=UTF-8''{quote(filename, safe='')}"
            )
    response.headers["ETag"] = etag
    return response


@route("/submission", methods=["GET", "HEAD"])
def submission_preflight():
    # Collect sends HEAD before every POST and accepts only 204 (a GET answers the same).
    return Response(status=204)


@route("/submission", methods=["POST"])
def submission():
    upload = read_upload(request)
    prepared = intake.parse(upload.xml, upload.files)
    form = forms_domain.get_form(db_session(), g.project_id, prepared.envelope.form_id)
    if form is not None:  # an unknown form is the ingest's to refuse
        _check_assigned(form)
    uploader = Uploader(user_id=g.user.id, device_id=request.args.get("deviceID", "")[:255] or None,
                        user_agent=request.headers.get("User-Agent"))
    # The request only read so far (see access.py); the user object stays usable after.
    missing = intake.store(db_session(), prepared, project_id=g.project_id,
                           uploader=uploader).missing_attachments
    if missing:
        message = (f"Đã nhận phiếu; còn chờ {len(missing)} tệp đính kèm. / "
                   f"Submission received; {len(missing)} attachment(s) still expected.")
    else:
        message = "Đã nhận đầy đủ phiếu. / Full submission upload was successful!"
    return _xml(render.response(message), 201)
