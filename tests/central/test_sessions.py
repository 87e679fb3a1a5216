"""`POST /v1/sessions`, bearer tokens, `GET /v1/users/current`, projects: what pyodk's
client does before anything else, and Central's JSON error bodies."""

from __future__ import annotations

import base64

from server.domain import accounts
from tests.central.conftest import Api, login
from tests.support.factories import PASSWORD


def test_login_gives_a_token_that_reads_the_current_user(app, ward):
    response = app.test_client().post("/v1/sessions",
                                      json={"email": "sup1", "password": PASSWORD})
    body = response.get_json()
    assert response.status_code == 200
    assert len(body["token"]) >= 40 and body["expiresAt"].endswith("Z")
    me = Api(app, body["token"]).get("/v1/users/current")
    assert me.status_code == 200
    assert me.get_json()["email"] == "sup1"
    assert me.get_json()["displayName"] == "Trần Văn Giám"


def test_wrong_password_unknown_user_and_volunteers_get_401_json(app, ward):
    client = app.test_client()
    for email, password in (("sup1", "wrong"), ("nobody", "x"), ("vol1", "")):
        response = client.post("/v1/sessions", json={"email": email, "password": password})
        assert response.status_code == 401
        assert response.get_json()["code"] == 401.2


def test_logins_are_throttled_after_five_failures(app, ward):
    client = app.test_client()
    for _ in range(5):
        client.post("/v1/sessions", json={"email": "sup1", "password": "wrong"})
    response = client.post("/v1/sessions", json={"email": "sup1", "password": PASSWORD})
    assert response.status_code == 429


def test_bad_or_missing_token_and_bad_json_are_refused(app, ward):
    assert Api(app, "not-a-token").get("/v1/users/current").status_code == 401
    assert Api(app, None).get("/v1/projects").get_json()["code"] == 401.2
    bad = app.test_client().post("/v1/sessions", data="{", content_type="application/json")
    assert bad.status_code == 400 and bad.get_json()["code"] == 400.1


def test_revoking_a_user_ends_its_api_sessions_at_once(app, ward):
    api = Api(app, login(app, "sup1"))
    assert api.get("/v1/users/current").status_code == 200
    with app.extensions["db"].session(write=True) as db:
        accounts.revoke(db, accounts.get_user(db, "sup1"))
        db.commit()
    assert api.get("/v1/users/current").status_code == 401


def test_logout_kills_the_token(app, ward):
    token = login(app, "sup1")
    api = Api(app, token)
    assert api.delete(f"/v1/sessions/{token}").get_json() == {"success": True}
    assert api.get("/v1/users/current").status_code == 401


def test_projects_are_limited_to_the_callers_own(app, ward, admin_api, supervisor_api):
    with app.extensions["db"].session(write=True) as db:
        other = accounts.create_project(db, "Phường khác").id
        db.commit()
    assert [p["id"] for p in admin_api.get("/v1/projects").get_json()] == [ward.project_id, other]
    assert [p["id"] for p in supervisor_api.get("/v1/projects").get_json()] == [ward.project_id]
    project = supervisor_api.get(f"/v1/projects/{ward.project_id}").get_json()
    assert project["name"] == "Phường Bình Thuận" and project["createdAt"].endswith("Z")
    missing = supervisor_api.get(f"/v1/projects/{other}")
    assert missing.status_code == 404 and missing.get_json()["code"] == 404.1


def test_a_bearer_token_reads_the_form_xml_at_the_openrosa_url(app, ward, supervisor_api):
    response = supervisor_api.get(f"/v1/projects/{ward.project_id}/forms/household_survey.xml")
    assert response.status_code == 200
    assert b"<h:html" in response.data


def _basic(username: str, password: str) -> dict:
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def test_basic_auth_reads_the_odata_feed_over_https_only(app, ward):
    """Excel and Power BI log in to an OData feed with the username and password (Basic)."""
    client = app.test_client()
    url = f"/v1/projects/{ward.project_id}/forms/household_survey.svc"
    over_https = client.get(url, headers=_basic("sup1", PASSWORD),
                            base_url="https://localhost")
    assert over_https.status_code == 200 and over_https.get_json()["value"]
    over_http = client.get(url, headers=_basic("sup1", PASSWORD))
    assert over_http.status_code == 401  # a password never travels in clear
    challenge = client.get(url, base_url="https://localhost").headers.get_all("WWW-Authenticate")
    assert any(c.startswith("Basic") for c in challenge)


def test_basic_auth_failures_are_throttled(app, ward):
    client = app.test_client()
    url = "/v1/users/current"
    for _ in range(5):
        assert client.get(url, headers=_basic("sup1", "wrong"),
                          base_url="https://localhost").status_code == 401
    refused = client.get(url, headers=_basic("sup1", PASSWORD), base_url="https://localhost")
    assert refused.status_code == 429 and refused.get_json()["code"] == 429.1
