"""Publishing forms: XLSForm → XForm with pyxform, checked by ODK Validate, stored for ever.

The XForm bytes of a published version never change (Collect matches forms by their MD5).
A new version becomes current while older versions keep accepting submissions; the same
version with different content is refused.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from io import BytesIO
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.db.models import Form, FormMedia, FormVersion
from server.domain.xform_schema import FormSchema, parse_form_schema
from server.errors import PublishError
from server.storage import BlobStore

FORM_STATES = ("open", "closing", "closed")
# Attachments the server builds for each requesting user (entity lists and registers).
GENERATED_MEDIA = {"households.csv", "members.csv", "volunteers.csv"}
ENTITY_LISTS = {"households.csv"}


class VersionConflict(PublishError):
    """The form's version is already published with other content."""

    def __init__(self, message: str, form_id: str, version: str):
        super().__init__(message)
        self.form_id, self.version = form_id, version


@dataclass
class PublishResult:
    form_id: str
    version: str
    created: bool  # False: that exact version was already published
    warnings: list[str] = field(default_factory=list)


def md5_hex(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()  # noqa: S324 (OpenRosa's hash)


@lru_cache(maxsize=64)
def schema_of(xml: bytes) -> FormSchema:
    """Parsed once per process for each distinct XForm."""
    return parse_form_schema(xml)


def convert_xlsform(xlsx: bytes, name: str) -> tuple[bytes, list[str]]:
    """XLSForm bytes → XForm bytes through pyxform's Python API."""
    from pyxform.errors import PyXFormError
    from pyxform.xls2xform import convert

    warnings: list[str] = []
    try:
        result = convert(xlsform=BytesIO(xlsx), warnings=warnings, pretty_print=True,
                         validate=False, file_type=".xlsx")
    except PyXFormError as exc:
        raise PublishError(f"{name}: {exc}") from exc
    except Exception as exc:  # pyxform raises plain errors for unreadable workbooks
        raise PublishError(f"{name}: not a readable XLSForm ({exc})") from exc
    return result.xform.encode("utf-8"), list(warnings)


def odk_validate(xml: bytes, name: str) -> list[str]:
    """Run ODK Validate (Java); pyxform alone never checks XPath expressions."""
    from pyxform.validators.odk_validate import ODKValidateError, check_xform

    if shutil.which("java") is None:
        return [f"{name}: Java not found, ODK Validate skipped (install a JRE to check XPath)"]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "form.xml"
        path.write_bytes(xml)
        try:
            return [f"{name}: {w}" for w in check_xform(str(path))]
        except ODKValidateError as exc:
            raise PublishError(f"{name}: {exc}") from exc


def publish_xform(
    session: Session,
    store: BlobStore,
    project_id: int,
    xml: bytes,
    *,
    media: Mapping[str, bytes] | None = None,
    xlsform: bytes | None = None,
    xlsform_name: str | None = None,
    name: str = "form",
    keep_media: bool = False,
) -> PublishResult:
    """`keep_media`: a referenced file not given is taken over from the current version."""
    try:
        schema = parse_form_schema(xml)
    except ValueError as exc:
        raise PublishError(f"{name}: {exc}") from exc
    form_id, version = schema.form_id, schema.version or ""
    if form_id.endswith((".xml", ".xls", ".xlsx")):
        raise PublishError(f"{name}: the form id {form_id!r} must not end in a file extension")
    digest = md5_hex(xml)
    form = session.scalar(
        select(Form).where(Form.project_id == project_id, Form.xml_form_id == form_id)
    )
    if form is None:
        form = Form(project_id=project_id, xml_form_id=form_id, state="open")
        session.add(form)
        session.flush()
    existing = session.scalar(
        select(FormVersion).where(FormVersion.form_id == form.id, FormVersion.version == version)
    )
    if existing is not None:
        if existing.md5 == digest:
            return PublishResult(form_id, version, created=False)
        raise VersionConflict(
            f"{name}: version {version!r} of form {form_id!r} is already published with "
            "different content; change the version in the settings sheet", form_id, version
        )
    previous = session.get(FormVersion, form.current_version_id) if (
        keep_media and form.current_version_id) else None
    fv = FormVersion(form_id=form.id, version=version, title=schema.title or form_id,
                     xml=xml, md5=digest, xlsform=xlsform, xlsform_name=xlsform_name)
    session.add(fv)
    session.flush()
    warnings = _attach_media(session, store, fv, schema, media or {}, name, previous)
    form.current_version_id = fv.id
    session.flush()
    return PublishResult(form_id, version, created=True, warnings=warnings)


def _attach_media(session, store, fv: FormVersion, schema: FormSchema,
                  media: Mapping[str, bytes], name: str,
                  previous: FormVersion | None = None) -> list[str]:
    warnings = []
    expected = set(schema.media_references())
    kept = {m.filename: m for m in media_of(session, previous) if m.blob_sha256} if (
        previous is not None) else {}
    for filename in sorted(expected):
        if filename in GENERATED_MEDIA:
            session.add(FormMedia(form_version_id=fv.id, filename=filename, blob_sha256=None,
                                  content_type="text/csv; charset=utf-8"))
        elif filename in media:
            blob = store.put(session, media[filename])
            session.add(FormMedia(form_version_id=fv.id, filename=filename,
                                  blob_sha256=blob.sha256, content_type=_content_type(filename)))
        elif filename in kept:  # the same stored bytes: nothing is copied
            session.add(FormMedia(form_version_id=fv.id, filename=filename,
                                  blob_sha256=kept[filename].blob_sha256,
                                  content_type=kept[filename].content_type))
        else:
            warnings.append(f"{name}: media file {filename!r} is referenced but was not given")
    for extra in sorted(set(media) - expected):
        warnings.append(f"{name}: media file {extra!r} is not referenced by the form; ignored")
    session.flush()
    return warnings


def _content_type(filename: str) -> str:
    import mimetypes

    return mimetypes.guess_type(filename)[0] or "application/octet-stream"


def read_media_folder(folder: Path) -> dict[str, bytes]:
    """Collect's convention: the media of X.xlsx are the files in X-media/ beside it."""
    if not folder.is_dir():
        return {}
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())
            if p.is_file() and not p.name.startswith(".")}


def set_state(session: Session, project_id: int, form_id: str, state: str) -> Form:
    if state not in FORM_STATES:
        raise PublishError(f"state must be one of {', '.join(FORM_STATES)}")
    form = get_form(session, project_id, form_id)
    if form is None:
        raise PublishError(f"form {form_id!r} does not exist in project {project_id}")
    form.state = state
    session.flush()
    return form


def get_form(session: Session, project_id: int, form_id: str) -> Form | None:
    return session.scalar(
        select(Form).where(Form.project_id == project_id, Form.xml_form_id == form_id)
    )


def get_version(session: Session, form: Form, version: str) -> FormVersion | None:
    return session.scalar(
        select(FormVersion).where(FormVersion.form_id == form.id, FormVersion.version == version)
    )


def listed_forms(session: Session, project_id: int, form_id: str | None = None):
    """Open forms with their current version, as the form list shows them."""
    q = (
        select(Form, FormVersion)
        .join(FormVersion, FormVersion.id == Form.current_version_id)
        .where(Form.project_id == project_id, Form.state == "open")
        .order_by(Form.xml_form_id)
    )
    if form_id is not None:
        q = q.where(Form.xml_form_id == form_id)
    return session.execute(q).all()


def media_of(session: Session, fv: FormVersion) -> list[FormMedia]:
    return list(session.scalars(
        select(FormMedia).where(FormMedia.form_version_id == fv.id).order_by(FormMedia.filename)
    ))


def publish_path(session: Session, store: BlobStore, project_id: int, path: Path, *,
                 ward=None, validate: bool = True) -> PublishResult:
    """Publish an XLSForm (.xlsx) or an XForm (.xml) file with its `<stem>-media/` folder."""
    media = read_media_folder(path.with_name(f"{path.stem}-media"))
    return publish_file(session, store, project_id, path.name, path.read_bytes(), media=media,
                        ward=ward, validate=validate)


def publish_file(session: Session, store: BlobStore, project_id: int, filename: str,
                 data: bytes, *, media: Mapping[str, bytes] | None = None, ward=None,
                 validate: bool = True, keep_media: bool = False) -> PublishResult:
    """Publish the bytes of an XLSForm or XForm file named `filename` (its suffix decides)."""
    suffix = Path(filename).suffix.lower()
    if suffix == ".xlsx":
        source = data
        if ward is not None:
            from server.domain.ward import apply_ward_lists

            try:
                data = apply_ward_lists(data, ward)
            except ValueError as exc:
                raise PublishError(f"{filename}: {exc}") from exc
        xml, warnings = convert_xlsform(data, filename)
        xlsform, xlsform_name = source, filename
    elif suffix == ".xml":
        xml, warnings, xlsform, xlsform_name = data, [], None, None
    else:
        raise PublishError(f"{filename}: only .xlsx (XLSForm) and .xml (XForm) can be published")
    existing_md5 = _published_md5(session, project_id, xml)
    if validate and existing_md5 != md5_hex(xml):
        warnings += odk_validate(xml, filename)
    result = publish_xform(session, store, project_id, xml, media=media, xlsform=xlsform,
                           xlsform_name=xlsform_name, name=filename, keep_media=keep_media)
    result.warnings[:0] = warnings
    return result


def _published_md5(session: Session, project_id: int, xml: bytes) -> str | None:
    """The md5 already published for this form id and version, to skip re-validating it."""
    try:
        schema = parse_form_schema(xml)
    except ValueError:
        return None
    form = get_form(session, project_id, schema.form_id)
    fv = get_version(session, form, schema.version or "") if form else None
    return fv.md5 if fv else None
