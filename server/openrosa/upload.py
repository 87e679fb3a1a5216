"""The multipart POST of a submission → the XML bytes and the attached files."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Request

from server.domain.submissions import UploadedFile, attachment_name
from server.errors import MalformedMultipart, MissingXmlPart

XML_PART = "xml_submission_file"


@dataclass(frozen=True)
class Upload:
    xml: bytes
    files: list[UploadedFile]


def _utf8(name: str) -> str:
    """Collect sends non-ASCII file names as raw UTF-8, which the parser read as latin-1."""
    try:
        return name.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return name


def read_upload(request: Request) -> Upload:
    if request.mimetype != "multipart/form-data":
        raise MalformedMultipart("Content-Type must be multipart/form-data")
    if "boundary" not in request.mimetype_params:
        raise MalformedMultipart("the multipart Content-Type has no boundary")
    files = request.files  # may raise 413 (too large, too many parts)
    xml_part = files.get(XML_PART)
    if xml_part is not None:
        xml = xml_part.read()
    elif XML_PART in request.form:  # some clients send it as a plain field
        xml = request.form[XML_PART].encode("utf-8")
    else:
        raise MissingXmlPart()
    if not xml.strip():
        raise MissingXmlPart("the xml_submission_file part is empty")
    uploaded = []
    for field_name, storage in files.items(multi=True):
        if field_name == XML_PART:
            continue
        name = attachment_name(_utf8(storage.filename or field_name))
        if name:
            uploaded.append(UploadedFile(name=name, data=storage.read(),
                                         content_type=storage.mimetype[:100] or None))
    return Upload(xml=xml, files=uploaded)
