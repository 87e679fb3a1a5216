"""Fixtures for the Central-compatible API: a logged-in bearer client per role."""

from __future__ import annotations

import pytest

from tests.support.factories import PASSWORD


class Api:
    """A JSON client with a bearer token, over the Flask test client."""

    def __init__(self, app, token: str | None):
        self.client = app.test_client()
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    def __getattr__(self, method):
        def call(path, **kwargs):
            headers = {**self.headers, **kwargs.pop("headers", {})}
            return getattr(self.client, method)(path, headers=headers, **kwargs)
        return call


def login(app, username: str, password: str = PASSWORD) -> str:
    response = app.test_client().post("/v1/sessions",
                                      json={"email": username, "password": password})
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()["token"]


@pytest.fixture
def admin_api(app, ward):
    return Api(app, login(app, "admin"))


@pytest.fixture
def supervisor_api(app, ward):
    return Api(app, login(app, "sup1"))
