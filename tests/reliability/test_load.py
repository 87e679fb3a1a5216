"""Many Collect-like clients at once against the real server (gunicorn): every submission the
server acknowledged is stored exactly once, with the very bytes of every attachment.

Runs on SQLite, or on a fresh PostgreSQL database beside TEST_DATABASE_URL when it is set.
LOAD_SEED=N replays a run (the seed is in every failure message).
"""

from __future__ import annotations

import os

from tests.load import LoadConfig, run

PG_URL = os.environ.get("TEST_DATABASE_URL")
SEED = int(os.environ["LOAD_SEED"]) if os.environ.get("LOAD_SEED") else None
CLIENTS, SUBMISSIONS = 6, 120


def test_concurrent_clients_lose_nothing_and_double_nothing(tmp_path):
    report = run(LoadConfig(clients=CLIENTS, submissions=SUBMISSIONS, database_url=PG_URL,
                            data_dir=tmp_path, seed=SEED))
    summary = f"seed {report.config['seed']}\n{report.summary()}"
    v = report.verification
    assert report.client_errors == [], summary
    assert report.refused == report.abandoned == 0, summary
    # every instance went through, every one is stored exactly once
    assert v.acknowledged == v.complete == v.stored == SUBMISSIONS, summary
    assert v.lost == v.duplicated == v.unknown == v.bad_versions == 0, summary
    # every acknowledged file is there with the md5 of the bytes sent; nothing else is
    assert v.attachments_acknowledged > SUBMISSIONS, summary  # several per photo form
    assert v.attachments_lost == v.attachments_corrupt == v.attachments_unexpected == 0, summary
    assert v.half_written == v.missing_blob_content == v.temp_files == 0, summary
    assert v.relational_errors == 0 and v.integrity == "ok", summary
    assert report.ok, summary
