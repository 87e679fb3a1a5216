"""A backup taken while Collect-like clients are posting, restored the way the README says
(`python -m server restore DIR` into a fresh data dir, and a new PostgreSQL database when
TEST_DATABASE_URL is set), then served: every submission acknowledged before the backup
started is there once, with the md5 of every acknowledged attachment; every blob is whole;
the volunteers' Collect URLs from before keep working; the restored server takes new
submissions.

LOAD_SEED=N replays a run (the seed is in every failure message).
"""

from __future__ import annotations

import contextlib
import os
import re
import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select

from server.db.models import Submission
from tests.load import LoadConfig, as_of, run, verify
from tests.support import instances
from tests.support.collect import Collect, HttpTransport
from tests.support.served import Server, fresh_postgres_database

PG_URL = os.environ.get("TEST_DATABASE_URL")
SEED = int(os.environ["LOAD_SEED"]) if os.environ.get("LOAD_SEED") else None
CLIENTS, SUBMISSIONS = 4, 60


def _fresh_database():
    if PG_URL:
        return fresh_postgres_database(PG_URL, prefix="restore")
    return contextlib.nullcontext(None)


@pytest.fixture(scope="module")
def backed_up(tmp_path_factory):
    """The load run, and the backup taken in its middle."""
    tmp = tmp_path_factory.mktemp("backup")
    dest = tmp / "backup"
    moments: dict[str, float] = {}

    def take_backup(server, progress):
        deadline = time.monotonic() + 120
        while progress.acked < SUBMISSIONS // 3:
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {progress.acked} acknowledged after 120 s")
            time.sleep(0.005)
        moments["acked_before"] = progress.acked
        moments["start"] = time.monotonic()
        server.cli("backup", str(dest))
        moments["end"] = time.monotonic()
        moments["acked_after"] = progress.acked

    report = run(LoadConfig(clients=CLIENTS, submissions=SUBMISSIONS, database_url=PG_URL,
                            data_dir=tmp / "load", seed=SEED, during=take_backup))
    return report, dest, moments


def test_backup_taken_under_load_restores_every_acknowledged_submission(backed_up, tmp_path):
    report, dest, moments = backed_up
    summary = f"seed {report.config['seed']}\n{report.summary()}"
    assert report.ok and report.client_errors == [], summary
    # the backup started in the middle of the load, and clients were posting while it ran
    assert 0 < moments["acked_before"] < moments["acked_after"], moments
    assert moments["acked_before"] < SUBMISSIONS, moments
    assert report.acknowledged == SUBMISSIONS, summary
    assert (dest / "backup.json").is_file()
    assert oct((dest / "secret_key").stat().st_mode & 0o777) == "0o600"

    with _fresh_database() as url:
        restored = Server(tmp_path / "restored", url)
        out = restored.cli("restore", str(dest))  # the README's procedure
        assert out.startswith("restored "), out
        restored.start()
        try:
            before = as_of(report.ledger, moments["start"])
            v = verify(restored.database_url, restored.data_dir, before)
            detail = f"{summary}\nrestored: {out}\n" + "\n".join(v.problems)
            assert v.acknowledged >= moments["acked_before"], detail
            assert v.lost == v.duplicated == v.unknown == v.bad_versions == 0, detail
            assert v.attachments_acknowledged > v.acknowledged, detail  # photos were there
            assert v.attachments_lost == v.attachments_corrupt == 0, detail
            assert v.attachments_unexpected == v.half_written == 0, detail
            assert v.missing_blob_content == v.relational_errors == 0, detail
            assert v.integrity == "ok", detail

            # a phone set up before the loss keeps its URL (the keys came back too)
            phone_url = report.collect_url.replace(report.collect_url.split("/v1/")[0],
                                                   restored.base_url)
            instance_id = f"uuid:{uuid.uuid4()}"
            with HttpTransport() as transport:
                collect = Collect(phone_url, transport)
                forms = {f["formID"]: f for f in collect.form_list()}
                assert "household_survey" in forms
                xform = collect.download_form(forms["household_survey"])
                xml = instances.build(xform, {"g_intro/tdp": "tdp01",
                                              "g_end/house_photo": "house.jpg"},
                                      instance_id=instance_id)
                responses = collect.submit(xml, {"house.jpg": b"\xff\xd8\xff\xe0 after"})
            assert [r.status for r in responses] == [201]
        finally:
            restored.stop()
        engine = create_engine(restored.database_url)
        try:
            with engine.connect() as conn:
                stored = conn.scalars(select(Submission.instance_id)
                                      .where(Submission.instance_id == instance_id)).all()
        finally:
            engine.dispose()
        assert stored == [instance_id]


def test_restore_refuses_a_database_that_is_not_empty(backed_up, cli):
    _report, dest, _moments = backed_up
    data_dir = Path(cli.app.config["DATA_DIR"])
    files = {p: p.read_bytes() for p in data_dir.rglob("*") if p.is_file()}
    result = cli("restore", str(dest))
    assert result.exit_code == 1
    assert re.fullmatch(r"error: (.* already holds a database: move it away first|the database "
                        r".* is not empty: create a new one .*)\n", result.stderr), result.stderr
    # nothing was written: the data dir (database file, keys, blobs) is as it was
    assert {p: p.read_bytes() for p in data_dir.rglob("*") if p.is_file()} == files
