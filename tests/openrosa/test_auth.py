"""Who may talk to the OpenRosa API, and how Collect authenticates (openrosa.md §5)."""

from __future__ import annotations

import base64
import time

from sqlalchemy import select

from server.db.models import AuditEntry
from server.domain import accounts
from server.openrosa import auth
from tests.support.collect import Collect, FlaskTransport, decode_qr
from tests.support.factories import PASSWORD


def challenges(response) -> list[str]:
    return response.headers.get_all("WWW-Authenticate")


def test_no_credentials_over_http_gets_a_digest_challenge(app, ward):
    c = Collect("http://localhost/v1/projects/1", FlaskTransport(app))
    response = c.get(c.form_list_url)
    assert response.status == 401
    offered = challenges(response)
    assert len(offered) == 1 and offered[0].startswith("Digest ")
    assert 'qop="auth"' in offered[0] and "nonce=" in offered[0]
    assert response.message  # an OpenRosaResponse explains it


def test_https_offers_digest_and_basic(app, ward):
    c = Collect("https://localhost/v1/projects/1", FlaskTransport(app))
    offered = challenges(c.get(c.form_list_url))
    assert sorted(ch.split()[0] for ch in offered) == ["Basic", "Digest"]


def test_digest_with_right_and_wrong_password(app, ward, supervisor_collect):
    assert [f["formID"] for f in supervisor_collect.form_list()]
    assert supervisor_collect.last_response.status == 200
    wrong = Collect("http://localhost/v1/projects/1", FlaskTransport(app),
                    username="sup1", password="wrong password")
    response = wrong.get(wrong.form_list_url)
    assert response.status == 401 and challenges(response)


def test_digest_submission_and_preauthenticated_requests(app, ward, supervisor_collect):
    supervisor_collect.form_list()
    status, _ = supervisor_collect.head_submission()
    assert status == 204
    # after the first success, Collect sends credentials up front
    assert supervisor_collect.exchanges[-1][0].headers.get("Authorization")


def test_stale_nonce_is_renewed_without_prompting(app, ward, supervisor_collect, monkeypatch):
    supervisor_collect.form_list()
    real_time = time.time
    monkeypatch.setattr(auth.time, "time", lambda: real_time() + auth.NONCE_LIFETIME_S + 5)
    forms = supervisor_collect.form_list()
    assert forms and supervisor_collect.last_response.status == 200
    stale = [r for _, r in supervisor_collect.exchanges if r.status == 401]
    assert any("stale" in h.lower() for r in stale for h in challenges(r))


def test_vietnamese_password_over_digest_and_basic(app, ward):
    session = app.extensions["db"].session(write=True)
    accounts.create_user(session, "linh", "supervisor", project_id=1, password="mật khẩu dài!")
    session.commit()
    session.close()
    digest = Collect("http://localhost/v1/projects/1", FlaskTransport(app),
                     username="linh", password="mật khẩu dài!")
    assert digest.form_list() is not None  # the challenge says charset=UTF-8
    utf8 = base64.b64encode("linh:mật khẩu dài!".encode()).decode()
    client = app.test_client()
    r = client.get("/v1/projects/1/formList", base_url="https://localhost",
                   headers={"Authorization": f"Basic {utf8}"})
    assert r.status_code == 200
    r = client.get("/v1/projects/1/formList", base_url="http://localhost",
                   headers={"Authorization": f"Basic {utf8}"})
    assert r.status_code == 401  # never Basic over plain http
    assert r.headers.getlist("WWW-Authenticate")


def test_basic_latin1_password(app, ward):
    session = app.extensions["db"].session(write=True)
    accounts.create_user(session, "hoa", "supervisor", project_id=1, password="café crème 2026")
    session.commit()
    session.close()
    value = base64.b64encode("hoa:café crème 2026".encode("latin-1")).decode()
    r = app.test_client().get("/v1/projects/1/formList", base_url="https://localhost",
                              headers={"Authorization": f"Basic {value}"})
    assert r.status_code == 200


def test_revoked_token_gets_403_not_401(app, ward, collect):
    assert collect.form_list()
    session = app.extensions["db"].session(write=True)
    accounts.revoke(session, accounts.get_user(session, "vol1"))
    session.commit()
    session.close()
    for response in (collect.get(collect.form_list_url),
                     collect.request("POST", collect.submission_url, body=b"")):
        assert response.status == 403
        assert not challenges(response)
        assert response.message


def test_unknown_token_is_403(app, ward):
    c = Collect("http://localhost/v1/key/not-a-token/projects/1", FlaskTransport(app))
    assert c.get(c.form_list_url).status == 403


def test_users_are_confined_to_their_project(app, ward):
    session = app.extensions["db"].session(write=True)
    other = accounts.create_project(session, "Phường khác")
    vol2 = accounts.create_user(session, "vol2", "volunteer", project_id=other.id).user
    token2 = accounts.collect_token(session, vol2, app.config["SECRET_KEY"])
    session.commit()
    session.close()
    transport = FlaskTransport(app)
    assert Collect(f"http://localhost/v1/key/{token2}/projects/1", transport).get(
        f"http://localhost/v1/key/{token2}/projects/1/formList").status == 403
    sup = Collect(f"http://localhost/v1/projects/{other.id}", transport,
                  username="sup1", password=PASSWORD)
    assert sup.get(sup.form_list_url).status == 403
    admin = Collect(f"http://localhost/v1/projects/{other.id}", transport,
                    username="admin", password=PASSWORD)
    assert admin.get(admin.form_list_url).status == 200
    missing = Collect("http://localhost/v1/projects/99", transport,
                      username="admin", password=PASSWORD)
    assert missing.get(missing.form_list_url).status == 404


def test_qr_flow_keeps_the_token_prefix(app, ward):
    from server.cli import collect_settings, qr_text

    url = f"https://ward.example/v1/key/{ward.token}/projects/1"
    settings = decode_qr(qr_text(collect_settings(url, "Phường Bình Thuận", "vol1")))
    assert settings["general"]["server_url"] == url and settings["admin"] == {}
    assert isinstance(settings["general"]["delete_send"], bool)
    c = Collect(settings["general"]["server_url"],
                FlaskTransport(app, base_url="https://ward.example"))
    forms = c.form_list()
    for entry in forms:
        assert entry["downloadUrl"].startswith(url + "/")
        assert entry["manifestUrl"].startswith(url + "/")
        for media in c.manifest(entry):
            assert media["downloadUrl"].startswith(url + "/")
    assert c.head_submission()[0] == 204


def test_digest_can_be_turned_off(make_app):
    from tests.support.factories import make_ward

    app = make_app(DIGEST_AUTH=0)
    make_ward(app, forms=False)
    c = Collect("http://localhost/v1/projects/1", FlaskTransport(app),
                username="sup1", password=PASSWORD)
    response = c.get(c.form_list_url)
    assert response.status == 401
    assert [h.split()[0] for h in challenges(response)] == ["Basic"]


def test_wrong_passwords_lock_the_username_and_address_out(app, ward):
    """Digest is a password check like the login page: five wrong passwords for a username from
    one address refuse it for 15 minutes, the right password included; another address and
    another account are not affected, and every failure is in the audit log."""
    def collect(password, addr="10.9.0.1", username="sup1"):
        return Collect("http://localhost/v1/projects/1",
                       FlaskTransport(app, environ={"REMOTE_ADDR": addr}),
                       username=username, password=password)

    for _ in range(5):
        wrong = collect("wrong password")
        assert wrong.get(wrong.form_list_url).status == 401
    right = collect(PASSWORD)
    refused = right.get(right.form_list_url)
    assert refused.status == 429 and "15" in refused.message
    elsewhere = collect(PASSWORD, addr="10.9.0.2")
    assert elsewhere.get(elsewhere.form_list_url).status == 200
    with app.extensions["db"].session() as db:
        actions = list(db.scalars(select(AuditEntry.action)))
    assert actions.count("openrosa.login_failed") == 5


def test_a_stale_nonce_is_not_a_failed_attempt(app, ward, supervisor_collect, monkeypatch):
    assert supervisor_collect.form_list()
    real_time = time.time
    monkeypatch.setattr(auth.time, "time", lambda: real_time() + auth.NONCE_LIFETIME_S + 5)
    for _ in range(6):
        assert supervisor_collect.form_list()  # renewed each time without a prompt
    with app.extensions["db"].session() as db:
        assert not accounts.login_throttled(db, "sup1", "127.0.0.1")
