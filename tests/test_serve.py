"""The served product end to end: init, gunicorn, and a Collect-like client over real HTTP."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid

import pytest
import requests

from tests.support import instances
from tests.support.collect import Collect, HttpTransport
from tests.support.served import free_port

PHOTO = b"\xff\xd8\xff\xe0" + os.urandom(300_000)


@pytest.fixture
def served(make_app, tmp_path):
    app = make_app()  # prepares an empty database (SQLite file or the PostgreSQL test database)
    env = {**os.environ, "SERVER_DATA_DIR": app.config["DATA_DIR"],
           "SERVER_DATABASE_URL": app.config["DATABASE_URL"], "SERVER_VALIDATE_FORMS": "0",
           "SERVER_ADMIN_PASSWORD": "admin password 1", "HOME": str(tmp_path / "home")}
    (tmp_path / "home").mkdir()
    app.extensions["db"].dispose()

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "server", *args], env=env, check=True,
                              capture_output=True, text=True, timeout=120).stdout

    cli("init")
    cli("user", "add", "thu", "--role", "volunteer", "--team", "tdp01")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    url = cli("user", "collect-url", "thu", "--base-url", base).strip()
    server = subprocess.Popen([sys.executable, "-m", "server", "serve", "--port", str(port),
                               "--workers", "2"], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE)
    try:
        for _ in range(300):  # workers may take a few seconds to boot on a busy machine
            try:
                if requests.get(f"{base}/healthz", timeout=5).json() == {"status": "ok"}:
                    break
            except requests.RequestException:
                time.sleep(0.2)
        else:
            pytest.fail("server did not start: " + server.stderr.read1().decode())
        yield url
        # gunicorn's control socket (~/.gunicorn/gunicorn.ctl, able to stop or reload the
        # server) stays off: nothing the product uses, and shared by every server on a host
        assert not (tmp_path / "home" / ".gunicorn").exists()
    finally:
        server.terminate()
        server.wait(timeout=30)
        server.stderr.close()


def test_collect_lists_downloads_and_submits_over_http(served):
    with HttpTransport() as transport:
        collect = Collect(served, transport)
        forms = {f["formID"]: f for f in collect.form_list()}
        assert set(forms) == {"household_survey", "support_visit"}
        xforms = {fid: collect.download_form(entry) for fid, entry in forms.items()}
        for entry in forms.values():
            for media in collect.manifest(entry):
                assert collect.download_media(media).status == 200

        first = f"uuid:{uuid.uuid4()}"
        values = {"g_intro/tdp": "tdp01", "g_head/head_name": "Nguyễn Văn Hùng",
                  "g_end/house_photo": "house.jpg"}
        xml = instances.build(xforms["household_survey"], values, instance_id=first)
        # a file larger than the advertised limit goes alone with the XML, as Collect does
        responses = collect.submit(xml, {"house.jpg": PHOTO}, max_bytes=len(PHOTO) // 2)
        assert [r.status for r in responses] == [201]
        assert collect.submit(xml, {"house.jpg": PHOTO})[0].status == 201  # resend
        edit = instances.build(xforms["household_survey"],
                               {**values, "g_head/head_name": "Nguyễn Văn Hưng"},
                               deprecated_id=first)
        assert collect.submit(edit)[0].status == 201
        conflict = instances.build(xforms["household_survey"], values, instance_id=first)
        assert collect.submit(conflict)[0].status == 409
