"""The whole server (gunicorn master and workers) is SIGKILLed several times at random moments
while Collect-like clients send, and started again on the same data; the clients resend as
Collect does. Nothing acknowledged is lost, nothing is doubled, no attachment is half-written,
and the database passes its integrity check after the last kill.

Runs on SQLite, or on a fresh PostgreSQL database beside TEST_DATABASE_URL when it is set.
LOAD_SEED=N replays a run (the seed is in every failure message).
"""

from __future__ import annotations

import os

from tests.load import LoadConfig, run

PG_URL = os.environ.get("TEST_DATABASE_URL")
SEED = int(os.environ["LOAD_SEED"]) if os.environ.get("LOAD_SEED") else None
CLIENTS, SUBMISSIONS, KILLS = 6, 120, 3


def test_sigkill_under_load_loses_nothing_and_doubles_nothing(tmp_path):
    report = run(LoadConfig(clients=CLIENTS, submissions=SUBMISSIONS, kills=KILLS,
                            database_url=PG_URL, data_dir=tmp_path, seed=SEED))
    summary = f"seed {report.config['seed']}\n{report.summary()}"
    v = report.verification
    assert report.client_errors == [], summary
    # the kills came during the load, hit requests in flight, and the server came back
    assert report.kills == KILLS, summary
    assert all(0 < p < SUBMISSIONS for p in report.kill_points), summary
    assert report.cut_in_flight > 0 and report.resent > 0, summary
    assert report.refused == report.abandoned == 0, summary
    # the clients' retries got everything through, once
    assert v.acknowledged == v.complete == v.stored == SUBMISSIONS, summary
    assert v.lost == v.duplicated == v.unknown == v.bad_versions == 0, summary
    assert v.attachments_lost == v.attachments_corrupt == v.attachments_unexpected == 0, summary
    # temporary files of killed writers may stay, but no blob is half-written or missing
    assert v.half_written == v.missing_blob_content == 0, summary
    assert v.relational_errors == 0 and v.integrity == "ok", summary
    assert report.ok, summary
