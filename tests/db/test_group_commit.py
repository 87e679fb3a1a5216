"""Group commit on SQLite: several requests' work in one transaction, each request answered
only once that transaction is committed, and a failing request never takes its neighbours
down (nor is anything of a group kept when the transaction ends under it)."""

from __future__ import annotations

import os
import threading

import pytest
from sqlalchemy import event, select

from server.db import Database, group_commit
from server.db.models import Project

pytestmark = pytest.mark.skipif(
    os.environ.get("TEST_DATABASE_URL") is not None,
    reason="group commit is SQLite's; PostgreSQL runs one transaction per request")


@pytest.fixture
def db(tmp_path):
    database = Database(f"sqlite:///{tmp_path / 'server.db'}")
    database.upgrade()
    yield database
    database.dispose()


def names(db: Database) -> set[str]:
    with db.session() as s:  # a connection of its own: sees committed rows only
        return set(s.scalars(select(Project.name)))


def run_grouped(db: Database, works: list) -> tuple[list, list, int]:
    """Run `works` from one thread each, all in one group: they queue while a first request's
    group is still open, and are taken together when it ends. Returns each thread's result
    (or exception), what a fresh connection saw when each run() returned, and the number of
    commits the works' group took."""
    writer = group_commit.for_database(db)
    commits = []
    event.listen(db.engine, "commit", lambda _conn: commits.append(1))
    queued = threading.Event()

    def blocker(session):
        session.execute(select(1))  # its transaction is open while the others queue
        queued.wait(timeout=60)

    outcomes: list = [None] * len(works)
    seen_at_return: list = [None] * len(works)

    def call(i, work):
        try:
            outcomes[i] = writer.run(work)
        except Exception as exc:  # noqa: BLE001  (the test looks at it)
            outcomes[i] = exc
        seen_at_return[i] = names(db)

    first = threading.Thread(target=writer.run, args=(blocker,))
    first.start()
    while not writer._leading:
        threading.Event().wait(0.01)
    threads = [threading.Thread(target=call, args=(i, w)) for i, w in enumerate(works)]
    for t in threads:
        t.start()
    while len(writer._queue) < len(works):
        threading.Event().wait(0.01)
    queued.set()
    for t in [first, *threads]:
        t.join(timeout=120)
    return outcomes, seen_at_return, len(commits) - 1  # less the blocker's own commit


def add(name: str):
    def work(session):
        session.add(Project(name=name))
        session.flush()
        return name
    return work


def test_a_failing_job_does_not_fail_its_group(db):
    def failing(session):
        session.add(Project(name="rolled back"))
        session.flush()
        raise ValueError("this request's own error")

    outcomes, seen, commits = run_grouped(db, [add("a"), add("b"), failing, add("d")])
    assert outcomes[:2] == ["a", "b"] and outcomes[3] == "d"
    assert isinstance(outcomes[2], ValueError)
    assert names(db) == {"a", "b", "d"}
    assert commits == 1  # four requests, one transaction
    # each request was answered only after the commit that holds its work
    for i in (0, 1, 3):
        assert outcomes[i] in seen[i]


def test_a_transaction_ended_under_a_job_fails_the_whole_group(db):
    def ends_transaction(session):
        # as SQLite does by itself on some errors (a full disk): the whole transaction is gone
        session.connection().exec_driver_sql("ROLLBACK")
        raise OSError("disk full")

    outcomes, _, _ = run_grouped(db, [add("a"), ends_transaction, add("c")])
    # nothing after the loss runs outside a transaction, and nobody is told "stored"
    assert all(isinstance(o, Exception) for o in outcomes), outcomes
    assert names(db) == set()


def test_a_request_alone_in_its_group_is_rolled_back_whole_and_the_next_goes_on(db):
    writer = group_commit.for_database(db)

    def failing(session):
        add("half done")(session)
        raise ValueError("bad input")

    with pytest.raises(ValueError):
        writer.run(failing)
    assert names(db) == set()
    assert writer.run(add("after")) == "after"
    assert names(db) == {"after"}
