"""Operating the server: structured request logs, bad configuration, graceful shutdown."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from urllib.parse import urlsplit

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, select

from server.cli import main
from server.db.models import Submission
from tests.support import instances
from tests.support.collect import Collect, HttpTransport, Part, multipart_body
from tests.support.factories import PASSWORD
from tests.support.served import REPO, fresh_postgres_database, served

PG_URL = os.environ.get("TEST_DATABASE_URL")

# ------------------------------------------------------------------------------------------
# Request logs
# ------------------------------------------------------------------------------------------


def _log_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith('{"ts"')]


def test_each_request_is_one_json_line_without_tokens_passwords_or_queries(app, ward, capsys):
    client = app.test_client()
    capsys.readouterr()
    r = client.get(f"/v1/key/{ward.token}/projects/{ward.project_id}/formList")
    assert r.status_code == 200
    r.close()  # the line is written once the response has been sent
    page = client.get("/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    page.close()
    r = client.post("/login", data={"username": "sup1", "password": PASSWORD,
                                    "csrf_token": csrf})
    assert r.status_code == 302
    r.close()
    r = client.get("/households?q=Nguy%E1%BB%85n+V%C4%83n+H%C3%B9ng")
    assert r.status_code == 200
    r.close()
    r = client.get(f"/v1/key/{ward.token}-wrong/projects/{ward.project_id}/formList")
    assert r.status_code == 403
    r.close()

    err = capsys.readouterr().err
    lines = _log_lines(err)
    assert [(x["method"], x["path"], x["status"]) for x in lines] == [
        ("GET", f"/v1/key/***/projects/{ward.project_id}/formList", 200),
        ("GET", "/login", 200),
        ("POST", "/login", 302),
        ("GET", "/households", 200),
        ("GET", f"/v1/key/***/projects/{ward.project_id}/formList", 403),
    ]
    assert set(lines[0]) == {"ts", "method", "path", "status", "duration_ms", "user",
                             "bytes_in", "pid"}
    volunteer, supervisor = lines[0]["user"], lines[3]["user"]
    assert isinstance(volunteer, int) and isinstance(supervisor, int)
    assert volunteer != supervisor
    assert lines[1]["user"] is None and lines[4]["user"] is None  # nobody authenticated
    assert lines[2]["bytes_in"] > 0 and all(x["duration_ms"] >= 0 for x in lines)
    for secret in (ward.token, PASSWORD, "Nguy", "sup1", csrf):
        assert secret not in err


# ------------------------------------------------------------------------------------------
# Bad configuration: one line on stderr, exit 1, nothing written
# ------------------------------------------------------------------------------------------

BAD = [
    ({"SERVER_BLOB_STORE": "s3"}, "SERVER_BLOB_STORE must be 'files' or 'database'"),
    ({"SERVER_TIMEZONE": "Asia/Hanoi_City"}, "SERVER_TIMEZONE 'Asia/Hanoi_City' is not a time"),
    ({"SERVER_MAX_SUBMISSION_BYTES": "100MB"}, "SERVER_MAX_SUBMISSION_BYTES must be a whole"),
    ({"SERVER_MAX_SUBMISSION_BYTES": "-5"}, "SERVER_MAX_SUBMISSION_BYTES must be at least 1"),
    ({"SERVER_TRUST_PROXY": "yes"}, "SERVER_TRUST_PROXY must be a whole number"),
    ({"SERVER_DIGEST_AUTH": "2"}, "SERVER_DIGEST_AUTH must be 0 or 1"),
    ({"SERVER_BASE_URL": "odk.phuong.vn"}, "SERVER_BASE_URL must start with http"),
    ({"SERVER_DATABASE_URL": "mysql://root:hunter2@db/odk"},
     "SERVER_DATABASE_URL must be sqlite:///PATH or postgresql+psycopg://"),
    ({"SERVER_DATABASE_URL": "postgresql+psycopg://odk:hunter2@127.0.0.1:9/odk"},
     "the database is unreachable (postgresql+psycopg://odk:***@127.0.0.1:9/odk)"),
]


@pytest.fixture
def operator_env(tmp_path, monkeypatch):
    """An operator's shell: no SERVER_* but a data dir. `serve` must never get as far as
    replacing this process with gunicorn."""

    def no_exec(*args):
        raise AssertionError(f"serve went on to exec {args}")

    monkeypatch.setattr(os, "execv", no_exec)
    for key in list(os.environ):
        if key.startswith("SERVER_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("SERVER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SERVER_VALIDATE_FORMS", "0")
    return tmp_path / "data"


@pytest.mark.parametrize(("env", "message"), BAD, ids=[next(iter(e)) + "=" + next(
    iter(e.values()))[:12] for e, _ in BAD])
@pytest.mark.parametrize("command", ["init", "serve"])
def test_bad_configuration_is_one_clear_line_and_a_failure(operator_env, monkeypatch, env,
                                                           message, command):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    result = CliRunner().invoke(main, [command, "--port", "1"] if command == "serve"
                                else [command])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ")
    assert message in result.stderr
    assert "hunter2" not in result.stderr and "Traceback" not in result.stderr
    assert not (operator_env / "server.db").exists()  # nothing was set up half-way


def test_unwritable_data_dir_is_refused(operator_env, monkeypatch, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("SERVER_DATA_DIR", str(blocker / "data"))
    result = CliRunner().invoke(main, ["init"])
    assert result.exit_code == 1
    assert result.stderr == (f"error: configuration: SERVER_DATA_DIR {blocker / 'data'} is not "
                             "a writable folder (Not a directory)\n")
    if os.geteuid() != 0:  # root writes anywhere: only a real user can be refused a folder
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        monkeypatch.setenv("SERVER_DATA_DIR", str(locked))
        result = CliRunner().invoke(main, ["init"])
        assert result.exit_code == 1 and "is not a writable folder" in result.stderr


def test_serve_before_init_says_so(operator_env):
    result = CliRunner().invoke(main, ["serve", "--port", "1"])
    assert result.exit_code == 1
    assert result.stderr == "error: the database has no schema yet: run `python -m server init`\n"


def test_the_real_command_exits_non_zero_with_one_line(operator_env):
    env = {**os.environ, "SERVER_TIMEZONE": "UTC+7"}
    done = subprocess.run([sys.executable, "-m", "server", "serve"], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr == ("error: configuration: SERVER_TIMEZONE 'UTC+7' is not a time zone "
                           "(for example Asia/Ho_Chi_Minh)\n")


# ------------------------------------------------------------------------------------------
# Graceful shutdown: SIGTERM lets an upload in flight finish
# ------------------------------------------------------------------------------------------


def _read_head(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def test_sigterm_during_a_slow_upload_finishes_it_then_stops(tmp_path):
    database = (fresh_postgres_database(PG_URL, prefix="graceful") if PG_URL
                else contextlib.nullcontext(None))
    with database as url, served(tmp_path / "data", url, workers=1) as server:
        url = server.add_volunteer("thu")
        token = url.split("/v1/key/")[1].split("/")[0]
        with HttpTransport() as transport:
            collect = Collect(url, transport)
            entry = next(f for f in collect.form_list() if f["formID"] == "household_survey")
            xform = collect.download_form(entry)
        instance_id = f"uuid:{uuid.uuid4()}"
        xml = instances.build(xform, {"g_intro/tdp": "tdp01", "g_end/house_photo": "house.jpg"},
                              instance_id=instance_id)
        photo = b"\xff\xd8\xff\xe0" + os.urandom(400_000)
        content_type, body = multipart_body([
            Part("xml_submission_file", xml, "submission.xml", "text/xml"),
            Part("house.jpg", photo, "house.jpg", "image/jpeg")])
        path = urlsplit(url).path + "/submission"
        with socket.create_connection((server.host, server.port), timeout=30) as sock:
            sock.sendall((f"POST {path} HTTP/1.1\r\nHost: {server.host}:{server.port}\r\n"
                          f"X-OpenRosa-Version: 1.0\r\nContent-Type: {content_type}\r\n"
                          f"Content-Length: {len(body)}\r\nExpect: 100-continue\r\n"
                          "Connection: close\r\n\r\n").encode())
            # a worker has taken the request once it answers 100 Continue
            assert _read_head(sock).startswith(b"HTTP/1.1 100 Continue")
            os.killpg(server.proc.pid, signal.SIGTERM)  # what `systemctl stop` does
            step = len(body) // 10 + 1
            for i in range(0, len(body), step):  # a phone on a slow network
                sock.sendall(body[i:i + step])
                time.sleep(0.1)
            response = b""
            while chunk := sock.recv(65536):
                response += chunk
        assert response.startswith(b"HTTP/1.1 201"), response[:300]
        assert server.proc.wait(timeout=40) == 0  # then it stopped by itself
        log = server.log_path.read_text()
        engine = create_engine(server.database_url)
        try:
            with engine.connect() as conn:
                stored = conn.scalars(select(Submission.instance_id)).all()
        finally:
            engine.dispose()
    assert stored == [instance_id]
    posts = [x for x in _log_lines(log) if x["method"] == "POST"]
    assert [(x["path"], x["status"]) for x in posts] == [("/v1/key/***/projects/1/submission",
                                                          201)]
    # timed from the request's start to its answer: the 0.9 s of pauses between chunks
    assert posts[0]["bytes_in"] == len(body) and posts[0]["duration_ms"] >= 900
    assert token not in log
