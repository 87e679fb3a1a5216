"""Tests of the Collect look-alike test client (tests/support/collect.py).

The client is run against a small throwaway Flask app defined here, which checks Digest
responses with hashlib, counts nonces, records every request and parses every multipart
POST, so the client's digest math, auth caching, splitting and parsing are proven before
the real server's tests rely on it.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import re
import secrets
import threading
from datetime import datetime
from types import SimpleNamespace

import pytest
from flask import Flask, Response, request
from werkzeug.http import parse_dict_header
from werkzeug.serving import make_server

from tests.support.collect import (
    ACCEPT_CONTENT_LENGTH_DEFAULT,
    DEFAULT_USER_AGENT,
    Collect,
    CollectError,
    FlaskTransport,
    HttpTransport,
    Part,
    collect_content_type,
    collect_date_header,
    decode_qr,
    encode_qr,
    multipart_body,
    openrosa_message,
    parse_challenges,
    parse_form_list,
    split_attachments,
    upload_failure_message,
)

REALM = "odk-test"
OPAQUE = "opaque-5ccc069c"
USERS = {"alice": "s3cret pass", "bärbel": "pässwörd"}
DEVICE_QUERY = "deviceID=collect%3AABCDEFGHIJKLMNOP"

FORM_XML = (
    b'<?xml version="1.0"?>\n<h:html xmlns="http://www.w3.org/2002/xforms" '
    b'xmlns:h="http://www.w3.org/1999/xhtml"><h:head><h:title>Household survey</h:title>'
    b'<model><instance><data id="household_survey" version="2026061501"><name/>'
    b"<meta><instanceID/></meta></data></instance></model></h:head><h:body/></h:html>\n"
)
FORM_MD5 = hashlib.md5(FORM_XML).hexdigest()
LOGO = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
TREES_CSV = b"name,label,__version\n" + b"".join(
    f"{i:08d}-0000-4000-8000-000000000000,Tree {i},1\n".encode() for i in range(200)
)
LIVE_ID = "11111111-1111-4111-8111-111111111111"
DELETED_ID = "22222222-2222-4222-8222-222222222222"
UNKNOWN_ID = "33333333-3333-4333-8333-333333333333"

SUBMISSION_XML = (
    b'<?xml version="1.0"?><data id="household_survey" version="2026061501">'
    b"<name>An</name><photo>photo.jpg</photo><meta><instanceID>"
    b"uuid:6c1b6c1e-3b8e-4a43-9c38-0e5a5b3c1f20</instanceID><audit>audit.csv</audit></meta></data>"
)
OPENROSA_OK = (
    '<OpenRosaResponse xmlns="http://openrosa.org/http/response" items="0">'
    '<message nature="">full submission upload was successful!</message></OpenRosaResponse>'
)


def _md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest()


# --------------------------------------------------------------------------------------
# The throwaway server
# --------------------------------------------------------------------------------------


class DigestChecker:
    """RFC 2617 Digest (MD5, qop=auth) with nonce tracking, checked with hashlib."""

    def __init__(self) -> None:
        self.nonces: dict[str, int] = {}  # nonce -> highest nc seen
        self.stale: set[str] = set()

    def challenge(self, stale: bool = False) -> str:
        nonce = secrets.token_hex(16)
        self.nonces[nonce] = 0
        value = (
            f'Digest realm="{REALM}", qop="auth", nonce="{nonce}", opaque="{OPAQUE}", algorithm=MD5'
        )
        return value + (", stale=true" if stale else "")

    def expire_all(self) -> None:
        """Current nonces become stale (answered with stale=true)."""
        self.stale |= set(self.nonces)
        self.nonces.clear()

    def forget_all(self) -> None:
        """Current nonces become unknown (answered without stale)."""
        self.nonces.clear()
        self.stale.clear()

    def check(self) -> str:
        """'ok', 'stale' (right password, expired nonce) or 'bad'."""
        header = request.headers.get("Authorization", "")
        if not header.startswith("Digest "):
            return "bad"
        p = parse_dict_header(header[len("Digest ") :])
        user = p.get("username")
        if user not in USERS or p.get("realm") != REALM or p.get("opaque") != OPAQUE:
            return "bad"
        if p.get("qop") != "auth" or p.get("algorithm") != "MD5":
            return "bad"
        if p.get("uri") != request.environ.get("REQUEST_URI"):
            return "bad"
        nc, cnonce, nonce = p.get("nc", ""), p.get("cnonce", ""), p.get("nonce", "")
        if not re.fullmatch(r"[0-9a-f]{8}", nc) or not cnonce:
            return "bad"
        ha1 = _md5(f"{user}:{REALM}:{USERS[user]}")
        ha2 = _md5(f"{request.method}:{p['uri']}")
        expected = _md5(f"{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}")
        if p.get("response") != expected:
            return "bad"
        if nonce in self.stale:
            return "stale"
        if nonce not in self.nonces or int(nc, 16) <= self.nonces[nonce]:
            return "bad"  # unknown nonce or replayed nonce count
        self.nonces[nonce] = int(nc, 16)
        return "ok"


def basic_ok() -> bool:
    header = request.headers.get("Authorization", "")
    if not header.startswith("Basic "):
        return False
    raw = base64.b64decode(header[6:])
    user, _, password = raw.decode("latin-1").partition(":")
    return USERS.get(user) == password


FORM_LIST_VARIANTS = {
    "good": """<?xml version="1.0" encoding="UTF-8"?>
<xforms xmlns="http://openrosa.org/xforms/xformsList" xmlns:x="urn:other">
  <xform>
    <formID>household_survey</formID>
    <name>Household survey</name>
    <version>2026061501</version>
    <hash>md5:{md5}</hash>
    <downloadUrl>{root}forms/household_survey.xml</downloadUrl>
    <manifestUrl>{root}forms/household_survey/manifest</manifestUrl>
    <x:extra>ignored</x:extra>
  </xform>
  <xform>
    <formID> support_visit </formID>
    <name>Support visit</name>
    <version>   </version>
    <hash>{md5}</hash>
    <downloadUrl>{root}forms/support_visit.xml</downloadUrl>
  </xform>
  <x:xform><x:formID>foreign</x:formID></x:xform>
  <xforms-group><groupID>g</groupID></xforms-group>
</xforms>""",
    "missing_name": """<xforms xmlns="http://openrosa.org/xforms/xformsList">
  <xform><formID>a</formID><name>A</name><downloadUrl>{root}a.xml</downloadUrl></xform>
  <xform><formID>b</formID><name>  </name><downloadUrl>{root}b.xml</downloadUrl></xform>
</xforms>""",
    "wrong_ns": """<xforms xmlns="http://openrosa.org/xforms/xformsManifest">
  <xform><formID>a</formID><name>A</name><downloadUrl>{root}a.xml</downloadUrl></xform>
</xforms>""",
}

MANIFEST = """<?xml version="1.0" encoding="UTF-8"?>
<manifest xmlns="http://openrosa.org/xforms/xformsManifest">
  <mediaFile>
    <filename>media/images/logo.png</filename>
    <hash>md5:{logo_md5}</hash>
    <downloadUrl>{root}attachments/logo.png</downloadUrl>
  </mediaFile>
  <mediaFile type="entityList">
    <filename>trees.csv</filename>
    <hash>md5:0123456789abcdef0123456789abcdef</hash>
    <downloadUrl>{root}attachments/trees.csv</downloadUrl>
    <integrityUrl>{root}datasets/trees/integrity</integrityUrl>
  </mediaFile>
</manifest>"""


def make_app() -> tuple[Flask, SimpleNamespace]:
    app = Flask(__name__)
    state = SimpleNamespace(
        digest=DigestChecker(),
        log=[],
        posts=[],
        formlist="good",
        formlist_status=200,
        formlist_type="text/xml; charset=utf-8",
        formlist_openrosa=True,
        serve_corrupt_form=False,
        integrity_text={LIVE_ID: "false", DELETED_ID: "true"},
        head_status=204,
        accept_length="100",
        head_location=None,
        post_statuses=[],
    )

    @app.before_request
    def record() -> None:
        state.log.append(
            SimpleNamespace(
                method=request.method,
                host=request.host,
                path=request.path,
                raw_uri=request.environ.get("REQUEST_URI"),
                query=request.query_string.decode("latin-1"),
                args=request.args.to_dict(),
                headers=dict(request.headers),
                body=request.get_data(cache=True),
            )
        )

    def openrosa(body: str | bytes, status: int = 200, ctype: str = "text/xml") -> Response:
        resp = Response(body, status=status, content_type=ctype)
        resp.headers["X-OpenRosa-Version"] = "1.0"
        return resp

    def unauthorized(*challenges: str) -> Response:
        resp = openrosa("", status=401)
        for challenge in challenges:
            resp.headers.add("WWW-Authenticate", challenge)
        return resp

    def authorize(mode: str) -> Response | None:
        """None when the request may proceed, else the 401 to send."""
        d = state.digest
        if mode == "open":
            return None
        if mode == "noauth":
            return openrosa("", status=401)  # 401 without any challenge
        if mode == "digest":
            result = d.check()
            if result == "ok":
                return None
            return unauthorized(d.challenge(stale=result == "stale"))
        if mode == "basic":
            return None if basic_ok() else unauthorized(f'Basic realm="{REALM}"')
        if mode == "multi":  # two challenges in one header, Basic first
            if basic_ok() or d.check() == "ok":
                return None
            return unauthorized(f'Basic realm="{REALM}", {d.challenge()}')
        if mode == "multi2":  # two headers, Digest first
            if basic_ok() or d.check() == "ok":
                return None
            return unauthorized(d.challenge(), f'Basic realm="{REALM}"')
        raise AssertionError(mode)

    @app.route("/<mode>/projects/1/<path:rest>", methods=["GET", "HEAD", "POST"])
    def endpoint(mode: str, rest: str):
        denied = authorize(mode)
        if denied is not None:
            return denied
        root = f"{request.host_url}{mode}/projects/1/"
        if rest == "formList":
            if state.formlist_status != 200:
                return openrosa("nope", status=state.formlist_status)
            text = FORM_LIST_VARIANTS[state.formlist].format(root=root, md5=FORM_MD5)
            if "formID" in request.args:
                wanted = request.args["formID"]
                text = re.sub(
                    r"\s*<xform>(?:(?!</xform>).)*</xform>",
                    lambda m: (
                        m.group(0)
                        if re.search(rf"<formID>\s*{re.escape(wanted)}\s*</formID>", m.group(0))
                        else ""
                    ),
                    text,
                    flags=re.S,
                )
            resp = openrosa(text, ctype=state.formlist_type)
            if not state.formlist_openrosa:
                del resp.headers["X-OpenRosa-Version"]
            return resp
        if rest in ("forms/household_survey.xml", "forms/support_visit.xml"):
            body = FORM_XML + (b"<!-- changed -->" if state.serve_corrupt_form else b"")
            return Response(body, content_type="application/xml")
        if rest == "forms/household_survey/manifest":
            logo_md5 = hashlib.md5(LOGO).hexdigest()
            return openrosa(MANIFEST.format(root=root, logo_md5=logo_md5))
        if rest.startswith("attachments/"):
            name = rest.split("/", 1)[1]
            data = {"logo.png": LOGO, "trees.csv": TREES_CSV}.get(name)
            if data is None:
                return openrosa("", status=404)
            etag = f'"{hashlib.md5(data).hexdigest()}"'
            if request.headers.get("If-None-Match") == etag:
                resp = Response(status=304)
            elif name.endswith(".csv") and "gzip" in request.headers.get("Accept-Encoding", ""):
                resp = Response(gzip.compress(data), content_type="text/csv")
                resp.headers["Content-Encoding"] = "gzip"
            else:
                resp = Response(data, content_type="application/octet-stream")
            resp.headers["ETag"] = etag
            return resp
        if rest == "datasets/trees/integrity":
            ids = request.args.get("id", "").split(",")
            items = "".join(
                f'<entity id="{i}"><deleted>{state.integrity_text[i]}</deleted></entity>'
                for i in ids
                if i in state.integrity_text
            )
            return openrosa(f"<data><entities>{items}</entities></data>")
        if rest == "submission":
            if request.method in ("GET", "HEAD"):
                resp = openrosa("", status=state.head_status)
                if state.accept_length is not None:
                    resp.headers["X-OpenRosa-Accept-Content-Length"] = state.accept_length
                if state.head_location is not None:
                    resp.headers["Location"] = state.head_location
                return resp
            return receive_submission()
        if rest == "remapped/submission" and request.method == "POST":
            return receive_submission()
        if rest == "away":
            return Response("", status=302, headers={"Location": "http://elsewhere.test/x"})
        if rest == "loop":
            return Response("", status=302, headers={"Location": request.path})
        if rest.startswith("redirect/"):
            code = int(rest.split("/")[1])
            return Response("", status=code, headers={"Location": f"{root}echo"})
        if rest == "echo":
            return openrosa(request.method.encode() + b" " + request.get_data())
        return openrosa("", status=404)

    def receive_submission() -> Response:
        files = [
            (key, f.filename, f.mimetype, f.read())
            for key in request.files
            for f in request.files.getlist(key)
        ]
        state.posts.append(
            SimpleNamespace(
                form=request.form.to_dict(),
                files=files,
                content_type=request.headers.get("Content-Type"),
                raw=request.get_data(cache=True),
            )
        )
        status = state.post_statuses.pop(0) if state.post_statuses else 201
        if status in (201, 202):
            return openrosa(OPENROSA_OK, status=status)
        return openrosa(
            '<OpenRosaResponse xmlns="http://openrosa.org/http/response">'
            '<message nature="error">Something broke.</message></OpenRosaResponse>',
            status=status,
        )

    @app.route("/x", methods=["GET", "POST"])
    def elsewhere():  # what a redirect to elsewhere.test reaches in the test client
        return openrosa(request.headers.get("Authorization", "no-auth"))

    return app, state


@pytest.fixture
def server():
    app, state = make_app()
    client = app.test_client()

    def collect(mode: str = "open", scheme: str = "http", **kwargs) -> Collect:
        transport = FlaskTransport(client, base_url=f"{scheme}://localhost")
        kwargs.setdefault("username", "alice")
        kwargs.setdefault("password", USERS["alice"])
        return Collect(f"{scheme}://localhost/{mode}/projects/1", transport, **kwargs)

    return SimpleNamespace(app=app, state=state, client=client, collect=collect)


def auth_headers(collect: Collect) -> list[str | None]:
    return [req.headers.get("Authorization") for req, _ in collect.exchanges]


def digest_fields(header: str) -> dict[str, str]:
    assert header.startswith("Digest ")
    return parse_dict_header(header[len("Digest ") :])


# --------------------------------------------------------------------------------------
# Headers Collect puts on every request
# --------------------------------------------------------------------------------------


def test_date_header_uses_collects_12_hour_clock():
    assert collect_date_header(datetime(2026, 6, 15, 15, 22, 1)) == "Mon, 15 Jun 2026 03:22:01 GMT"
    assert collect_date_header(datetime(2026, 6, 15, 0, 5, 9)) == "Mon, 15 Jun 2026 12:05:09 GMT"
    assert collect_date_header(datetime(2026, 6, 14, 12, 0, 0)) == "Sun, 14 Jun 2026 12:00:00 GMT"
    assert re.fullmatch(
        r"[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} (0\d|1[0-2]):\d\d:\d\d GMT",
        collect_date_header(),
    )


def test_every_request_carries_collect_headers_and_device_id(server):
    clock = lambda: datetime(2026, 6, 15, 15, 22, 1)  # noqa: E731
    collect = server.collect(clock=clock)
    collect.form_list()
    collect.form_list(form_id="support_visit")
    collect.head_submission()
    for entry in server.state.log:
        assert entry.headers["X-Openrosa-Version"] == "1.0"
        assert entry.headers["Date"] == "Mon, 15 Jun 2026 03:22:01 GMT"
        assert entry.headers["User-Agent"] == DEFAULT_USER_AGENT
        assert "Authorization" not in entry.headers
        assert entry.args["deviceID"] == "collect:ABCDEFGHIJKLMNOP"
    first, second, head = server.state.log
    assert first.raw_uri == f"/open/projects/1/formList?{DEVICE_QUERY}"
    assert second.raw_uri == f"/open/projects/1/formList?formID=support_visit&{DEVICE_QUERY}"
    assert (head.method, head.raw_uri) == ("HEAD", f"/open/projects/1/submission?{DEVICE_QUERY}")


def test_server_url_slashes_are_stripped_like_collect(server):
    collect = Collect("https://h.example/v1/key/abc/projects/3///", transport=None)
    assert collect.form_list_url == "https://h.example/v1/key/abc/projects/3/formList"
    # the uploader strips a single trailing slash only
    assert collect.submission_url == "https://h.example/v1/key/abc/projects/3///submission"
    assert Collect("http://h/p/", None).submission_url == "http://h/p/submission"
    assert collect.with_device_id("http://h/a.xml?v=2") == f"http://h/a.xml?v=2&{DEVICE_QUERY}"


# --------------------------------------------------------------------------------------
# Reactive authentication
# --------------------------------------------------------------------------------------


def test_digest_is_reactive_and_then_preemptive_with_incremented_nc(server):
    collect = server.collect("digest")
    forms = collect.form_list()
    assert [f["formID"] for f in forms] == ["household_survey", "support_visit"]

    first, second = auth_headers(collect)
    assert first is None
    fields = digest_fields(second)
    assert fields["username"] == "alice"
    assert fields["realm"] == REALM
    assert fields["uri"] == f"/digest/projects/1/formList?{DEVICE_QUERY}"
    assert fields["qop"] == "auth" and fields["nc"] == "00000001"
    assert fields["algorithm"] == "MD5"
    assert fields["opaque"] == OPAQUE
    assert re.fullmatch(r"[0-9a-f]{16}", fields["cnonce"])
    assert 'qop=auth, nc=00000001, cnonce="' in second  # qop and nc unquoted, like okhttp

    # the same scheme:host:port now gets credentials up front
    collect.exchanges.clear()
    collect.download_form(forms[0])
    (only,) = auth_headers(collect)
    again = digest_fields(only)
    assert again["nc"] == "00000002"
    assert again["cnonce"] == fields["cnonce"] and again["nonce"] == fields["nonce"]
    assert again["uri"] == f"/digest/projects/1/forms/household_survey.xml?{DEVICE_QUERY}"


def test_digest_wrong_password_gets_one_retry_only(server):
    collect = server.collect("digest", password="wrong")
    with pytest.raises(CollectError) as err:
        collect.form_list()
    assert err.value.kind == "auth_required"
    assert err.value.response.status == 401
    assert len(collect.exchanges) == 2
    assert auth_headers(collect)[0] is None


def test_stale_nonce_is_renegotiated_without_prompting(server):
    collect = server.collect("digest")
    collect.form_list()
    old_nonce = digest_fields(auth_headers(collect)[-1])["nonce"]
    server.state.digest.expire_all()
    collect.exchanges.clear()

    response = collect.get(collect.form_list_url)
    assert response.status == 200
    statuses = [resp.status for _, resp in collect.exchanges]
    assert statuses == [401, 200]
    pre, renewed = (digest_fields(h) for h in auth_headers(collect))
    assert pre["nonce"] == old_nonce
    assert renewed["nonce"] != old_nonce and renewed["nc"] == "00000001"
    assert "stale=true" in collect.exchanges[0][1].headers["WWW-Authenticate"]


def test_rejected_preemptive_auth_drops_cache_and_resends_without_credentials(server):
    collect = server.collect("digest")
    collect.form_list()
    server.state.digest.forget_all()
    collect.exchanges.clear()

    assert collect.get(collect.form_list_url).status == 200
    headers = auth_headers(collect)
    assert [resp.status for _, resp in collect.exchanges] == [401, 401, 200]
    assert headers[0].startswith("Digest ") and headers[1] is None
    assert headers[2].startswith("Digest ")


def test_401_without_challenge_is_returned_as_is(server):
    collect = server.collect("noauth")
    with pytest.raises(CollectError) as err:
        collect.form_list()
    assert err.value.kind == "auth_required"
    assert auth_headers(collect) == [None]


def test_basic_is_never_answered_over_http(server):
    collect = server.collect("basic")
    response = collect.get(collect.form_list_url)
    assert response.status == 401
    assert auth_headers(collect) == [None]


def test_basic_over_https_is_latin1_and_then_preemptive(server):
    collect = server.collect("basic", scheme="https", username="bärbel", password="pässwörd")
    assert collect.form_list()
    first, second = auth_headers(collect)
    assert first is None
    assert base64.b64decode(second[len("Basic ") :]) == "bärbel:pässwörd".encode("latin-1")
    collect.exchanges.clear()
    collect.manifest(collect.form_list()[0])
    assert len(collect.exchanges) == 2 and all(
        h.startswith("Basic ") for h in auth_headers(collect)
    )


def test_basic_wrong_password_is_not_retried(server):
    collect = server.collect("basic", scheme="https", password="nope")
    assert collect.get(collect.form_list_url).status == 401
    assert [h is None for h in auth_headers(collect)] == [True, False]


def test_challenge_choice_follows_order_and_scheme(server):
    # one header "Basic ..., Digest ...": http registers only Digest
    collect = server.collect("multi")
    assert collect.get(collect.form_list_url).status == 200
    assert auth_headers(collect)[1].startswith("Digest ")
    # over https the first supported challenge (Basic) wins
    collect = server.collect("multi", scheme="https")
    assert collect.get(collect.form_list_url).status == 200
    assert auth_headers(collect)[1].startswith("Basic ")
    # two headers, Digest first
    collect = server.collect("multi2", scheme="https")
    assert collect.get(collect.form_list_url).status == 200
    assert auth_headers(collect)[1].startswith("Digest ")


def test_credentials_only_go_to_the_server_host(server):
    collect = server.collect("digest")
    response = collect.get("http://other.test/digest/projects/1/formList")
    assert response.status == 401
    assert auth_headers(collect) == [None]

    # a redirect to another host drops the Authorization header
    collect.form_list()
    collect.exchanges.clear()
    response = collect.get("http://localhost/digest/projects/1/away")
    assert response.status == 200 and response.text == "no-auth"
    (away_req, _), (there_req, _) = collect.exchanges
    assert away_req.headers["Authorization"].startswith("Digest ")
    assert "Authorization" not in there_req.headers
    assert there_req.url == "http://elsewhere.test/x"  # deviceID is not re-added


def test_no_username_still_answers_with_empty_credentials(server):
    collect = server.collect("digest", username=None, password=None)
    assert collect.get(collect.form_list_url).status == 401
    assert digest_fields(auth_headers(collect)[1])["username"] == ""


# --------------------------------------------------------------------------------------
# Redirects
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "expected"),
    [(301, b"GET "), (302, b"GET "), (303, b"GET "), (307, b"POST abc"), (308, b"POST abc")],
)
def test_post_redirects_follow_okhttp_rules(server, code, expected):
    collect = server.collect()
    response = collect.post_raw(
        b"abc", "text/plain", url=f"http://localhost/open/projects/1/redirect/{code}"
    )
    assert response.status == 200
    assert response.body == expected
    assert [r.status for r in response.history] == [code]


def test_redirect_loop_stops_after_20_follow_ups(server):
    collect = server.collect()
    with pytest.raises(CollectError) as err:
        collect.get("http://localhost/open/projects/1/loop")
    assert err.value.kind == "too_many_follow_ups"
    assert len(collect.exchanges) == 21


# --------------------------------------------------------------------------------------
# formList, form download, manifest, media, integrity
# --------------------------------------------------------------------------------------


def test_form_list_is_parsed_like_collect(server):
    forms = server.collect().form_list()
    root = "http://localhost/open/projects/1/"
    assert forms == [
        {
            "formID": "household_survey",
            "name": "Household survey",
            "version": "2026061501",
            "hash": FORM_MD5,
            "rawHash": f"md5:{FORM_MD5}",
            "downloadUrl": f"{root}forms/household_survey.xml",
            "manifestUrl": f"{root}forms/household_survey/manifest",
        },
        {
            "formID": "support_visit",  # trimmed
            "name": "Support visit",
            "version": None,  # blank
            "hash": None,  # no md5: prefix
            "rawHash": FORM_MD5,
            "downloadUrl": f"{root}forms/support_visit.xml",
            "manifestUrl": None,
        },
    ]


def test_form_list_filtered_by_form_id(server):
    forms = server.collect().form_list(form_id="support_visit")
    assert [f["formID"] for f in forms] == ["support_visit"]


@pytest.mark.parametrize(
    ("setup", "kind", "message"),
    [
        (
            {"formlist": "missing_name"},
            "parse_error",
            "The server http://localhost/open/projects/1 provided an invalid response.",
        ),
        (
            {"formlist": "wrong_ns"},
            "parse_error",
            "The server http://localhost/open/projects/1 provided an invalid response.",
        ),
        (
            {"formlist_openrosa": False},
            "not_openrosa",
            "This server does not correctly implement the OpenRosa formList API.",
        ),
        (
            {"formlist_type": "application/xml"},
            "fetch_error",
            "If you keep having this problem, report it",
        ),
        (
            {"formlist_status": 404},
            "unreachable",
            "Collect can't reach the server at http://localhost/open/projects/1. "
            "Did you enter the URL correctly?",
        ),
        (
            {"formlist_status": 500},
            "server_error",
            "The server http://localhost/open/projects/1 returned status code 500.",
        ),
    ],
)
def test_form_list_failures_raise_collects_messages(server, setup, kind, message):
    for key, value in setup.items():
        setattr(server.state, key, value)
    with pytest.raises(CollectError) as err:
        server.collect().form_list()
    assert err.value.kind == kind
    assert err.value.message.startswith(message)
    assert err.value.response is not None
    if kind == "fetch_error":
        assert "application/xml" in err.value.detail and "is not text/xml" in err.value.detail


def test_form_list_parser_accepts_empty_list_and_rejects_bad_root():
    assert parse_form_list(b'<xforms xmlns="http://openrosa.org/xforms/xformsList"/>') == []
    assert parse_form_list(b"<xforms/>") is None
    assert parse_form_list(b'<forms xmlns="http://openrosa.org/xforms/xformsList"/>') is None


def test_download_form_checks_the_listed_md5(server):
    collect = server.collect()
    survey, visit = collect.form_list()
    assert collect.download_form(survey) == FORM_XML
    with pytest.raises(CollectError) as err:
        collect.download_form(visit)
    assert err.value.kind == "no_hash"
    assert err.value.message.startswith("The server did not provide a hash for this form.")
    server.state.serve_corrupt_form = True
    with pytest.raises(CollectError) as err:
        collect.download_form(survey)
    assert err.value.kind == "hash_mismatch"


def test_manifest_media_and_gzip(server):
    collect = server.collect()
    survey = collect.form_list()[0]
    logo, trees = collect.manifest(survey)
    root = "http://localhost/open/projects/1/"
    assert logo == {
        "filename": "logo.png",  # base name only
        "hash": hashlib.md5(LOGO).hexdigest(),
        "rawHash": f"md5:{hashlib.md5(LOGO).hexdigest()}",
        "downloadUrl": f"{root}attachments/logo.png",
        "type": None,
        "integrityUrl": None,
    }
    assert trees["type"] == "entityList"
    assert trees["integrityUrl"] == f"{root}datasets/trees/integrity"

    first = collect.download_media(logo)
    assert first.status == 200 and first.body == LOGO
    assert server.state.log[-1].raw_uri == f"/open/projects/1/attachments/logo.png?{DEVICE_QUERY}"
    again = collect.download_media(logo["downloadUrl"], etag=first.headers["ETag"])
    assert again.status == 304
    assert server.state.log[-1].headers["If-None-Match"] == first.headers["ETag"]

    csv = collect.download_media(trees)
    assert server.state.log[-1].headers["Accept-Encoding"] == "gzip"
    assert csv.body == TREES_CSV and "Content-Encoding" not in csv.headers
    wire = collect.exchanges[-1][1]  # exchanges keep what came over the wire
    assert wire.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(wire.body) == TREES_CSV


def test_integrity_request_and_strict_parsing(server):
    collect = server.collect()
    url = "http://localhost/open/projects/1/datasets/trees/integrity"
    result = collect.integrity(url, [DELETED_ID, LIVE_ID, UNKNOWN_ID])
    assert result == {DELETED_ID: True, LIVE_ID: False}
    assert server.state.log[-1].query == (
        f"id={DELETED_ID}%2C{LIVE_ID}%2C{UNKNOWN_ID}&{DEVICE_QUERY}"
    )
    server.state.integrity_text[LIVE_ID] = " false"
    with pytest.raises(CollectError) as err:
        collect.integrity(url, [LIVE_ID])
    assert err.value.kind == "parse_error" and "' false'" in err.value.detail


# --------------------------------------------------------------------------------------
# Submissions
# --------------------------------------------------------------------------------------


def test_head_submission_reads_accept_length_only_from_204(server):
    collect = server.collect()
    assert collect.head_submission() == (204, 100)
    server.state.accept_length = None
    assert collect.head_submission() == (204, ACCEPT_CONTENT_LENGTH_DEFAULT)
    server.state.accept_length = "12 MB"
    assert collect.head_submission() == (204, ACCEPT_CONTENT_LENGTH_DEFAULT)
    server.state.accept_length, server.state.head_status = "100", 200
    assert collect.head_submission() == (200, ACCEPT_CONTENT_LENGTH_DEFAULT)
    assert collect.last_head.status == 200


def test_submit_splits_like_collect(server):
    collect = server.collect()
    xml = b"x" * 30
    files = {"a.jpg": b"a" * 40, "b.jpg": b"b" * 40, "c.amr": b"c" * 10}
    responses = collect.submit(xml, files)  # HEAD says 100 bytes

    assert [r.status for r in responses] == [201, 201]
    assert [r.message for r in responses] == ["full submission upload was successful!"] * 2
    assert [r.extra["files"] for r in responses] == [["a.jpg"], ["b.jpg", "c.amr"]]
    assert [r.extra["incomplete"] for r in responses] == [True, False]
    assert [r.extra["failure_message"] for r in responses] == [None, None]

    methods = [(e.method, e.raw_uri) for e in server.state.log]
    submission = f"/open/projects/1/submission?{DEVICE_QUERY}"
    assert methods == [("HEAD", submission), ("POST", submission), ("POST", submission)]

    first, second = server.state.posts
    assert first.form == {"*isIncomplete*": "yes"}
    assert second.form == {}
    assert first.files == [
        ("xml_submission_file", "Household survey_2026-06-15_10-22-01.xml", "text/xml", xml),
        ("a.jpg", "a.jpg", "image/jpeg", b"a" * 40),
    ]
    assert [(f[0], f[2]) for f in second.files] == [
        ("xml_submission_file", "text/xml"),
        ("b.jpg", "image/jpeg"),
        ("c.amr", "audio/amr"),
    ]
    assert first.content_type.startswith("multipart/form-data; boundary=")


def test_submit_sends_an_oversized_file_alone_and_respects_max_bytes(server):
    collect = server.collect()
    files = {"big.bin": b"z" * 500, "small.txt": b"s", "tiny.txt": b"t"}
    responses = collect.submit(b"<d/>", files)
    assert [r.extra["files"] for r in responses] == [["big.bin"], ["small.txt", "tiny.txt"]]
    server.state.posts.clear()
    responses = collect.submit(b"<d/>", files, max_bytes=10_000)
    assert [r.extra["files"] for r in responses] == [["big.bin", "small.txt", "tiny.txt"]]
    assert server.state.posts[0].form == {}


def test_submit_splits_after_101_attachments(server):
    server.state.accept_length = "1000000"
    files = {f"f{i:03d}.txt": b"." for i in range(205)}
    responses = server.collect().submit(SUBMISSION_XML, files)
    assert [len(r.extra["files"]) for r in responses] == [101, 101, 3]
    assert [p.form.get("*isIncomplete*") for p in server.state.posts] == ["yes", "yes", None]
    assert [len(p.files) for p in server.state.posts] == [102, 102, 4]


def test_split_attachments_matches_collects_chunker():
    assert split_attachments(10, [], 100) == [(0, 0, False)]
    assert split_attachments(30, [40, 40, 10], 100) == [(0, 1, True), (1, 3, False)]
    assert split_attachments(10, [200], 100) == [(0, 1, False)]
    assert split_attachments(0, [1] * 102, 10**9) == [(0, 101, True), (101, 102, False)]
    assert split_attachments(0, [1] * 101, 10**9) == [(0, 101, False)]


def test_submit_stops_at_the_first_failure(server):
    server.state.post_statuses = [201, 409]
    files = {"a.jpg": b"a" * 60, "b.jpg": b"b" * 60, "c.jpg": b"c" * 60}
    responses = server.collect().submit(b"<d/>", files)
    assert [r.status for r in responses] == [201, 409]
    assert len(server.state.posts) == 2
    assert responses[1].message == "Something broke."
    assert responses[1].extra["failure_message"] == "Error: Something broke."


def test_head_failures_that_stop_collect(server):
    server.state.head_status = 200
    with pytest.raises(CollectError) as err:
        server.collect().submit(SUBMISSION_XML, {})
    assert err.value.kind == "upload_error"
    assert err.value.message.startswith(
        f"Failed to send to http://localhost/open/projects/1/submission?{DEVICE_QUERY}. "
        "Is this an OpenRosa submission endpoint?"
    )
    assert err.value.message.endswith("HEAD request result status code: 200")
    assert server.state.posts == []

    with pytest.raises(CollectError) as err:
        server.collect("noauth").submit(SUBMISSION_XML, {})
    assert err.value.kind == "auth_required"
    assert err.value.message == "Invalid username or password for server: localhost"


def test_head_404_is_ignored_and_the_default_limit_used(server):
    server.state.head_status = 404
    files = {"a.jpg": b"a" * 500, "b.jpg": b"b" * 500}
    responses = server.collect().submit(SUBMISSION_XML, files)
    assert [r.extra["files"] for r in responses] == [["a.jpg", "b.jpg"]]


def test_head_location_on_same_host_is_used_and_remembered(server):
    server.state.head_location = "http://LOCALHOST/open/projects/1/remapped/submission"
    collect = server.collect()
    collect.submit(SUBMISSION_XML, {"photo.jpg": b"p"})
    collect.submit(SUBMISSION_XML, {"photo.jpg": b"p"})
    requests_seen = [(e.method, e.path, e.query) for e in server.state.log]
    assert requests_seen == [
        ("HEAD", "/open/projects/1/submission", DEVICE_QUERY),
        ("POST", "/open/projects/1/remapped/submission", DEVICE_QUERY),  # query re-added
        ("POST", "/open/projects/1/remapped/submission", DEVICE_QUERY),  # no second HEAD
    ]

    server.state.head_location = "http://evil.test/submission"
    with pytest.raises(CollectError) as err:
        server.collect().submit(SUBMISSION_XML, {})
    assert "Unexpected redirection attempt to a different host" in err.value.message


def test_submit_with_digest_auth(server):
    collect = server.collect("digest")
    responses = collect.submit(SUBMISSION_XML, {"photo.jpg": b"p" * 80, "audit.csv": b"a" * 80})
    assert [r.status for r in responses] == [201, 201]
    methods = [(req.method, resp.status) for req, resp in collect.exchanges]
    assert methods == [("HEAD", 401), ("HEAD", 204), ("POST", 201), ("POST", 201)]
    ncs = [digest_fields(h)["nc"] for h in auth_headers(collect)[1:]]
    assert ncs == ["00000001", "00000002", "00000003"]


def test_non_ascii_file_names_are_sent_as_raw_utf8(server):
    collect = server.collect()
    collect.submit(SUBMISSION_XML, {"ảnh_nhà.jpg": b"img"}, xml_filename="Khảo sát.xml")
    raw = server.state.posts[0].raw
    assert 'name="ảnh_nhà.jpg"; filename="ảnh_nhà.jpg"'.encode() in raw
    assert 'filename="Khảo sát.xml"'.encode() in raw
    # Werkzeug decodes the raw UTF-8 part headers back to the original names
    assert [(f[0], f[1]) for f in server.state.posts[0].files] == [
        ("xml_submission_file", "Khảo sát.xml"),
        ("ảnh_nhà.jpg", "ảnh_nhà.jpg"),
    ]


def test_multipart_body_is_byte_exact_like_okhttp():
    content_type, body = multipart_body(
        [
            Part("xml_submission_file", b"<d/>", "sub.xml", "text/xml"),
            Part('we"ird\r\nname', b"x", "../../etc/passwd", "application/octet-stream"),
            Part("*isIncomplete*", b"yes"),
        ],
        boundary="b0und",
    )
    assert content_type == "multipart/form-data; boundary=b0und"
    assert body == (
        b"--b0und\r\n"
        b'Content-Disposition: form-data; name="xml_submission_file"; filename="sub.xml"\r\n'
        b"Content-Type: text/xml\r\n"
        b"\r\n"
        b"<d/>\r\n"
        b"--b0und\r\n"
        b'Content-Disposition: form-data; name="we%22ird%0D%0Aname"; '
        b'filename="../../etc/passwd"\r\n'
        b"Content-Type: application/octet-stream\r\n"
        b"\r\n"
        b"x\r\n"
        b"--b0und\r\n"
        b'Content-Disposition: form-data; name="*isIncomplete*"\r\n'
        b"\r\n"
        b"yes\r\n"
        b"--b0und--\r\n"
    )
    _, raw = multipart_body(
        [
            Part(b"f", b"1", filename=b"\xff.bin", headers=[(b"X-Extra", b"1")]),
            Part("g", disposition=b"attachment"),
            ("field", "value"),
        ],
        boundary="q",
    )
    assert b'name="f"; filename="\xff.bin"\r\nX-Extra: 1\r\n\r\n1\r\n' in raw
    assert b"Content-Disposition: attachment\r\n\r\n\r\n" in raw
    assert b'name="field"\r\n\r\nvalue\r\n--q--\r\n' in raw


def test_post_raw_reaches_the_submission_endpoint(server):
    collect = server.collect()
    _, body = multipart_body([("a", "1")], boundary="zz")
    response = collect.post_raw(body, "multipart/form-data")  # no boundary parameter
    assert response.status == 201
    assert server.state.log[-1].headers["Content-Type"] == "multipart/form-data"
    assert server.state.log[-1].body == body


# --------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------


def test_content_type_mapping():
    assert collect_content_type("voice.amr") == "audio/amr"
    assert collect_content_type("a.OGA") == "audio/ogg"
    assert collect_content_type("clip.ogv") == "video/ogg"
    assert collect_content_type("clip.webm") == "video/webm"
    assert collect_content_type("photo.jpg") == "image/jpeg"
    assert collect_content_type("submission.xml.enc") == "application/octet-stream"
    assert collect_content_type("README") == "application/octet-stream"


def test_qr_round_trip_and_from_qr():
    settings = {
        "general": {"server_url": "https://h/v1/key/T0k$n/projects/3", "username": "u"},
        "admin": {},
        "project": {"name": "Phường 5"},
    }
    text = encode_qr(settings)
    assert re.fullmatch(r"[A-Za-z0-9+/]+=*", text)
    assert decode_qr(text) == settings
    collect = Collect.from_qr(text, transport=None)
    assert collect.server_url == "https://h/v1/key/T0k$n/projects/3"
    assert collect.username == "u"
    with pytest.raises(ValueError):
        decode_qr("not base64!")


def test_openrosa_message_and_failure_messages():
    assert openrosa_message(OPENROSA_OK.encode()) == "full submission upload was successful!"
    assert openrosa_message(b"<html>OK</html>") is None
    assert openrosa_message(b"<OpenRosaResponse><message>broken") is None
    assert openrosa_message(b"<OpenRosaResponse/>") is None
    from tests.support.collect import Headers
    from tests.support.collect import Response as CResponse

    url = "http://h/submission?deviceID=x"
    plain = CResponse(404, Headers(), b"not here", reason="NOT FOUND")
    assert upload_failure_message(plain, url) == f"Error: NOT FOUND (404) at {url}"
    assert upload_failure_message(CResponse(400, Headers(), b""), url).startswith(
        "Failed to upload. Please make sure"
    )
    assert upload_failure_message(CResponse(200, Headers(), b"ok"), url).endswith(
        "Network login failure? Again?"
    )
    with_msg = CResponse(401, Headers(), OPENROSA_OK.encode(), reason="UNAUTHORIZED")
    assert upload_failure_message(with_msg, url) == f"Error: UNAUTHORIZED (401) at {url}"
    assert upload_failure_message(CResponse(202, Headers(), b""), url) is None


def test_parse_challenges():
    assert parse_challenges(
        ['Basic realm="a, b", Digest realm="r", nonce="n", qop="auth,auth-int", stale=TRUE']
    ) == [
        ("Basic", {"realm": "a, b"}),
        ("Digest", {"realm": "r", "nonce": "n", "qop": "auth,auth-int", "stale": "TRUE"}),
    ]
    assert parse_challenges(["Bearer abc==", 'Newauth realm="x\\"y"', "Negotiate"]) == [
        ("Bearer", {"": "abc=="}),
        ("Newauth", {"realm": 'x"y'}),
        ("Negotiate", {}),
    ]


# --------------------------------------------------------------------------------------
# The same client over real HTTP
# --------------------------------------------------------------------------------------


@pytest.fixture
def live_server():
    app, state = make_app()
    srv = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield SimpleNamespace(url=f"http://127.0.0.1:{srv.server_port}", state=state)
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(timeout=5)


def test_http_transport_against_a_real_server(live_server):
    with HttpTransport() as transport:
        collect = Collect(
            f"{live_server.url}/digest/projects/1",
            transport,
            username="alice",
            password=USERS["alice"],
        )
        forms = collect.form_list()
        assert forms[0]["downloadUrl"] == (
            f"{live_server.url}/digest/projects/1/forms/household_survey.xml"
        )
        assert collect.download_form(forms[0]) == FORM_XML
        trees = collect.manifest(forms[0])[1]
        assert collect.download_media(trees).body == TREES_CSV  # gzip decoded by Collect
        responses = collect.submit(SUBMISSION_XML, {"photo.jpg": b"p" * 80, "audit.csv": b"a"})
        assert [r.status for r in responses] == [201, 201]
        assert [r.message for r in responses] == ["full submission upload was successful!"] * 2

    first = live_server.state.log[0]
    assert first.raw_uri == f"/digest/projects/1/formList?{DEVICE_QUERY}"
    assert "Authorization" not in first.headers
    assert set(first.headers) >= {"User-Agent", "X-Openrosa-Version", "Date", "Accept-Encoding"}
    assert "Cookie" not in first.headers and "Accept" not in first.headers
    assert [p.form.get("*isIncomplete*") for p in live_server.state.posts] == ["yes", None]
