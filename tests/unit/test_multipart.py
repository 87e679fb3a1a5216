"""Multipart bodies parse to the same fields and files wherever the network cuts them.

Werkzeug 3.1.9's own parser kept a stray `\\r` at the end of the last file when a piece of
the body ended inside the closing delimiter; a photo then differed from the one sent."""

from __future__ import annotations

import io

import pytest
from werkzeug.exceptions import RequestEntityTooLarge

from server.http_request import ChunkSafeMultiPartParser
from tests.support.collect import Part, multipart_body
from tests.support.pieces import Pieces

BOUNDARY = "7a0c1f52-3c8e-4d3b-9e55-0d5e1b8a4c21"
PARTS = [
    Part("xml_submission_file", "<data id='f'><name>Hùng</name></data>".encode(), "x.xml",
         "text/xml"),
    ("note", "ghi chú\r\n".encode()),
    Part("empty.jpg", b"", "empty.jpg", "image/jpeg"),
    Part("cr.bin", b"\x00\x01ends with CR\r", "cr.bin", "application/octet-stream"),
    Part("tricky.bin", b"--" + BOUNDARY.encode()[:-1] + b"\r\n-\r\n--", "tricky.bin",
         "application/octet-stream"),
    Part("house.jpg", b"\xff\xd8\xff\xe0" + bytes(range(256)) * 3 + b"Jb", "house.jpg",
         "image/jpeg"),
]
EXPECTED_FILES = {"xml_submission_file": PARTS[0].body, "empty.jpg": b"",
                  "cr.bin": PARTS[3].body, "tricky.bin": PARTS[4].body,
                  "house.jpg": PARTS[5].body}


def in_memory(**_part) -> io.BytesIO:
    return io.BytesIO()


def parse(pieces: list[bytes], **limits):
    body_length = sum(map(len, pieces))
    parser = ChunkSafeMultiPartParser(stream_factory=in_memory, **limits)
    form, files = parser.parse(Pieces(pieces), BOUNDARY.encode(),
                                                           body_length)
    return dict(form.items(multi=True)), {name: f.read() for name, f in files.items(multi=True)}


@pytest.fixture(scope="module")
def body() -> bytes:
    return multipart_body(PARTS, boundary=BOUNDARY)[1]


def test_every_single_cut_gives_the_bytes_sent(body):
    for cut in range(1, len(body)):
        form, files = parse([body[:cut], body[cut:]])
        assert files == EXPECTED_FILES, f"cut at {cut} of {len(body)}"
        assert form == {"note": "ghi chú\r\n"}, f"cut at {cut} of {len(body)}"


def test_a_byte_at_a_time_and_two_cuts_near_the_end(body):
    assert parse([bytes([b]) for b in body])[1] == EXPECTED_FILES
    tail = len(body) - len(BOUNDARY) - 12
    for first in range(tail, len(body)):
        for second in range(first + 1, len(body)):
            pieces = [body[:first], body[first:second], body[second:]]
            assert parse(pieces)[1] == EXPECTED_FILES, (first, second)


def test_content_types_and_names_reach_the_file_storage(body):
    _, files = ChunkSafeMultiPartParser(stream_factory=in_memory).parse(
        io.BytesIO(body), BOUNDARY.encode(), len(body))
    assert files["house.jpg"].mimetype == "image/jpeg"
    assert files["house.jpg"].filename == "house.jpg"
    assert files["xml_submission_file"].mimetype == "text/xml"


def test_a_body_cut_short_is_refused():
    body = multipart_body(PARTS, boundary=BOUNDARY)[1]
    with pytest.raises(ValueError):
        parse([body[:-20]])


def test_limits_answer_413(body):
    with pytest.raises(RequestEntityTooLarge):
        parse([body], max_form_parts=3)
    with pytest.raises(RequestEntityTooLarge):
        parse([body], max_form_memory_size=5)  # the text field is longer
