"""pyodk, ODK's own Python client for Central, against the live server, unchanged: log in,
list projects and forms, create and publish a form, submit and edit, review, read the OData
table, and create, update, delete and merge entities — all through its public methods."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path

import pytest
from openpyxl import Workbook
from werkzeug.serving import make_server

from tests.support.factories import PASSWORD

pyodk_client = pytest.importorskip("pyodk.client")
from pyodk._utils.config import CentralConfig, Config  # noqa: E402
from pyodk.errors import PyODKError  # noqa: E402


@pytest.fixture
def live_url(app, ward):
    """The app on a loopback port, in a thread of this process (pyodk speaks plain HTTP)."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)


def client(live_url: str, tmp_path: Path, username: str, project_id: int):
    config = Config(central=CentralConfig(base_url=live_url, username=username,
                                          password=PASSWORD, default_project_id=project_id))
    return pyodk_client.Client(config=config, cache_path=str(tmp_path / f"{username}.toml"))


def xlsform(path: Path, version: str, extra_question: bool = False) -> Path:
    """A small XLSForm: a name, an age, optionally a photo."""
    wb = Workbook()
    survey = wb.active
    survey.title = "survey"
    survey.append(["type", "name", "label"])
    survey.append(["text", "name", "Name"])
    survey.append(["integer", "age", "Age"])
    if extra_question:
        survey.append(["image", "photo", "Photo"])
    settings = wb.create_sheet("settings")
    settings.append(["form_id", "version", "form_title"])
    settings.append(["pyodk_trial", version, "Trial"])
    wb.save(path)
    return path


def submission_xml(instance_id: str, name: str, age: int, version: str,
                   deprecated: str | None = None, photo: str | None = None) -> str:
    meta = f"<instanceID>{instance_id}</instanceID>"
    if deprecated:
        meta = f"<deprecatedID>{deprecated}</deprecatedID>" + meta
    photo_xml = f"<photo>{photo}</photo>" if photo is not None else ""
    return (f'<data id="pyodk_trial" version="{version}"><name>{name}</name><age>{age}</age>'
            f"{photo_xml}<meta>{meta}</meta></data>")


def test_pyodk_logs_in_and_lists_projects_and_forms(live_url, tmp_path, ward):
    with client(live_url, tmp_path, "sup1", ward.project_id) as c:
        assert [p.id for p in c.projects.list()] == [ward.project_id]
        forms = {f.xmlFormId: f for f in c.forms.list()}
        assert {"household_survey", "support_visit"} <= set(forms)
        assert forms["household_survey"].state == "open"
        assert "<h:html" in c.forms.get_xml("household_survey")
    # The cached token is checked with users/current and reused by the next client.
    with client(live_url, tmp_path, "sup1", ward.project_id) as again:
        assert again.projects.get().id == ward.project_id


def test_wrong_password_is_a_pyodk_error(live_url, tmp_path, ward):
    config = Config(central=CentralConfig(base_url=live_url, username="sup1",
                                          password="wrong", default_project_id=1))
    with pytest.raises(PyODKError):
        with pyodk_client.Client(config=config, cache_path=str(tmp_path / "x.toml")) as c:
            c.projects.list()


def test_form_create_publish_submit_edit_review_and_odata(live_url, tmp_path, ward):
    with client(live_url, tmp_path, "admin", ward.project_id) as c:
        form = c.forms.create(xlsform(tmp_path / "trial.xlsx", "1"))
        assert form.xmlFormId == "pyodk_trial"
        assert c.forms.get("pyodk_trial").publishedAt is not None

        first = f"uuid:{uuid.uuid4()}"
        created = c.submissions.create(submission_xml(first, "Lan", 30, "1"),
                                       form_id="pyodk_trial", device_id="pyodk-test")
        assert created.instanceId == first
        assert [s.instanceId for s in c.submissions.list(form_id="pyodk_trial")] == [first]

        second = f"uuid:{uuid.uuid4()}"
        c.submissions.edit(first, submission_xml(second, "Lan", 31, "1", deprecated=first),
                           form_id="pyodk_trial", comment="Sửa tuổi")
        c.submissions.review(first, "approved", form_id="pyodk_trial", comment="Đã kiểm tra")
        comments = [x.body for x in c.submissions.list_comments(first, form_id="pyodk_trial")]
        assert "Sửa tuổi" in comments and "Đã kiểm tra" in comments
        assert c.submissions.get(first, form_id="pyodk_trial").reviewState == "approved"

        table = c.submissions.get_table(form_id="pyodk_trial", count=True)
        assert table["@odata.count"] == 1
        row = table["value"][0]
        assert row["__id"] == first and row["age"] == 31 and row["name"] == "Lan"
        assert row["__system"]["reviewState"] == "approved"

        # A new version with a photo question: update, then a submission with its file.
        c.forms.update("pyodk_trial", definition=xlsform(tmp_path / "trial2.xlsx", "2", True))
        assert c.forms.get("pyodk_trial").version == "2"
        photo = tmp_path / "house.jpg"
        photo.write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 2048)
        third = f"uuid:{uuid.uuid4()}"
        c.submissions.create(submission_xml(third, "Hoa", 40, "2", photo="house.jpg"),
                             form_id="pyodk_trial", attachments=[str(photo)])
        filtered = c.submissions.get_table(form_id="pyodk_trial",
                                           filter="__system/reviewState eq 'approved'")
        assert [r["__id"] for r in filtered["value"]] == [first]


def test_supervisor_cannot_create_forms(live_url, tmp_path, ward):
    with client(live_url, tmp_path, "sup1", ward.project_id) as c:
        with pytest.raises(PyODKError) as err:
            c.forms.create(xlsform(tmp_path / "trial.xlsx", "1"))
        assert err.value.is_central_error(403.1)


def test_entity_lists_create_update_delete_and_merge(live_url, tmp_path, ward):
    with client(live_url, tmp_path, "admin", ward.project_id) as c:
        c.entity_lists.create(entity_list_name="trees")
        c.entity_lists.default_entity_list_name = "trees"
        result = c.entities.merge(
            [{"label": "Cây đa", "species": "đa", "height": "12"},
             {"label": "Cây bàng", "species": "bàng", "height": "7"}],
            entity_list_name="trees", match_keys=["label"])
        assert len(result.to_insert) == 2
        listed = {e.currentVersion.label: e for e in c.entities.list(entity_list_name="trees")}
        assert set(listed) == {"Cây đa", "Cây bàng"}

        banyan = listed["Cây đa"]
        updated = c.entities.update(banyan.uuid, entity_list_name="trees",
                                    data={"height": "13"}, base_version=1)
        assert updated.currentVersion.version == 2
        with pytest.raises(PyODKError):  # a stale base version changes nothing
            c.entities.update(banyan.uuid, entity_list_name="trees", data={"height": "1"},
                              base_version=1)

        # merge again: one changed, one new, the one missing deleted
        result = c.entities.merge(
            [{"label": "Cây đa", "species": "đa", "height": "14"},
             {"label": "Cây phượng", "species": "phượng", "height": "5"}],
            entity_list_name="trees", match_keys=["label"], delete_not_matched=True)
        assert len(result.to_insert) == 1 and len(result.to_update) == 1
        assert len(result.to_delete) == 1
        table = c.entities.get_table(entity_list_name="trees")
        rows = {r["label"]: r for r in table["value"]}
        assert set(rows) == {"Cây đa", "Cây phượng"}
        assert rows["Cây đa"]["height"] == "14" and rows["Cây đa"]["__system"]["version"] == 3
        assert c.entities.delete(rows["Cây phượng"]["__id"], entity_list_name="trees")


def test_app_users_get_collect_tokens_and_form_assignments(live_url, tmp_path, ward):
    with client(live_url, tmp_path, "admin", ward.project_id) as c:
        users = list(c.projects.create_app_users(["Máy tổ 3"], forms=["support_visit"]))
        assert len(users) == 1 and users[0].token
        assert users[0].displayName == "Máy tổ 3"
