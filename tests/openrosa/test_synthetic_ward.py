"""A small synthetic ward through the real OpenRosa endpoint: matching against the truth."""

from __future__ import annotations

from sqlalchemy import select

from server.db.models import Entity, SubmissionVersion
from server.domain import accounts
from tests.bench_dedupe import quality
from tests.openrosa.conftest import rows
from tests.support.collect import Collect, FlaskTransport
from tests.support.synthetic_ward import generate


def test_small_ward_is_matched_like_the_truth(app, ward, collect, cli):
    xforms = {f["formID"]: collect.download_form(f) for f in collect.form_list()}
    synthetic = generate(xforms["household_survey"], xforms["support_visit"], households=80,
                         seed=7)
    session = app.extensions["db"].session(write=True)
    phones = {}
    for v in synthetic.volunteers:
        user = accounts.create_user(session, v.username, "volunteer", project_id=1,
                                    team=v.team, display_name=v.display_name).user
        phones[v.username] = accounts.collect_token(session, user, app.config["SECRET_KEY"])
    session.commit()
    session.close()
    transport = FlaskTransport(app)
    clients = {name: Collect(f"http://localhost/v1/key/{token}/projects/1", transport)
               for name, token in phones.items()}
    for upload in synthetic.uploads:
        [response] = clients[upload.username].submit(upload.xml, upload.attachments)
        assert response.status == 201, response.message
    assert len(rows(app, SubmissionVersion)) == len(synthetic.uploads)

    figures = quality(app, synthetic)
    assert figures["auto_precision"] == 1.0
    assert figures["hard_negative_merges"] == 0
    assert figures["recall_with_review"] >= 0.9
    assert figures["bcubed_precision"] == 1.0

    session = app.extensions["db"].session()
    before = {e.id: e.canonical_id for e in session.scalars(select(Entity))}
    session.close()
    assert cli("dedupe").exit_code == 0
    session = app.extensions["db"].session()
    assert {e.id: e.canonical_id for e in session.scalars(select(Entity))} == before
    session.close()
