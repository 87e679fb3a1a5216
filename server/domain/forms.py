"""Publishing forms: XLSForm → XForm with pyxform, checked by ODK Validate, stored for ever.

The XForm bytes of a published version never change (Collect matches forms by their MD5).
A new version becomes current while older versions keep accepting submissions; the same
version with different content is refused.

Publishing is two steps: `make_version` stores an XForm and its media as a new version, and
`make_current` makes it the version Collect gets. A draft (Central's) is a version made but
not current, referenced by `forms.draft_version_id`: it is in no form list, manifest or
version URL and takes no submission until `publish_draft` makes it current.
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

from lxml import etree
from sqlalchemy import select
from sqlalchemy.orm import Session

from server.db.models import Form, FormMedia, FormVersion, utcnow
from server.domain.xform_schema import FormSchema, parse_form_schema
from server.errors import PublishError
from server.storage import BlobStore
from server.xml import children, find_child

FORM_STATES = ("open", "closing", "closed")
# Attachments the server builds for each requesting user (entity lists and registers).
GENERATED_MEDIA = {"households.csv", "members.csv", "volunteers.csv"}
ENTITY_LISTS = {"households.csv"}
# The version column of a draft: the draft's own version is in its XForm. XML 1.0 has no
# U+001F, so no XForm or submission names this, and one draft per form never meets a
# published version in the unique (form_id, version).
DRAFT_VERSION = "\x1fdraft"


class VersionConflict(PublishError):
    """The form's version is already published with other content."""

    def __init__(self, message: str, form_id: str, version: str):
        super().__init__(message)
        self.form_id, self.version = form_id, version


class FormExists(PublishError):
    """A new form whose id the project already has (a new version goes through a draft)."""


class WrongForm(PublishError):
    """A draft whose XForm is another form than the one it was uploaded for."""


@dataclass
class PublishResult:
    form_id: str
    version: str
    created: bool  # False: that exact version was already published
    warnings: list[str] = field(default_factory=list)


@dataclass
class MadeVersion:
    """A version stored with its media, current or not yet."""

    form: Form
    version: FormVersion
    warnings: list[str] = field(default_factory=list)


@dataclass
class Converted:
    """An uploaded file as the XForm to store; `checks` are ODK Validate's findings, apart
    from pyxform's `warnings` (which an API caller may refuse to ignore)."""

    xml: bytes
    warnings: list[str] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)
    xlsform: bytes | None = None
    xlsform_name: str | None = None


def md5_hex(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()  # noqa: S324 (OpenRosa's hash)


@lru_cache(maxsize=64)
def schema_of(xml: bytes) -> FormSchema:
    """Parsed once per process for each distinct XForm."""
    return parse_form_schema(xml)


def convert_xlsform(xlsx: bytes, name: str,
                    fallback_id: str | None = None) -> tuple[bytes, list[str]]:
    """XLSForm bytes → XForm bytes through pyxform's Python API. `fallback_id` is the form
    id when the settings sheet has none (pyxform's default is `data`)."""
    from pyxform.errors import PyXFormError
    from pyxform.xls2json_backends import Definition
    from pyxform.xls2xform import convert

    warnings: list[str] = []
    source = (BytesIO(xlsx) if fallback_id is None else
              Definition(data=BytesIO(xlsx), file_type=None, file_path_stem=fallback_id))
    try:
        result = convert(xlsform=source, warnings=warnings, pretty_print=True,
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
    schema = _read_schema(xml, name)
    form_id, version = schema.form_id, schema.version or ""
    form = get_form(session, project_id, form_id)
    existing = get_version(session, form, version) if form is not None else None
    if existing is not None:
        if existing.md5 == md5_hex(xml):
            return PublishResult(form_id, version, created=False)
        raise VersionConflict(
            f"{name}: version {version!r} of form {form_id!r} is already published with "
            "different content; change the version in the settings sheet", form_id, version
        )
    kept = stored_media(session, form.current_version_id) if (
        keep_media and form is not None) else {}
    made = make_version(session, store, project_id, xml, version=version, media=media,
                        kept=kept, xlsform=xlsform, xlsform_name=xlsform_name, name=name)
    make_current(session, made.form, made.version)
    return PublishResult(form_id, version, created=True, warnings=made.warnings)


def _read_schema(xml: bytes, name: str) -> FormSchema:
    try:
        schema = parse_form_schema(xml)
    except ValueError as exc:
        raise PublishError(f"{name}: {exc}") from exc
    if schema.form_id.endswith((".xml", ".xls", ".xlsx")):
        raise PublishError(f"{name}: the form id {schema.form_id!r} must not end in a file "
                           "extension")
    return schema


def make_version(session: Session, store: BlobStore, project_id: int, xml: bytes, *,
                 version: str, media: Mapping[str, bytes] | None = None,
                 kept: Mapping[str, tuple[str, str]] | None = None,
                 xlsform: bytes | None = None, xlsform_name: str | None = None,
                 name: str = "form") -> MadeVersion:
    """Store an XForm as a new version of its form (created on first use) with its media:
    the files given, else those `kept` (filename → blob and type) from another version, and
    a row for each file the server builds. Nothing changes what Collect gets until
    `make_current`. `version` is the XForm's own, or DRAFT_VERSION for a draft."""
    schema = _read_schema(xml, name)
    form = get_form(session, project_id, schema.form_id)
    if form is None:
        form = Form(project_id=project_id, xml_form_id=schema.form_id, state="open")
        session.add(form)
        session.flush()
    fv = FormVersion(form_id=form.id, version=version, title=schema.title or schema.form_id,
                     xml=xml, md5=md5_hex(xml), xlsform=xlsform, xlsform_name=xlsform_name)
    session.add(fv)
    session.flush()
    warnings = _attach_media(session, store, fv, schema, media or {}, name, kept or {})
    return MadeVersion(form, fv, warnings)


def make_current(session: Session, form: Form, fv: FormVersion) -> None:
    """The version Collect gets from now on; a draft made current is published now."""
    if form.draft_version_id == fv.id:
        form.draft_version_id = None
        fv.published_at = utcnow()
    form.current_version_id = fv.id
    session.flush()


def stored_media(session: Session, version_id: int | None) -> dict[str, tuple[str, str]]:
    """filename → (blob, content type) of a version's stored files, to carry over."""
    if version_id is None:
        return {}
    return {m.filename: (m.blob_sha256, m.content_type) for m in session.scalars(
        select(FormMedia).where(FormMedia.form_version_id == version_id,
                                FormMedia.blob_sha256.is_not(None)))}


def _attach_media(session, store, fv: FormVersion, schema: FormSchema,
                  media: Mapping[str, bytes], name: str,
                  kept: Mapping[str, tuple[str, str]]) -> list[str]:
    warnings = []
    expected = set(schema.media_references())
    for filename in sorted(expected):
        if filename in GENERATED_MEDIA:
            session.add(FormMedia(form_version_id=fv.id, filename=filename, blob_sha256=None,
                                  content_type="text/csv; charset=utf-8"))
        elif filename in media:
            blob = store.put(session, media[filename])
            session.add(FormMedia(form_version_id=fv.id, filename=filename,
                                  blob_sha256=blob.sha256, content_type=_content_type(filename)))
        elif filename in kept:  # the same stored bytes: nothing is copied
            sha256, content_type = kept[filename]
            session.add(FormMedia(form_version_id=fv.id, filename=filename,
                                  blob_sha256=sha256, content_type=content_type))
        else:
            warnings.append(f"{name}: media file {filename!r} is referenced but was not given")
    for extra in sorted(set(media) - expected):
        warnings.append(f"{name}: media file {extra!r} is not referenced by the form; ignored")
    session.flush()
    return warnings


# Forms and drafts through the API (Central's form management) --------------------------------


def add_form(session: Session, store: BlobStore, project_id: int, xml: bytes, *,
             publish: bool, xlsform: bytes | None = None, xlsform_name: str | None = None,
             name: str = "form") -> MadeVersion:
    """A form the project does not have yet: published at once, or only as a draft."""
    schema = _read_schema(xml, name)
    if get_form(session, project_id, schema.form_id) is not None:
        raise FormExists(f"form {schema.form_id!r} already exists in project {project_id}")
    made = make_version(session, store, project_id, xml,
                        version=(schema.version or "") if publish else DRAFT_VERSION,
                        xlsform=xlsform, xlsform_name=xlsform_name, name=name)
    if publish:
        make_current(session, made.form, made.version)
    else:
        made.form.draft_version_id = made.version.id
        session.flush()
    return made


def draft_of(session: Session, form: Form) -> FormVersion | None:
    return session.get(FormVersion, form.draft_version_id) if form.draft_version_id else None


def make_draft(session: Session, store: BlobStore, form: Form, xml: bytes | None = None, *,
               xlsform: bytes | None = None, xlsform_name: str | None = None,
               name: str = "draft") -> MadeVersion:
    """A new draft of `form`, replacing the one it had. Without an XForm it is a copy of
    the current version with its files; with one, the stored files of the same names carry
    over (the old draft's before the published ones), as in Central."""
    old = draft_of(session, form)
    if xml is None:
        source = session.get(FormVersion, form.current_version_id) if (
            form.current_version_id) else old
        if source is None:
            raise PublishError(f"form {form.xml_form_id!r} has no version to copy")
        xml, xlsform, xlsform_name = source.xml, source.xlsform, source.xlsform_name
        kept = stored_media(session, source.id)
    else:
        kept = {**stored_media(session, form.current_version_id),
                **stored_media(session, old.id if old else None)}
    schema = _read_schema(xml, name)
    if schema.form_id != form.xml_form_id:
        raise WrongForm(f"{name}: the XForm is form {schema.form_id!r}, not "
                        f"{form.xml_form_id!r}")
    if old is not None:
        _drop_draft(session, form, old)
    made = make_version(session, store, form.project_id, xml, version=DRAFT_VERSION,
                        kept=kept, xlsform=xlsform, xlsform_name=xlsform_name, name=name)
    form.draft_version_id = made.version.id
    session.flush()
    return made


def _drop_draft(session: Session, form: Form, draft: FormVersion) -> None:
    """A replaced draft goes with its file rows (no submission can point at a draft)."""
    form.draft_version_id = None
    session.flush()  # the form stops pointing at the row before the row goes
    for media in media_of(session, draft):
        session.delete(media)
    session.delete(draft)
    session.flush()


def set_draft_media(session: Session, store: BlobStore, form: Form, filename: str,
                    data: bytes) -> FormMedia | None:
    """Store one file of the draft; None when there is no draft or its XForm does not
    reference that file."""
    draft = draft_of(session, form)
    if draft is None or filename not in schema_of(draft.xml).media_references():
        return None
    if filename in GENERATED_MEDIA:
        raise PublishError(f"{filename} is built by the server for each device; "
                           "it cannot be uploaded")
    blob = store.put(session, data)
    row = next((m for m in media_of(session, draft) if m.filename == filename), None)
    if row is None:
        row = FormMedia(form_version_id=draft.id, filename=filename)
        session.add(row)
    row.blob_sha256, row.content_type = blob.sha256, _content_type(filename)
    session.flush()
    return row


def publish_draft(session: Session, form: Form, version: str | None = None) -> FormVersion:
    """The draft becomes the current version; `version` replaces the XForm's own. A version
    the form has already published is refused (VersionConflict)."""
    draft = draft_of(session, form)
    if draft is None:
        raise PublishError(f"form {form.xml_form_id!r} has no draft")
    xml = draft.xml if version is None else with_version(draft.xml, version)
    final = version if version is not None else (schema_of(xml).version or "")
    if get_version(session, form, final) is not None:
        raise VersionConflict(
            f"version {final!r} of form {form.xml_form_id!r} is already published; "
            "publish the draft under another version", form.xml_form_id, final)
    draft.xml, draft.md5, draft.version = xml, md5_hex(xml), final
    make_current(session, form, draft)
    return draft


def with_version(xml: bytes, version: str) -> bytes:
    """The XForm with the `version` attribute of its primary instance's root replaced."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    html = etree.fromstring(xml, parser)
    model = find_child(find_child(html, "head"), "model")
    root = next(children(find_child(model, "instance")))
    for key in [k for k in root.attrib if k.rsplit("}", 1)[-1] == "version"]:
        del root.attrib[key]
    root.set("version", version)
    return etree.tostring(html.getroottree(), xml_declaration=True, encoding="utf-8")


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
    """A version the form has published (never its draft)."""
    if version == DRAFT_VERSION:
        return None
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
    converted = convert_file(session, project_id, filename, data, ward=ward, validate=validate)
    result = publish_xform(session, store, project_id, converted.xml, media=media,
                           xlsform=converted.xlsform, xlsform_name=converted.xlsform_name,
                           name=filename, keep_media=keep_media)
    result.warnings[:0] = converted.warnings + converted.checks
    return result


def convert_file(session: Session, project_id: int, filename: str, data: bytes, *,
                 ward=None, validate: bool = True, fallback_id: str | None = None) -> Converted:
    """The XForm of an XLSForm (.xlsx, with the ward's lists put in) or XForm (.xml) file,
    checked by ODK Validate unless that very version is already published."""
    suffix = Path(filename).suffix.lower()
    if suffix == ".xlsx":
        source = data
        if ward is not None:
            from server.domain.ward import apply_ward_lists

            try:
                data = apply_ward_lists(data, ward)
            except ValueError as exc:
                raise PublishError(f"{filename}: {exc}") from exc
        xml, warnings = convert_xlsform(data, filename, fallback_id)
        converted = Converted(xml, list(warnings), xlsform=source, xlsform_name=filename)
    elif suffix == ".xml":
        converted = Converted(data)
    else:
        raise PublishError(f"{filename}: only .xlsx (XLSForm) and .xml (XForm) can be published")
    if validate and _published_md5(session, project_id, converted.xml) != md5_hex(converted.xml):
        converted.checks = odk_validate(converted.xml, filename)
    return converted


def _published_md5(session: Session, project_id: int, xml: bytes) -> str | None:
    """The md5 already published for this form id and version, to skip re-validating it."""
    try:
        schema = parse_form_schema(xml)
    except ValueError:
        return None
    form = get_form(session, project_id, schema.form_id)
    fv = get_version(session, form, schema.version or "") if form else None
    return fv.md5 if fv else None
