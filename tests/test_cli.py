"""`python -m server …` as an operator uses it."""

from __future__ import annotations

import base64
import json
import shutil
import zlib
from io import BytesIO

import openpyxl

from tests.conftest import FORMS_DIR


def test_init_publishes_forms_and_creates_admin_once(cli, monkeypatch):
    if shutil.which("java"):
        monkeypatch.setenv("SERVER_VALIDATE_FORMS", "1")  # ODK Validate checks both forms
    first = cli("init")
    assert first.exit_code == 0, first.output
    assert "household_survey 2026011501" in first.output
    assert "support_visit 2026011501" in first.output
    assert "created user admin with password: " in first.output
    again = cli("init")
    assert again.exit_code == 0
    assert "household_survey 2026011501 (unchanged)" in again.output
    assert "password" not in again.output


def _xlsx(rows_by_sheet: dict[str, list[list[str]]]) -> bytes:
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for name, rows in rows_by_sheet.items():
        ws = wb.create_sheet(name)
        for row in rows:
            ws.append(row)
    out = BytesIO()
    wb.save(out)
    return out.getvalue()


def test_broken_form_prints_pyxform_row_and_exits_1(cli, tmp_path):
    cli("init")
    broken = tmp_path / "broken.xlsx"
    broken.write_bytes(_xlsx({
        "survey": [["type", "name", "label"], ["text", "a", "A"], ["select_one nolist", "b", "B"]],
        "choices": [["list_name", "name", "label"], ["yes_no", "yes", "Yes"]],
        "settings": [["form_id", "version"], ["broken", "1"]],
    }))
    result = cli("forms", "publish", str(broken))
    assert result.exit_code == 1
    assert "broken.xlsx" in result.output and "row" in result.output.lower()
    assert "nolist" in result.output


def test_same_version_with_other_content_is_refused(cli, tmp_path):
    cli("init")
    form = tmp_path / "simple.xlsx"
    sheets = {"survey": [["type", "name", "label"], ["text", "a", "A"]],
              "settings": [["form_id", "version"], ["simple", "1"]]}
    form.write_bytes(_xlsx(sheets))
    assert cli("forms", "publish", str(form)).output.strip() == "simple 1"
    sheets["survey"].append(["text", "b", "B"])
    form.write_bytes(_xlsx(sheets))
    result = cli("forms", "publish", str(form))
    assert result.exit_code == 1
    assert "already published with different content" in result.output
    sheets["settings"][1][1] = "2"
    form.write_bytes(_xlsx(sheets))
    assert cli("forms", "publish", str(form)).output.strip() == "simple 2"


def test_collect_url_qr_and_revoke(cli):
    cli("init")
    assert cli("user", "add", "thu", "--role", "volunteer", "--team", "tdp03",
               "--display-name", "Hà Thị Thu").exit_code == 0
    url = cli("user", "collect-url", "thu", "--base-url", "http://ward.example").output.strip()
    assert url.startswith("http://ward.example/v1/key/") and url.endswith("/projects/1")
    token = url.split("/v1/key/")[1].split("/")[0]
    assert len(token) >= 43  # 256 random bits
    # The same token every time: printing it again must not cut off the phone.
    again = cli("user", "collect-url", "thu", "--base-url", "http://ward.example")
    assert again.output.strip() == url

    qr = cli("user", "qr", "thu", "--base-url", "http://ward.example").output.strip()
    settings = json.loads(zlib.decompress(base64.b64decode(qr)))
    assert settings["general"]["server_url"] == url
    assert settings["admin"] == {}

    client = cli.app.test_client()
    path = url.removeprefix("http://ward.example")
    assert client.get(f"{path}/formList").status_code == 200
    assert cli("user", "revoke", "thu").exit_code == 0
    assert client.get(f"{path}/formList").status_code == 403
    assert client.post(f"{path}/submission").status_code == 403
    new_url = cli("user", "collect-url", "thu", "--base-url", "http://ward.example").output
    assert new_url.strip() != url


def test_errors_are_one_line_on_stderr(cli):
    cli("init")
    result = cli("user", "collect-url", "nobody")
    assert result.exit_code != 0
    assert result.output.strip() == "error: user 'nobody' does not exist"


def test_forms_dir_has_the_two_forms():
    assert {p.name for p in FORMS_DIR.glob("*.xlsx")} == {
        "household_survey.xlsx", "support_visit.xlsx"}


def test_media_folder_is_published_with_the_form(cli, tmp_path):
    cli("init")
    form = tmp_path / "logo_form.xlsx"
    form.write_bytes(_xlsx({
        "survey": [["type", "name", "label", "media::image"], ["note", "n", "Logo", "logo.png"]],
        "settings": [["form_id", "version"], ["logo_form", "1"]],
    }))
    (tmp_path / "logo_form-media").mkdir()
    (tmp_path / "logo_form-media" / "logo.png").write_bytes(b"png bytes")
    result = cli("forms", "publish", str(form))
    assert result.exit_code == 0 and "logo_form 1" in result.output
    from tests.support.collect import Collect, FlaskTransport

    cli("user", "add", "v", "--role", "volunteer")
    url = cli("user", "collect-url", "v", "--base-url", "http://localhost").output.strip()
    collect = Collect(url, FlaskTransport(cli.app))
    entry = next(f for f in collect.form_list() if f["formID"] == "logo_form")
    [media] = collect.manifest(entry)
    assert media["filename"] == "logo.png"
    assert collect.download_media(media).body == b"png bytes"


def test_forms_state_command(cli):
    cli("init")
    assert cli("forms", "state", "support_visit", "closing").output.strip() == (
        "support_visit closing")
    result = cli("forms", "state", "nope", "closed")
    assert result.exit_code == 1 and "does not exist" in result.output


def test_backup_is_a_working_copy(cli, tmp_path):
    import sqlite3

    from tests.support.collect import Collect, FlaskTransport
    from tests.support.instances import build

    cli("init")
    cli("user", "add", "v", "--role", "volunteer")
    url = cli("user", "collect-url", "v", "--base-url", "http://localhost").output.strip()
    collect = Collect(url, FlaskTransport(cli.app))
    entry = next(f for f in collect.form_list() if f["formID"] == "household_survey")
    xml = build(collect.download_form(entry), {"g_end/house_photo": "h.jpg"})
    assert collect.submit(xml, {"h.jpg": b"photo bytes"})[0].status == 201
    dest = tmp_path / "backup"
    result = cli("backup", str(dest))
    if cli.app.config["DATABASE_URL"].startswith("postgresql"):
        if shutil.which("pg_dump") is None:
            assert result.exit_code == 1 and "pg_dump" in result.output
        else:
            assert result.exit_code == 0, result.output
            assert (dest / "database.dump").stat().st_size > 0
            assert (dest / "blobs").is_dir()
        return
    assert result.exit_code == 0, result.output
    copy = sqlite3.connect(dest / "server.db")
    assert copy.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    [(sha,)] = copy.execute("SELECT blob_sha256 FROM attachments").fetchall()
    copy.close()
    assert (dest / "blobs" / sha[:2] / sha).read_bytes() == b"photo bytes"
    again = cli("backup", str(dest))
    assert again.exit_code == 1 and "not empty" in again.output
