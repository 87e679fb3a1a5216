"""The request class: multipart bodies parsed by the `multipart` library, and every uploaded
part's temporary file closed when the request ends, also when parsing stopped half-way.

Why not Werkzeug's own multipart parser: when the network hands the body over in pieces and
one piece ends inside the closing delimiter (`\\r\\n--boundary-`), it keeps the delimiter's
`\\r` as the last byte of the last file (pallets/werkzeug#3285, open in 3.1.9). A photo then
differs from the one Collect sent, by chance of TCP segmentation. `multipart` is tested
against every chunk border; the parts still come out as Werkzeug's FileStorage and MultiDict,
with Werkzeug's limits (MAX_FORM_MEMORY_SIZE, MAX_FORM_PARTS) and 413 answers.
"""

from __future__ import annotations

import typing as t

from flask import Request
from multipart import ParserLimitReached, PushMultipartParser
from werkzeug.datastructures import FileStorage, Headers, MultiDict
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.formparser import FormDataParser, MultiPartParser

READ_SIZE = 64 * 1024
# Charsets a part may declare for a text field; anything else is read as UTF-8 (as Werkzeug).
FIELD_CHARSETS = {"ascii", "us-ascii", "utf-8", "iso-8859-1"}


class ChunkSafeMultiPartParser(MultiPartParser):
    """Werkzeug's MultiPartParser interface over `multipart.PushMultipartParser`."""

    def parse(self, stream: t.IO[bytes], boundary: bytes, content_length: int | None
              ) -> tuple[MultiDict, MultiDict]:
        fields: list[tuple[str, str]] = []
        files: list[tuple[str, FileStorage]] = []
        parts = float("inf") if self.max_form_parts is None else self.max_form_parts
        segment, text, file = None, bytearray(), None
        try:
            with PushMultipartParser(boundary, content_length=content_length or -1,
                                     max_header_count=16, max_segment_count=parts) as parser:
                while not parser.closed:
                    chunk = stream.read(READ_SIZE)
                    for event in parser.parse(chunk):
                        if event is None:  # the end of a part
                            if file is None:
                                fields.append((segment.name, _decode(segment, text)))
                            else:
                                file.seek(0)
                                files.append((segment.name, FileStorage(
                                    file, segment.filename, segment.name,
                                    headers=Headers(segment.headerlist))))
                        elif isinstance(event, bytes):
                            if file is not None:
                                file.write(event)
                                continue
                            text += event
                            if (self.max_form_memory_size is not None
                                    and len(text) > self.max_form_memory_size):
                                raise RequestEntityTooLarge()
                        else:  # a new part's headers
                            segment, text, file = event, bytearray(), None
                            if segment.filename is not None:
                                file = self.stream_factory(
                                    total_content_length=content_length,
                                    filename=segment.filename,
                                    content_type=segment.header("Content-Type"),
                                    content_length=0)
                    if not chunk:
                        break  # the body ended: leaving `with` checks that it was complete
        except ParserLimitReached as exc:
            raise RequestEntityTooLarge() from exc
        return self.cls(fields), self.cls(files)


def _decode(segment, data: bytearray) -> str:
    charset = (segment.charset or "").lower()
    return bytes(data).decode(charset if charset in FIELD_CHARSETS else "utf-8", "replace")


class ChunkSafeFormDataParser(FormDataParser):
    def _parse_multipart(self, stream, mimetype, content_length, options):
        boundary = options.get("boundary", "").encode("ascii")
        if not boundary:
            raise ValueError("Missing boundary")
        parser = ChunkSafeMultiPartParser(stream_factory=self.stream_factory,
                                          max_form_memory_size=self.max_form_memory_size,
                                          max_form_parts=self.max_form_parts, cls=self.cls)
        form, files = parser.parse(stream, boundary, content_length)
        return stream, form, files


class ServerRequest(Request):
    form_data_parser_class = ChunkSafeFormDataParser

    def _get_file_stream(self, total_content_length, content_type, filename=None,
                         content_length=None):
        stream = super()._get_file_stream(total_content_length, content_type, filename,
                                          content_length)
        self.__dict__.setdefault("_part_streams", []).append(stream)
        return stream

    def close_part_streams(self) -> None:
        for stream in self.__dict__.pop("_part_streams", []):
            stream.close()
