"""The request class: every uploaded part's temporary file is closed when the request ends,
also when parsing stopped half-way (too many parts, body too large)."""

from __future__ import annotations

from flask import Request


class ServerRequest(Request):
    def _get_file_stream(self, total_content_length, content_type, filename=None,
                         content_length=None):
        stream = super()._get_file_stream(total_content_length, content_type, filename,
                                          content_length)
        self.__dict__.setdefault("_part_streams", []).append(stream)
        return stream

    def close_part_streams(self) -> None:
        for stream in self.__dict__.pop("_part_streams", []):
            stream.close()
