"""Household matching measured on the synthetic ward, against its ground truth.

Every upload of the ward goes through the real ingest (entity processing, snapshot, matching
at ingest) into a fresh SQLite database; then the clusters and the review queue are compared
with the truth, and a full re-run is timed. The same uploads are also ingested with matching
off, so the cost of matching at ingest is a ratio measured in the same run.
"""

from __future__ import annotations

import itertools
import os
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from sqlalchemy import select

from server import create_app
from server.db.models import DedupePair, Entity
from server.domain import accounts, matching
from server.domain.submissions import UploadedFile, Uploader, ingest
from tests.support.factories import make_ward
from tests.support.synthetic_ward import generate, hard_negative_pairs, true_duplicate_pairs

HOUSEHOLDS = int(os.environ.get("BENCH_HOUSEHOLDS", "8000"))
COST_SAMPLE = int(os.environ.get("BENCH_COST_UPLOADS", "3000"))


def _app(tmp: Path, name: str):
    app = create_app({"DATA_DIR": str(tmp / name), "VALIDATE_FORMS": 0,
                      "SECRET_KEY": "bench", "PID_KEY": "bench"})
    app.extensions["db"].upgrade()
    make_ward(app)
    return app


def _xforms(app) -> dict[str, bytes]:
    session = app.extensions["db"].session()
    try:
        from server.domain import forms

        return {fid: forms.get_form(session, 1, fid).current_version.xml
                for fid in ("household_survey", "support_visit")}
    finally:
        session.close()


def _load(app, ward, uploads, *, match: bool) -> float:
    """Ingest the uploads one transaction each, as the server does; seconds taken."""
    db, store = app.extensions["db"], app.extensions["blobs"]
    session = db.session(write=True)
    users = {}
    for v in ward.volunteers:
        if accounts.get_user(session, v.username) is None:
            users[v.username] = accounts.create_user(
                session, v.username, "volunteer", project_id=1, team=v.team,
                display_name=v.display_name).user.id
    session.commit()
    session.close()
    matcher = app.extensions["matcher"]
    started = time.perf_counter()
    for u in uploads:
        session = db.session(write=True)
        ingest(session, store, project_id=1, raw_xml=u.xml,
               files=[UploadedFile(n, b) for n, b in u.attachments.items()],
               uploader=Uploader(users.get(u.username), u.username, None), secret="bench",
               pid_key="bench", matcher=matcher, match=match, now=u.received_at)
        session.commit()
        session.close()
    return time.perf_counter() - started


def quality(app, ward) -> dict:
    session = app.extensions["db"].session()
    try:
        canon = {e.id: e.canonical_id or e.id for e in session.scalars(select(Entity))}
        pending = list(session.scalars(select(DedupePair).where(DedupePair.status == "pending")))
    finally:
        session.close()
    truth = true_duplicate_pairs(ward)
    negatives = hard_negative_pairs(ward)
    clusters = defaultdict(set)
    for e, c in canon.items():
        clusters[c].add(e)
    predicted = {tuple(sorted(p)) for members in clusters.values()
                 for p in itertools.combinations(members, 2)}
    review = {tuple(sorted((canon.get(p.entity_a, p.entity_a), canon.get(p.entity_b, p.entity_b))))
              for p in pending}
    true_pos = predicted & truth
    found_by_review = {p for p in truth - predicted
                       if tuple(sorted((canon.get(p[0], p[0]), canon.get(p[1], p[1])))) in review}
    # B-cubed over entities: the true household of each entity vs its cluster
    true_of = ward.entity_household
    true_groups = defaultdict(set)
    for e in canon:
        if e in true_of:
            true_groups[true_of[e]].add(e)
    bp = br = 0.0
    n = 0
    for e in canon:
        if e not in true_of:
            continue
        mine, theirs = clusters[canon[e]] & set(true_of), true_groups[true_of[e]]
        bp += len(mine & theirs) / len(mine)
        br += len(mine & theirs) / len(theirs)
        n += 1
    households = len(clusters)
    return {
        "entities": len(canon), "households": households, "true_pairs": len(truth),
        "auto_precision": len(true_pos) / len(predicted) if predicted else 1.0,
        "auto_recall": len(true_pos) / len(truth) if truth else 1.0,
        "recall_with_review": (len(true_pos) + len(found_by_review)) / len(truth) if truth else 1,
        "hard_negative_merges": len(predicted & negatives),
        "review_pairs": len(pending), "review_share": len(pending) / households,
        "bcubed_precision": bp / n, "bcubed_recall": br / n,
    }


def run() -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        app = _app(tmp, "matched")
        xforms = _xforms(app)
        t0 = time.perf_counter()
        ward = generate(xforms["household_survey"], xforms["support_visit"],
                        households=HOUSEHOLDS)
        generated_s = time.perf_counter() - t0
        ingest_s = _load(app, ward, ward.uploads, match=True)
        figures = quality(app, ward)
        session = app.extensions["db"].session(write=True)
        t0 = time.perf_counter()
        summary = matching.rerun(session, 1, app.extensions["matcher"])
        session.commit()
        rerun_s = time.perf_counter() - t0
        session.close()
        after = quality(app, ward)
        app.extensions["db"].dispose()

        sample = ward.uploads[:COST_SAMPLE]
        cost = {}
        for match in (False, True):
            other = _app(tmp, f"cost-{match}")
            cost[match] = _load(other, ward, sample, match=match) / len(sample)
            other.extensions["db"].dispose()
    snapshots = len(ward.survey_uploads)
    return {**figures, "generated_s": generated_s, "uploads": len(ward.uploads),
            "snapshots": snapshots, "ingest_s": ingest_s,
            "households_matched_per_s": snapshots / ingest_s,
            "rerun_s": rerun_s, "rerun_pairs": summary.pairs,
            "rerun_same_result": after == figures,
            "ingest_ms_without_matching": cost[False] * 1000,
            "ingest_ms_with_matching": cost[True] * 1000,
            "matching_cost_ratio": cost[True] / cost[False]}


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
