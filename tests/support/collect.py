"""A test client that talks to an OpenRosa server the way ODK Collect does.

It is used by the test suite against a Flask app's test client (``FlaskTransport``) and
against a real server over HTTP (``HttpTransport``).  It reproduces, on purpose, the parts
of Collect's behaviour that a server has to cope with:

* every request carries ``X-OpenRosa-Version: 1.0``, Collect's ``User-Agent`` and Collect's
  ``Date`` header (Java pattern ``E, dd MMM yyyy hh:mm:ss zz``: a 12-hour clock without
  AM/PM, so afternoon times are "wrong");
* ``deviceID`` is appended to the query of every URL (``&`` when a query already exists);
* authentication is reactive, like the okhttp-digest library Collect uses: no
  ``Authorization`` at first; a 401 challenge is answered once (Digest always, Basic only
  for ``https`` URLs); a second 401 is returned as it is; after credentials were sent for a
  ``scheme:host:port`` they are sent up front (Digest with the nonce count incremented); a
  ``stale=true`` challenge is answered again without "prompting"; a pre-authenticated
  request that still gets a 401 drops the cache entry and is re-sent without credentials;
* credentials go only to the host of ``server_url``;
* redirects are followed like OkHttp does (``Authorization`` dropped across hosts, POST
  turned into GET on 301/302/303, at most 20 follow-ups);
* ``Accept-Encoding: gzip`` is sent and gzip responses are decoded transparently;
* formList, manifest and integrity documents are parsed as strictly as Collect parses them;
* submissions do the HEAD pre-flight, then POST ``multipart/form-data`` bodies built byte
  for byte like OkHttp's ``MultipartBody.FORM`` and split like Collect splits them.

Transports only move bytes: they never follow redirects, add cookies or decode bodies.
"""

from __future__ import annotations

import base64
import dataclasses
import gzip
import hashlib
import json
import mimetypes
import re
import secrets
import uuid
import xml.etree.ElementTree as ET
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import quote, unquote_plus, urljoin, urlsplit, urlunsplit

__all__ = [
    "ACCEPT_CONTENT_LENGTH_DEFAULT",
    "append_query_parameter",
    "Collect",
    "CollectError",
    "DEFAULT_DEVICE_ID",
    "DEFAULT_USER_AGENT",
    "FlaskTransport",
    "Headers",
    "HttpTransport",
    "Part",
    "Request",
    "Response",
    "Transport",
    "collect_content_type",
    "collect_date_header",
    "decode_qr",
    "encode_qr",
    "multipart_body",
    "openrosa_message",
    "parse_challenges",
    "parse_form_list",
    "parse_integrity",
    "parse_manifest",
    "split_attachments",
    "upload_failure_message",
]

XFORMS_LIST_NS = "http://openrosa.org/xforms/xformsList"
XFORMS_MANIFEST_NS = "http://openrosa.org/xforms/xformsManifest"

DEFAULT_DEVICE_ID = "collect:ABCDEFGHIJKLMNOP"
DEFAULT_USER_AGENT = (
    "org.odk.collect.android/v2026.3.3 "
    "Dalvik/2.1.0 (Linux; U; Android 14; Pixel 7 Build/UQ1A.240205.004)"
)
DEFAULT_XML_FILENAME = "Household survey_2026-06-15_10-22-01.xml"
ACCEPT_CONTENT_LENGTH_DEFAULT = 10_000_000
MAX_FILES_PER_POST = 100  # Collect splits once a POST holds *more* than this many files
MAX_FOLLOW_UPS = 20  # OkHttp's RetryAndFollowUpInterceptor limit

# Collect's user-facing strings (FormSourceExceptionMapper + strings.xml).
REPORT_TO_PROJECT_LEAD = (
    "If you keep having this problem, report it to the person who asked you to collect data."
)
MSG_NOT_OPENROSA = "This server does not correctly implement the OpenRosa formList API."
MSG_NO_HASH = "The server did not provide a hash for this form."
UPLOAD_FAIL = "Error: "

_ANDROID_URI_SAFE = "-_.!~*'()"  # android.net.Uri.encode leaves these (and alnum) alone
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_REDIRECT_CODES = frozenset({300, 301, 302, 303, 307, 308})
# Python's built-in table only (no /etc/mime.types), so results do not depend on the machine
_MIME_TYPES = mimetypes.MimeTypes()


# --------------------------------------------------------------------------------------
# Errors, headers, requests and responses
# --------------------------------------------------------------------------------------


class CollectError(Exception):
    """A failure as Collect would report it.

    ``kind`` is a stable machine-readable code, ``message`` the text Collect shows (where
    Collect has one), ``detail`` extra diagnostics, ``response`` the response involved.

    kinds: ``auth_required``, ``unreachable``, ``server_error``, ``parse_error``,
    ``not_openrosa``, ``fetch_error``, ``no_hash``, ``hash_mismatch``, ``upload_error``,
    ``auth_error``, ``too_many_follow_ups``.
    """

    def __init__(
        self,
        kind: str,
        message: str,
        response: Response | None = None,
        detail: str | None = None,
    ) -> None:
        super().__init__(message if detail is None else f"{message} [{detail}]")
        self.kind = kind
        self.message = message
        self.response = response
        self.detail = detail


class Headers:
    """An ordered, case-insensitive, multi-valued header list."""

    def __init__(self, items: Mapping[str, str] | Iterable[tuple[str, str]] | None = None) -> None:
        self._items: list[tuple[str, str]] = []
        if items is None:
            return
        pairs = items.items() if isinstance(items, Mapping) else items
        for name, value in pairs:
            self._items.append((str(name), str(value)))

    def get(self, name: str, default: str | None = None) -> str | None:
        lname = name.lower()
        for key, value in self._items:
            if key.lower() == lname:
                return value
        return default

    def get_all(self, name: str) -> list[str]:
        lname = name.lower()
        return [value for key, value in self._items if key.lower() == lname]

    def add(self, name: str, value: str) -> None:
        self._items.append((name, value))

    def set(self, name: str, value: str) -> None:
        self.remove(name)
        self._items.append((name, value))

    def setdefault(self, name: str, value: str) -> None:
        if name not in self:
            self._items.append((name, value))

    def remove(self, name: str) -> None:
        lname = name.lower()
        self._items = [(k, v) for k, v in self._items if k.lower() != lname]

    def items(self) -> list[tuple[str, str]]:
        return list(self._items)

    def keys(self) -> list[str]:
        seen: dict[str, str] = {}
        for key, _ in self._items:
            seen.setdefault(key.lower(), key)
        return list(seen.values())

    def to_dict(self) -> dict[str, str]:
        """One value per name (values of repeated names joined with ', ')."""
        out: dict[str, str] = {}
        for key in self.keys():
            out[key] = ", ".join(self.get_all(key))
        return out

    def copy(self) -> Headers:
        return Headers(self._items)

    def __getitem__(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __iter__(self):
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"


@dataclass
class Request:
    method: str
    url: str
    headers: Headers
    body: bytes | None = None


@dataclass
class Response:
    """A response as Collect sees it (after transparent gzip decoding)."""

    status: int
    headers: Headers
    body: bytes = b""
    reason: str = ""
    url: str = ""
    request: Request | None = None
    # responses that led here in the same call (auth challenges, redirects), oldest first
    history: list[Response] = field(default_factory=list)
    # filled by Collect.submit(): {"files": [...], "incomplete": bool}
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def status_code(self) -> int:
        return self.status

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    @property
    def content_type(self) -> str | None:
        return self.headers.get("Content-Type")

    @property
    def message(self) -> str | None:
        """The first ``<message>`` of an OpenRosaResponse body, as Collect reads it."""
        return openrosa_message(self.body)


class Transport(Protocol):
    def send(
        self, method: str, url: str, headers: dict[str, str], body: bytes | None
    ) -> Response: ...


# --------------------------------------------------------------------------------------
# Transports
# --------------------------------------------------------------------------------------


class FlaskTransport:
    """Sends requests through a Flask/Werkzeug test client.

    Absolute URLs are routed by their own ``scheme://host:port`` (so ``https`` works for
    Basic-over-TLS tests); relative URLs are resolved against ``base_url``.  The test
    client's cookie jar is bypassed, because Collect's OkHttp client keeps no cookies.
    """

    def __init__(self, client: Any, base_url: str = "http://localhost", cookies: bool = False,
                 environ: dict | None = None):
        if hasattr(client, "test_client") and not hasattr(client, "open"):
            client = client.test_client()
        self.client = client
        self.base_url = base_url.rstrip("/")
        self.cookies = cookies
        self.environ = environ or {}  # e.g. REMOTE_ADDR: the phone's address

    def send(self, method: str, url: str, headers: dict[str, str], body: bytes | None) -> Response:
        if not urlsplit(url).scheme:
            url = self.base_url + ("" if url.startswith("/") else "/") + url
        parts = urlsplit(url)
        base = f"{parts.scheme}://{parts.netloc}"
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        saved = getattr(self.client, "_cookies", None)
        if not self.cookies and saved is not None:
            self.client._cookies = None
        try:
            resp = self.client.open(
                path,
                method=method,
                headers=list(headers.items()),
                data=body,
                base_url=base,
                follow_redirects=False,
                **({"environ_base": self.environ} if self.environ else {}),
            )
        finally:
            if not self.cookies and saved is not None:
                self.client._cookies = saved
        try:
            data = resp.get_data()
            status_text = resp.status or ""
            reason = status_text.split(" ", 1)[1] if " " in status_text else ""
            return Response(
                status=resp.status_code,
                headers=Headers(list(resp.headers.items())),
                body=data,
                reason=reason,
            )
        finally:
            resp.close()


class HttpTransport:
    """Sends requests over real HTTP with ``requests``.

    Redirects are *not* followed here: ``Collect`` follows them itself, the way OkHttp
    does, for both transports.  Bodies are returned undecoded (Collect decodes gzip).
    """

    def __init__(self, session: Any = None, timeout: tuple[float, float] = (30.0, 60.0)):
        import requests  # imported lazily: only real-HTTP tests need it

        self._owns_session = session is None
        self.session = session if session is not None else requests.Session()
        if self._owns_session:
            self.session.headers.clear()  # no python-requests defaults
            self.session.trust_env = False  # no proxies or ~/.netrc credentials
        self.timeout = timeout

    def send(self, method: str, url: str, headers: dict[str, str], body: bytes | None) -> Response:
        resp = self.session.request(
            method,
            url,
            headers=dict(headers),
            data=body,
            allow_redirects=False,
            stream=True,
            timeout=self.timeout,
        )
        try:
            data = b"" if method.upper() == "HEAD" else resp.raw.read(decode_content=False)
            raw_headers = resp.raw.headers
            pairs = list(raw_headers.items()) if raw_headers is not None else []
            return Response(
                status=resp.status_code,
                headers=Headers(pairs),
                body=data,
                reason=resp.reason or "",
            )
        finally:
            resp.close()

    def close(self) -> None:
        if self._owns_session:
            self.session.close()

    def __enter__(self) -> HttpTransport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --------------------------------------------------------------------------------------
# Small helpers: Date header, URLs, content types, QR codes, OpenRosa messages
# --------------------------------------------------------------------------------------


def collect_date_header(when: datetime | None = None) -> str:
    """Collect's ``Date``: ``E, dd MMM yyyy hh:mm:ss zz`` in Locale.US and GMT.

    ``hh`` is the 12-hour clock with no AM/PM marker: 15:22:01 becomes ``03:22:01``.
    """
    if when is None:
        when = datetime.now(UTC)
    elif when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    when = when.astimezone(UTC)
    hour = when.hour % 12 or 12
    return (
        f"{_DAYS[when.weekday()]}, {when.day:02d} {_MONTHS[when.month - 1]} {when.year:04d} "
        f"{hour:02d}:{when.minute:02d}:{when.second:02d} GMT"
    )


def _android_encode(value: str) -> str:
    return quote(value, safe=_ANDROID_URI_SAFE)


def append_query_parameter(url: str, name: str, value: str) -> str:
    """Like ``Uri.buildUpon().appendQueryParameter()``: encoded, ``&`` if a query exists."""
    base, sep, fragment = url.partition("#")
    pair = f"{_android_encode(name)}={_android_encode(value)}"
    if "?" in base:
        joiner = "" if base.endswith("?") else "&"
        base = base + joiner + pair
    else:
        base = base + "?" + pair
    return base + (sep + fragment if sep else "")


def collect_content_type(filename: str) -> str:
    """Collect's attachment content type (CollectThenSystemContentTypeMapper)."""
    dot = filename.rfind(".")
    ext = "" if dot == -1 else filename[dot + 1 :].lower()
    collect_types = {
        "amr": "audio/amr",
        "oga": "audio/ogg",
        "ogv": "video/ogg",
        "webm": "video/webm",
    }
    if ext in collect_types:
        return collect_types[ext]
    if ext:
        guessed, _ = _MIME_TYPES.guess_type("x." + ext, strict=False)
        if guessed:
            return guessed
    return "application/octet-stream"


def decode_qr(text: str) -> dict[str, Any]:
    """Decode a Collect settings QR payload: Base64 (standard, padded) of zlib(JSON)."""
    raw = base64.b64decode(text.strip(), validate=True)
    settings = json.loads(zlib.decompress(raw).decode("utf-8"))
    if not isinstance(settings, dict):
        raise ValueError("QR settings payload is not a JSON object")
    return settings


def encode_qr(settings: Mapping[str, Any]) -> str:
    """The inverse of :func:`decode_qr` (what Collect/Central generate)."""
    payload = json.dumps(settings, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return base64.b64encode(zlib.compress(payload)).decode("ascii")


def openrosa_message(body: bytes | str | None) -> str | None:
    """First ``<message>`` text of an OpenRosaResponse (Collect's ResponseMessageParser)."""
    if body is None:
        return None
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    if "OpenRosaResponse" not in text:
        return None
    try:
        root = ET.fromstring(body if isinstance(body, bytes) else body.encode("utf-8"))
    except ET.ParseError:
        return None
    for element in root.iter():
        if _local(element.tag) == "message":
            return "".join(element.itertext())
    return None


def upload_failure_message(response: Response, url_string: str) -> str | None:
    """What Collect reports for a submission POST result; ``None`` on success (201/202)."""
    code = response.status
    if code in (201, 202):
        return None
    if code == 204:
        return "java.lang.Exception"  # executePostRequest throws a bare Exception
    if code == 200:
        return f"{UPLOAD_FAIL} Error: Network login failure? Again?"
    if code == 401:
        return f"{UPLOAD_FAIL}{response.reason} ({code}) at {url_string}"
    message = response.message
    if message is not None:
        return f"{UPLOAD_FAIL}{message}"
    if code == 400:
        return (
            "Failed to upload. Please make sure the form is configured to accept "
            "submissions on the server"
        )
    return f"{UPLOAD_FAIL}{response.reason} ({code}) at {url_string}"


def _local(tag: Any) -> str:
    if not isinstance(tag, str):
        return ""
    return tag.rsplit("}", 1)[1] if tag.startswith("{") else tag


def _ns(tag: Any) -> str:
    if not isinstance(tag, str) or not tag.startswith("{"):
        return ""
    return tag[1:].split("}", 1)[0]


def _xml_text(element: ET.Element) -> str:
    # javarosa XFormParser.getXMLText(node, trim=true): the node's text, trimmed
    return "".join(element.itertext()).strip()


def _md5_hex(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()  # noqa: S324 - protocol checksum, not security


# --------------------------------------------------------------------------------------
# Document parsers (Kxml2OpenRosaResponseParser)
# --------------------------------------------------------------------------------------


def parse_form_list(document: bytes | ET.Element) -> list[dict[str, Any]] | None:
    """Parse an OpenRosa formList exactly like Collect; ``None`` means "invalid response".

    Each entry has ``formID``, ``name``, ``version`` (blank -> None), ``hash`` (the hex after
    ``md5:``; None when the listed hash lacks the prefix), ``rawHash`` (the listed text),
    ``downloadUrl`` and ``manifestUrl``.  One ``<xform>`` without formID, name or
    downloadUrl rejects the whole list.
    """
    root = ET.fromstring(document) if isinstance(document, bytes) else document
    if _local(root.tag) != "xforms" or _ns(root.tag).lower() != XFORMS_LIST_NS.lower():
        return None
    forms: list[dict[str, Any]] = []
    for xform in root:
        if _ns(xform.tag).lower() != XFORMS_LIST_NS.lower():
            continue  # someone else's extension
        if _local(xform.tag).lower() != "xform":
            continue  # e.g. xforms-group
        entry: dict[str, Any] = {
            "formID": None,
            "name": None,
            "version": None,
            "hash": None,
            "rawHash": None,
            "downloadUrl": None,
            "manifestUrl": None,
        }
        for child in xform:
            if _ns(child.tag).lower() != XFORMS_LIST_NS.lower():
                continue
            local = _local(child.tag)
            value = _xml_text(child)
            if local in ("formID", "name", "downloadUrl", "manifestUrl"):
                entry[local] = value or None
            elif local == "version":
                entry["version"] = value if value.strip() else None
            elif local == "hash":
                entry["rawHash"] = value
                entry["hash"] = value[4:] if value.startswith("md5:") else None
        if entry["formID"] is None or entry["downloadUrl"] is None or entry["name"] is None:
            return None
        forms.append(entry)
    return forms


def parse_manifest(document: bytes | ET.Element) -> list[dict[str, Any]] | None:
    """Parse an OpenRosa manifest like Collect; ``None`` means "invalid response".

    Entries: ``filename`` (reduced to its base name), ``hash`` (first 4 characters cut, as
    Collect does without checking them), ``rawHash``, ``downloadUrl``, ``type`` (the
    attribute, or None) and ``integrityUrl`` (or None).
    """
    root = ET.fromstring(document) if isinstance(document, bytes) else document
    if _local(root.tag) != "manifest" or _ns(root.tag).lower() != XFORMS_MANIFEST_NS.lower():
        return None
    files: list[dict[str, Any]] = []
    for media in root:
        if _ns(media.tag).lower() != XFORMS_MANIFEST_NS.lower():
            continue
        if _local(media.tag).lower() != "mediafile":
            continue
        entry: dict[str, Any] = {
            "filename": None,
            "hash": None,
            "rawHash": None,
            "downloadUrl": None,
            "type": media.get("type"),
            "integrityUrl": None,
        }
        for child in media:
            if _ns(child.tag).lower() != XFORMS_MANIFEST_NS.lower():
                continue
            local = _local(child.tag)
            value = _xml_text(child)
            if local == "filename":
                entry["filename"] = value.rsplit("/", 1)[-1] if value else None
            elif local == "hash":
                entry["rawHash"] = value
                if value:
                    if len(value) < 4:
                        return None  # Collect's substring(4) would throw
                    entry["hash"] = value[4:]
            elif local == "downloadUrl":
                entry["downloadUrl"] = value or None
            elif local == "integrityUrl":
                entry["integrityUrl"] = value
        if entry["filename"] is None or entry["downloadUrl"] is None or entry["hash"] is None:
            return None
        files.append(entry)
    return files


def parse_integrity(document: bytes | ET.Element) -> dict[str, bool]:
    """Parse ``<data><entities><entity id=".."><deleted>true|false</deleted>``.

    No namespace is required.  ``<deleted>`` must be exactly ``true`` or ``false`` (no
    whitespace); anything else raises ``ValueError``.
    """
    root = ET.fromstring(document) if isinstance(document, bytes) else document
    children = list(root)
    if not children:
        raise ValueError("integrity response has no <entities> element")
    entities = children[0]
    result: dict[str, bool] = {}
    for entity in entities:
        entity_id = entity.get("id")
        if entity_id is None:
            raise ValueError("<entity> without id attribute")
        parts = list(entity)
        if not parts or _local(parts[0].tag) != "deleted":
            raise ValueError(f"<entity id={entity_id!r}> has no <deleted> child")
        text = "".join(parts[0].itertext())
        if text not in ("true", "false"):
            raise ValueError(f"<deleted> of {entity_id!r} is {text!r}, not 'true'/'false'")
        result[entity_id] = text == "true"
    return result


# --------------------------------------------------------------------------------------
# Multipart bodies (okhttp3.MultipartBody, type FORM)
# --------------------------------------------------------------------------------------


@dataclass
class Part:
    """One multipart part.

    ``name``/``filename`` are quoted like OkHttp (``"`` -> ``%22``, CR/LF -> ``%0D``/``%0A``)
    and written as raw UTF-8 (bytes are written untouched).  ``disposition`` replaces the
    whole Content-Disposition value; ``headers`` are extra raw header lines written after
    Content-Disposition and before Content-Type.  ``content_type=None`` writes no
    Content-Type line (as for plain form fields).
    """

    name: str | bytes
    body: bytes = b""
    filename: str | bytes | None = None
    content_type: str | None = None
    headers: Sequence[tuple[str | bytes, str | bytes]] = ()
    disposition: str | bytes | None = None


def _quoted(value: str | bytes) -> bytes:
    if isinstance(value, bytes):
        return b'"' + value + b'"'
    escaped = value.replace("\n", "%0A").replace("\r", "%0D").replace('"', "%22")
    return b'"' + escaped.encode("utf-8") + b'"'


def _as_bytes(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode("utf-8")


def _coerce_part(part: Part | tuple) -> Part:
    if isinstance(part, Part):
        return part
    if len(part) == 2:
        name, value = part
        return Part(name=name, body=_as_bytes(value))
    if len(part) == 3:
        name, filename, body = part
        return Part(name=name, filename=filename, body=body)
    name, filename, body, content_type = part
    return Part(name=name, filename=filename, body=body, content_type=content_type)


def multipart_body(
    parts: Iterable[Part | tuple], boundary: str | bytes | None = None
) -> tuple[str, bytes]:
    """Build a ``multipart/form-data`` body by hand, exactly as OkHttp writes it.

    ``parts`` holds :class:`Part` objects or tuples ``(name, value)`` (a field),
    ``(name, filename, body)`` or ``(name, filename, body, content_type)``.  Returns
    ``(content_type_header_value, body_bytes)``.  The default boundary is a random UUID, as
    in OkHttp.  No parts gives just the closing delimiter (OkHttp itself refuses that).
    """
    if boundary is None:
        boundary = str(uuid.uuid4())
    bnd = _as_bytes(boundary)
    out = bytearray()
    for raw in parts:
        part = _coerce_part(raw)
        out += b"--" + bnd + b"\r\n"
        if part.disposition is not None:
            disposition = _as_bytes(part.disposition)
        else:
            disposition = b"form-data; name=" + _quoted(part.name)
            if part.filename is not None:
                disposition += b"; filename=" + _quoted(part.filename)
        out += b"Content-Disposition: " + disposition + b"\r\n"
        for hname, hvalue in part.headers:
            out += _as_bytes(hname) + b": " + _as_bytes(hvalue) + b"\r\n"
        if part.content_type is not None:
            out += b"Content-Type: " + part.content_type.encode("utf-8") + b"\r\n"
        out += b"\r\n"
        out += part.body
        out += b"\r\n"
    out += b"--" + bnd + b"--\r\n"
    return f"multipart/form-data; boundary={bnd.decode('utf-8', 'replace')}", bytes(out)


def split_attachments(
    xml_size: int, sizes: Sequence[int], accept_content_length: int
) -> list[tuple[int, int, bool]]:
    """Collect's SubmissionChunker: ``[(start, end, incomplete), ...]`` over ``sizes``.

    The XML counts against every POST; a POST is closed when it already holds more than
    100 files or when the next file would push XML + files past the limit.  A POST always
    holds at least one file (so a single oversized file goes alone with the XML).
    """
    chunks: list[tuple[int, int, bool]] = []
    first = True
    index = 0
    while index < len(sizes) or first:
        start = index
        first = False
        byte_count = xml_size
        incomplete = False
        while index < len(sizes):
            byte_count += sizes[index]
            if index + 1 < len(sizes) and (
                index - start + 1 > MAX_FILES_PER_POST
                or byte_count + sizes[index + 1] > accept_content_length
            ):
                incomplete = True
                index += 1
                break
            index += 1
        chunks.append((start, index, incomplete))
    return chunks


# --------------------------------------------------------------------------------------
# Authentication (okhttp-digest 3.1.1: Dispatching/Digest/Basic + caching interceptor)
# --------------------------------------------------------------------------------------

_TOKEN_RE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def parse_challenges(values: str | Iterable[str]) -> list[tuple[str, dict[str, str]]]:
    """Parse ``WWW-Authenticate`` values (RFC 7235) into ``[(scheme, params), ...]``.

    Several headers and several challenges in one header are both supported; parameter
    names are lower-cased.  A token68 value is returned under the key ``""``.
    """
    if isinstance(values, str):
        values = [values]
    challenges: list[tuple[str, dict[str, str]]] = []
    for header in values:
        pos, n = 0, len(header)
        current: dict[str, str] | None = None
        while pos < n:
            comma = False
            while pos < n and header[pos] in " \t,":
                comma = comma or header[pos] == ","
                pos += 1
            if pos >= n:
                break
            match = _TOKEN_RE.match(header, pos)
            if not match:
                pos += 1  # skip garbage
                continue
            token, pos = match.group(0), match.end()
            look = pos
            while look < n and header[look] in " \t":
                look += 1
            if look >= n or header[look] != "=":
                if current is not None and not current and not comma:
                    current[""] = token  # "Scheme token68"
                    continue
                current = {}  # a token not followed by '=' starts a new challenge
                challenges.append((token, current))
                continue
            if current is not None and not current and _is_token68_end(header, look):
                end = look
                while end < n and header[end] == "=":
                    end += 1
                current[""] = token + header[look:end]
                pos = end
                continue
            pos = look + 1
            while pos < n and header[pos] in " \t":
                pos += 1
            if pos < n and header[pos] == '"':
                pos += 1
                buf = []
                while pos < n and header[pos] != '"':
                    if header[pos] == "\\" and pos + 1 < n:
                        pos += 1
                    buf.append(header[pos])
                    pos += 1
                pos += 1  # the closing quote
                value = "".join(buf)
            else:
                vmatch = _TOKEN_RE.match(header, pos)
                value = vmatch.group(0) if vmatch else ""
                pos = vmatch.end() if vmatch else pos
            if current is not None:
                current[token.lower()] = value
    return challenges


def _is_token68_end(header: str, eq_pos: int) -> bool:
    """True when the '=' run at eq_pos ends the item (token68), not a name=value pair."""
    end = eq_pos
    while end < len(header) and header[end] == "=":
        end += 1
    rest = end
    while rest < len(header) and header[rest] in " \t":
        rest += 1
    return rest >= len(header) or header[rest] == ","


def _header_param(name: str, value: str, quote_value: bool) -> str:
    if not quote_value:
        return f"{name}={value}"
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'{name}="{escaped}"'


_DIGEST_HASHES: dict[str, Callable[[bytes], Any]] = {
    "md5": hashlib.md5,
    "md5-sess": hashlib.md5,
    "sha-256": hashlib.sha256,
}


class _DigestAuthenticator:
    """okhttp-digest's DigestAuthenticator (MD5, qop=auth, cnonce, nc, opaque)."""

    def __init__(self, username: str, password: str) -> None:
        self.username = username
        self.password = password
        self.parameters: dict[str, str] | None = None
        self.last_nonce: str | None = None
        self.nonce_count = 0
        self.cnonce: str | None = None

    def authenticate(self, challenge: dict[str, str], request: Request) -> Request | None:
        params = dict(challenge)
        self.parameters = dict(params)  # saved for later pre-emptive use
        if params.get("nonce") is None:
            raise CollectError("auth_error", f"missing nonce in challenge header: {challenge}")
        return self._with_state(request, params)

    def authenticate_with_state(self, request: Request) -> Request | None:
        if self.parameters is None:
            return None
        return self._with_state(request, dict(self.parameters))

    def _with_state(self, request: Request, params: dict[str, str]) -> Request | None:
        realm = params.get("realm")
        if realm is None:
            return None
        nonce = params.get("nonce")
        if nonce is None:
            raise CollectError("auth_error", "missing nonce in challenge")
        stale = params.get("stale", "").lower() == "true"
        previous = request.headers.get("Authorization")
        if previous is not None and previous.startswith("Digest") and not stale:
            return None  # the same credentials already failed: no loop
        parts = urlsplit(request.url)
        uri = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        header = self._header(request, realm, nonce, uri, params)
        new = Request(request.method, request.url, request.headers.copy(), request.body)
        new.headers.set("Authorization", header)
        return new

    def _header(
        self, request: Request, realm: str, nonce: str, uri: str, params: dict[str, str]
    ) -> str:
        algorithm = params.get("algorithm") or "MD5"
        hasher = _DIGEST_HASHES.get(algorithm.lower())
        if hasher is None:
            raise CollectError("auth_error", f"Unsupported digest algorithm: {algorithm}")
        qop_list = params.get("qop")
        qop: str | None
        if qop_list is None:
            qop = None
        else:
            variants = {v.strip().lower() for v in qop_list.split(",") if v.strip()}
            if request.body is not None and "auth-int" in variants:
                if "auth" not in variants:
                    raise CollectError(
                        "auth_error", "Qop auth-int cannot be used with a non-repeatable entity"
                    )
                qop = "auth"
            elif "auth" in variants:
                qop = "auth"
            elif "auth-int" in variants:
                qop = "auth-int"
            else:
                raise CollectError(
                    "auth_error", f"None of the qop methods is supported: {qop_list}"
                )
        charset = params.get("charset") or "ascii"  # okhttp-digest's credentials charset

        def enc(text: str) -> bytes:
            try:
                return text.encode(charset, errors="replace")
            except LookupError:
                return text.encode("utf-8")

        def h(data: bytes) -> str:
            return hasher(data).hexdigest()

        if nonce == self.last_nonce:
            self.nonce_count += 1
        else:
            self.nonce_count = 1
            self.cnonce = None
            self.last_nonce = nonce
        nc = f"{self.nonce_count:08x}"
        if self.cnonce is None:
            self.cnonce = secrets.token_hex(8)
        cnonce = self.cnonce

        if algorithm.lower() == "md5-sess":
            a1 = f"{h(enc(f'{self.username}:{realm}:{self.password}'))}:{nonce}:{cnonce}"
        else:
            a1 = f"{self.username}:{realm}:{self.password}"
        ha1 = h(enc(a1))
        if qop == "auth-int":
            a2 = f"{request.method}:{uri}:{h(b'')}"
        else:
            a2 = f"{request.method}:{uri}"
        ha2 = h(enc(a2))
        if qop is None:
            response = h(f"{ha1}:{nonce}:{ha2}".encode("ascii", "replace"))
        else:
            response = h(f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}".encode("ascii", "replace"))

        fields = [
            _header_param("username", self.username, True),
            _header_param("realm", realm, True),
            _header_param("nonce", nonce, True),
            _header_param("uri", uri, True),
            _header_param("response", response, True),
        ]
        if qop is not None:
            fields += [
                _header_param("qop", qop, False),
                _header_param("nc", nc, False),
                _header_param("cnonce", cnonce, True),
            ]
        fields.append(_header_param("algorithm", algorithm, False))
        if params.get("opaque") is not None:
            fields.append(_header_param("opaque", params["opaque"], True))
        return "Digest " + ", ".join(fields)


class _BasicAuthenticator:
    """okhttp-digest's BasicAuthenticator: ISO-8859-1 credentials, never twice in a row."""

    def __init__(self, username: str, password: str) -> None:
        self.username = username
        self.password = password

    def authenticate(self, request: Request) -> Request | None:
        previous = request.headers.get("Authorization")
        if previous is not None and previous.startswith("Basic"):
            return None  # previous basic authentication failed
        raw = f"{self.username}:{self.password}".encode("latin-1", errors="replace")
        new = Request(request.method, request.url, request.headers.copy(), request.body)
        new.headers.set("Authorization", "Basic " + base64.b64encode(raw).decode("ascii"))
        return new

    authenticate_with_state = authenticate


class _AuthClient:
    """What Collect builds per (URL scheme, credentials): authenticators + auth cache."""

    def __init__(self, scheme: str, username: str, password: str) -> None:
        self.digest = _DigestAuthenticator(username, password)
        self.basic = _BasicAuthenticator(username, password) if scheme == "https" else None
        self.cache: dict[str, bool] = {}

    def dispatch(self, response: Response) -> Request | None:
        """DispatchingAuthenticator: the first challenge whose scheme is registered."""
        assert response.request is not None
        for scheme, params in parse_challenges(response.headers.get_all("WWW-Authenticate")):
            lowered = scheme.lower()
            if lowered == "digest":
                return self.digest.authenticate(params, response.request)
            if lowered == "basic" and self.basic is not None:
                return self.basic.authenticate(response.request)
        return None  # no (supported) challenge: the 401 goes back to the caller

    def authenticate_with_state(self, request: Request) -> Request | None:
        authed = self.digest.authenticate_with_state(request)
        if authed is None and self.basic is not None:
            authed = self.basic.authenticate_with_state(request)
        return authed


def _cache_key(url: str) -> str:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port or (443 if scheme == "https" else 80)
    return f"{scheme}:{(parts.hostname or '').lower()}:{port}"


# --------------------------------------------------------------------------------------
# The client
# --------------------------------------------------------------------------------------


class Collect:
    """An ODK Collect look-alike bound to one ``server_url`` and one transport.

    Every wire exchange is appended to ``exchanges`` as ``(Request, Response)``; the last
    top-level response is ``last_response``; ``submit`` keeps its HEAD in ``last_head``.
    """

    def __init__(
        self,
        server_url: str,
        transport: Transport,
        username: str | None = None,
        password: str | None = None,
        device_id: str | None = DEFAULT_DEVICE_ID,
        *,
        user_agent: str = DEFAULT_USER_AGENT,
        clock: Callable[[], datetime] | None = None,
        strict: bool = True,
    ) -> None:
        self.server_url = server_url
        self.transport = transport
        self.device_id = device_id
        self.user_agent = user_agent
        self.clock = clock
        # strict=True adds checks beyond Collect: a missing Content-Type on XML documents
        # is an error (Collect lets it pass).
        self.strict = strict
        self.exchanges: list[tuple[Request, Response]] = []
        self.last_response: Response | None = None
        self.last_head: Response | None = None
        self._uri_remap: dict[str, str] = {}
        self.set_credentials(username, password)

    @classmethod
    def from_qr(cls, text: str, transport: Transport, **kwargs: Any) -> Collect:
        """Configure a client from a settings QR payload (``general.server_url`` etc.)."""
        settings = decode_qr(text)
        general = settings.get("general") or {}
        return cls(
            general["server_url"],
            transport,
            username=general.get("username"),
            password=general.get("password"),
            **kwargs,
        )

    # -- configuration -------------------------------------------------------------------

    def set_credentials(self, username: str | None, password: str | None) -> None:
        """Change the credentials (as after Collect's prompt): new clients, empty caches."""
        self.username = username
        self.password = password
        self._clients: dict[str, _AuthClient] = {}

    @property
    def server_host(self) -> str:
        return (urlsplit(self.server_url).hostname or "").lower()

    @property
    def form_list_url(self) -> str:
        url = self.server_url
        while url.endswith("/"):
            url = url[:-1]
        return url + "/formList"

    @property
    def submission_url(self) -> str:
        url = self.server_url
        if url.endswith("/"):  # the uploader strips a single slash
            url = url[:-1]
        return url + "/submission"

    def with_device_id(self, url: str) -> str:
        if self.device_id is None:
            return url
        return append_query_parameter(url, "deviceID", self.device_id)

    # -- the HTTP engine ------------------------------------------------------------------

    def request(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
        *,
        device_id: bool = True,
    ) -> Response:
        """Send one request as Collect would: headers, deviceID, auth, redirects, gzip."""
        if device_id:
            url = self.with_device_id(url)
        hdrs = Headers(headers or {})
        hdrs.setdefault("User-Agent", self.user_agent)
        hdrs.setdefault("X-OpenRosa-Version", "1.0")
        hdrs.setdefault("Date", collect_date_header(self.clock() if self.clock else None))
        request = Request(method.upper(), url, hdrs, body)
        response = self._intercept(request)
        self.last_response = response
        return response

    def get(self, url: str, headers: Mapping[str, str] | None = None) -> Response:
        return self.request("GET", url, headers)

    def head(self, url: str, headers: Mapping[str, str] | None = None) -> Response:
        return self.request("HEAD", url, headers)

    def post_raw(
        self,
        body: bytes,
        content_type: str | None,
        url: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        """POST arbitrary bytes (hostile multipart tests) to the submission URL."""
        hdrs = dict(headers or {})
        if content_type is not None:
            hdrs["Content-Type"] = content_type
        return self.request("POST", url or self.submission_url, hdrs, body)

    def _auth_client(self, url: str) -> _AuthClient | None:
        # WebCredentialsUtils: only the host of server_url gets credentials
        if (urlsplit(url).hostname or "").lower() != self.server_host:
            return None
        scheme = urlsplit(url).scheme.lower()
        client = self._clients.get(scheme)
        if client is None:
            client = _AuthClient(scheme, self.username or "", self.password or "")
            self._clients[scheme] = client
        return client

    def _intercept(self, request: Request) -> Response:
        """AuthenticationCacheInterceptor around OkHttp's follow-up loop."""
        client = self._auth_client(request.url)
        key = _cache_key(request.url)
        was_cached = client is not None and key in client.cache
        first = request
        if was_cached:
            assert client is not None
            first = client.authenticate_with_state(request) or request
        history: list[Response] = []
        response = self._follow_ups(client, first, history)
        if was_cached and response.status == 401:
            assert client is not None
            if client.cache.pop(key, None) is not None:
                history.append(response)
                response = self._follow_ups(client, request, history)
        response.history = history
        return response

    def _follow_ups(
        self, client: _AuthClient | None, request: Request, history: list[Response]
    ) -> Response:
        follow_ups = 0
        while True:
            response = self._send(request)
            follow: Request | None = None
            if response.status == 401:
                host = (urlsplit(request.url).hostname or "").lower()
                if client is not None and host == self.server_host:
                    follow = client.dispatch(response)
                    if follow is not None and "Authorization" in follow.headers:
                        client.cache[_cache_key(follow.url)] = True
            elif response.status in _REDIRECT_CODES:
                follow = self._redirect(response)
            if follow is None:
                return response
            follow_ups += 1
            if follow_ups > MAX_FOLLOW_UPS:
                raise CollectError(
                    "too_many_follow_ups",
                    f"Too many follow-up requests: {follow_ups}",
                    response=response,
                )
            history.append(response)
            request = follow

    def _redirect(self, response: Response) -> Request | None:
        request = response.request
        assert request is not None
        location = response.headers.get("Location")
        if location is None:
            return None
        url = urljoin(request.url, location)
        new_parts = urlsplit(url)
        if new_parts.scheme.lower() not in ("http", "https"):
            return None
        method, body, headers = request.method, request.body, request.headers.copy()
        if method not in ("GET", "HEAD"):
            keep_body = response.status in (307, 308)
            if not keep_body:
                method, body = "GET", None
                for name in ("Transfer-Encoding", "Content-Length", "Content-Type"):
                    headers.remove(name)
        if _cache_key(request.url) != _cache_key(url):
            headers.remove("Authorization")
        return Request(method, url, headers, body)

    def _send(self, request: Request) -> Response:
        """OkHttp's BridgeInterceptor + the wire."""
        headers = request.headers.copy()
        transparent_gzip = "Accept-Encoding" not in headers and "Range" not in headers
        if transparent_gzip:
            headers.set("Accept-Encoding", "gzip")
        if request.body is not None:
            headers.set("Content-Length", str(len(request.body)))
        wire = Request(request.method, request.url, headers, request.body)
        response = self.transport.send(wire.method, wire.url, headers.to_dict(), wire.body)
        response.request = wire
        response.url = wire.url
        self.exchanges.append((wire, response))
        encoding = (response.headers.get("Content-Encoding") or "").lower()
        if transparent_gzip and encoding == "gzip" and response.body:
            # exchanges keep the wire response; callers get the decoded one (as in OkHttp)
            decoded_headers = response.headers.copy()
            decoded_headers.remove("Content-Encoding")
            decoded_headers.remove("Content-Length")
            response = dataclasses.replace(
                response,
                headers=decoded_headers,
                body=gzip.decompress(response.body),
                history=[],
                extra={},
            )
        return response

    # -- XML documents ---------------------------------------------------------------------

    def _server_error(self, response: Response) -> CollectError:
        if response.status == 401:
            return CollectError(
                "auth_required",
                "Authentication required (Collect prompts for a username and password)",
                response,
            )
        if response.status == 404:
            return CollectError(
                "unreachable",
                f"Collect can't reach the server at {self.server_url}. "
                f"Did you enter the URL correctly? {REPORT_TO_PROJECT_LEAD}",
                response,
            )
        return self._status_error(response)

    def _status_error(self, response: Response) -> CollectError:
        return CollectError(
            "server_error",
            f"The server {self.server_url} returned status code {response.status}. "
            f"{REPORT_TO_PROJECT_LEAD}",
            response,
        )

    def _parse_error(self, response: Response, detail: str | None = None) -> CollectError:
        return CollectError(
            "parse_error",
            f"The server {self.server_url} provided an invalid response. {REPORT_TO_PROJECT_LEAD}",
            response,
            detail,
        )

    def _fetch_xml(self, url: str) -> tuple[Response, ET.Element | None]:
        """OpenRosaXmlFetcher.getXML: GET with the text/xml check and XML parsing.

        Returns the response and the parsed root (None when the status is not 200).
        Content-type and XML-syntax failures raise ``fetch_error`` (Collect's generic
        message).
        """
        response = self.get(url)
        if response.status != 200:
            return response, None
        content_type = response.headers.get("Content-Type")
        if content_type is not None and "text/xml" not in content_type.lower():
            raise CollectError(
                "fetch_error",
                REPORT_TO_PROJECT_LEAD,
                response,
                f"ContentType: {content_type} returned from: {response.url} is not text/xml."
                "  This is often caused by a network proxy.  Do you need to login to your "
                "network?",
            )
        if content_type is None and self.strict:
            raise CollectError(
                "fetch_error",
                REPORT_TO_PROJECT_LEAD,
                response,
                f"no Content-Type returned from: {response.url} (strict mode wants text/xml)",
            )
        try:
            root = ET.fromstring(response.body)
        except ET.ParseError as exc:
            raise CollectError("fetch_error", REPORT_TO_PROJECT_LEAD, response, str(exc)) from exc
        return response, root

    @staticmethod
    def _is_openrosa(response: Response) -> bool:
        return "X-OpenRosa-Version" in response.headers

    def form_list(self, form_id: str | None = None) -> list[dict[str, Any]]:
        """``GET {server_url}/formList`` and parse it like Collect (see parse_form_list)."""
        url = self.form_list_url
        if form_id is not None:
            url = append_query_parameter(url, "formID", form_id)
        response, root = self._fetch_xml(url)
        if root is None:
            raise self._server_error(response)
        if not self._is_openrosa(response):
            raise CollectError(
                "not_openrosa", f"{MSG_NOT_OPENROSA} {REPORT_TO_PROJECT_LEAD}", response
            )
        forms = parse_form_list(root)
        if forms is None:
            raise self._parse_error(response)
        return forms

    def download_form(self, entry: Mapping[str, Any], check_hash: bool = True) -> bytes:
        """GET the form's ``downloadUrl``; the MD5 of the bytes must equal the listed hash."""
        if entry.get("hash") is None:
            raise CollectError("no_hash", f"{MSG_NO_HASH} {REPORT_TO_PROJECT_LEAD}")
        response = self.get(entry["downloadUrl"])
        if response.status != 200:
            raise self._status_error(response)
        if check_hash:
            actual = _md5_hex(response.body)
            if actual != entry["hash"]:
                raise CollectError(
                    "hash_mismatch",
                    f"md5 of {entry['downloadUrl']} is {actual}, formList says {entry['hash']}",
                    response,
                )
        return response.body

    def manifest(self, url: str | Mapping[str, Any]) -> list[dict[str, Any]]:
        """GET a manifest (a URL or a formList entry) and parse it like Collect.

        Collect silently installs a form without media when its manifest is rejected; this
        client raises instead, so tests see the problem.
        """
        if not isinstance(url, str):
            if url.get("manifestUrl") is None:
                return []
            url = url["manifestUrl"]
        response, root = self._fetch_xml(url)
        if root is None:
            raise self._status_error(response)
        if not self._is_openrosa(response):
            raise self._parse_error(response, "no X-OpenRosa-Version header")
        files = parse_manifest(root)
        if files is None:
            raise self._parse_error(response)
        return files

    def download_media(self, url: str | Mapping[str, Any], etag: str | None = None) -> Response:
        """GET a media file (URL or manifest entry); ``etag`` is sent as If-None-Match.

        The raw response is returned (200, 304, errors alike); no hash check here.
        """
        if not isinstance(url, str):
            url = url["downloadUrl"]
        headers = {"If-None-Match": etag} if etag is not None else None
        return self.get(url, headers)

    def integrity(self, url: str, ids: Iterable[str]) -> dict[str, bool]:
        """GET ``integrityUrl?id=a,b,c`` (commas encoded) and parse ``<deleted>`` strictly."""
        full = append_query_parameter(url, "id", ",".join(ids))
        response, root = self._fetch_xml(full)
        if root is None:
            raise self._status_error(response)
        if not self._is_openrosa(response):
            raise self._parse_error(response, "no X-OpenRosa-Version header")
        try:
            return parse_integrity(root)
        except ValueError as exc:
            raise self._parse_error(response, str(exc)) from exc

    # -- submissions -----------------------------------------------------------------------

    def head_submission(self, url: str | None = None) -> tuple[int, int]:
        """HEAD pre-flight: ``(status, accept_content_length)``.

        Headers are read only from a 204; the length defaults to 10 000 000 when missing or
        not a Java long.  The response is kept in ``last_head``.
        """
        response = self.head(url or self.submission_url)
        self.last_head = response
        return response.status, self._accept_length(response)

    @staticmethod
    def _accept_length(response: Response) -> int:
        if response.status != 204:
            return ACCEPT_CONTENT_LENGTH_DEFAULT
        value = response.headers.get("X-OpenRosa-Accept-Content-Length")
        if value is None or not re.fullmatch(r"[+-]?[0-9]+", value):
            return ACCEPT_CONTENT_LENGTH_DEFAULT
        number = int(value)
        if not -(2**63) <= number < 2**63:
            return ACCEPT_CONTENT_LENGTH_DEFAULT
        return number

    def submit(
        self,
        xml_bytes: bytes,
        attachments: Mapping[str, bytes] | None = None,
        xml_filename: str = DEFAULT_XML_FILENAME,
        max_bytes: int | None = None,
        url: str | None = None,
        boundary: str | None = None,
    ) -> list[Response]:
        """Send one instance like Collect's uploader: HEAD, then one or more POSTs.

        ``attachments`` maps file name -> bytes, sent in that order.  ``max_bytes``
        overrides the accepted length learnt from HEAD.  ``url`` replaces the default
        ``{server_url}/submission`` (a form-level submission action).  Returns every POST
        response up to and including the first that is not 201/202; each carries
        ``extra["files"]`` and ``extra["incomplete"]``.  HEAD outcomes that make Collect
        give up (401, a 2xx other than 204, a Location on another host) raise
        ``CollectError``.
        """
        attachments = dict(attachments or {})
        url_string = self.with_device_id(url or self.submission_url)
        submission_url = url_string
        content_length = ACCEPT_CONTENT_LENGTH_DEFAULT

        if url_string in self._uri_remap:
            submission_url = self._uri_remap[url_string]
        else:
            head = self.request("HEAD", url_string, device_id=False)
            self.last_head = head
            content_length = self._accept_length(head)
            original = urlsplit(url_string)
            if head.status == 401:
                raise CollectError(
                    "auth_required",
                    f"Invalid username or password for server: {original.hostname}",
                    head,
                )
            if head.status == 204:
                location = head.headers.get("Location")
                if location is not None:
                    decoded = unquote_plus(location, encoding="utf-8")
                    new = urlsplit(decoded)
                    if (new.hostname or "").lower() != (original.hostname or "").lower():
                        raise CollectError(
                            "upload_error",
                            f"{UPLOAD_FAIL}Unexpected redirection attempt to a different "
                            f"host: {decoded}",
                            head,
                        )
                    if not new.query and "?" not in decoded:
                        decoded = urlunsplit(new._replace(query=original.query))
                    self._uri_remap[url_string] = decoded
                    submission_url = decoded
            elif 200 <= head.status < 300:
                raise CollectError(
                    "upload_error",
                    f"Failed to send to {url_string}. Is this an OpenRosa submission endpoint? "
                    "If you have a web proxy you may need to log in to your network.\n\n"
                    f"HEAD request result status code: {head.status}",
                    head,
                )
        if max_bytes is not None:
            content_length = max_bytes

        names = list(attachments)
        chunks = split_attachments(
            len(xml_bytes), [len(attachments[n]) for n in names], content_length
        )
        responses: list[Response] = []
        for start, end, incomplete in chunks:
            parts: list[Part] = [
                Part("xml_submission_file", xml_bytes, xml_filename, "text/xml"),
            ]
            for name in names[start:end]:
                parts.append(Part(name, attachments[name], name, collect_content_type(name)))
            if incomplete:
                parts.append(Part("*isIncomplete*", b"yes"))
            content_type, body = multipart_body(parts, boundary)
            response = self.request(
                "POST", submission_url, {"Content-Type": content_type}, body, device_id=False
            )
            response.extra["files"] = names[start:end]
            response.extra["incomplete"] = incomplete
            response.extra["failure_message"] = upload_failure_message(response, url_string)
            responses.append(response)
            if response.status not in (201, 202):
                break
        return responses
