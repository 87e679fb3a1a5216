"""Small factories for tests: a ward with its forms and one user of each role."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from server.domain import accounts
from server.domain import forms as forms_domain
from server.domain.ward import load_ward_config

PASSWORD = "correct horse battery"


@dataclass
class Ward:
    project_id: int
    token: str  # volunteer "vol1" of tdp01
    admin: str = "admin"
    supervisor: str = "sup1"
    volunteer: str = "vol1"
    password: str = PASSWORD


def publish_file(app, path: Path, project_id: int = 1, ward=None):
    session = app.extensions["db"].session(write=True)
    try:
        result = forms_domain.publish_path(session, app.extensions["blobs"], project_id, path,
                                           ward=ward, validate=False)
        session.commit()
        return result
    finally:
        session.close()


def make_ward(app, *, forms: bool = True) -> Ward:
    session = app.extensions["db"].session(write=True)
    try:
        project = accounts.create_project(session, "Phường Bình Thuận")
        accounts.create_user(session, "admin", "admin", project_id=None, password=PASSWORD)
        accounts.create_user(session, "sup1", "supervisor", project_id=project.id,
                             team="tdp01", password=PASSWORD, display_name="Trần Văn Giám")
        vol = accounts.create_user(session, "vol1", "volunteer", project_id=project.id,
                                   team="tdp01", display_name="Hà Thị Thu").user
        token = accounts.collect_token(session, vol, app.config["SECRET_KEY"])
        session.commit()
    finally:
        session.close()
    if forms:
        ward = load_ward_config(Path(app.config["WARD_CONFIG"]))
        for name in ("household_survey.xlsx", "support_visit.xlsx"):
            publish_file(app, Path(app.config["FORMS_DIR"]) / name, project.id, ward)
    return Ward(project_id=project.id, token=token)
