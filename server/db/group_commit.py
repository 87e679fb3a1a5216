"""Group commit: several requests' writes committed by one transaction, each request released
only after the commit that holds its work.

SQLite has one writer at a time and, with synchronous=FULL, every commit waits for an fsync;
committing request by request caps ingest at the disk's fsync rate. Here the first request
that finds no group under way leads: it takes every job queued so far, runs each job in its own
savepoint (a job that fails is rolled back alone and its request gets the error), commits once,
then releases every request of the group and hands the lead to the next waiting one. A job's
work is atomic and a request is answered only after the commit, so a 201 still means committed.

Leaders of several worker processes take an exclusive lock on a file beside the database first:
they queue in the kernel and wake at once, instead of polling in SQLite's busy handler.

PostgreSQL runs each job in its own transaction: its server already flushes the WAL of
concurrent commits together, and its writers do not exclude each other.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from collections.abc import Callable
from contextlib import contextmanager
from typing import TypeVar

from sqlalchemy.orm import Session

log = logging.getLogger(__name__)
T = TypeVar("T")
MAX_GROUP = 32


class _Job:
    __slots__ = ("work", "result", "error", "done", "wake")

    def __init__(self, work):
        self.work = work
        self.result = None
        self.error: BaseException | None = None
        self.done = False
        self.wake = threading.Event()  # set when done, or when this job's thread is to lead


class GroupAborted(RuntimeError):
    """The group's transaction ended under a job (the database rolled it back): nothing of the
    group was committed."""


class GroupCommit:
    def __init__(self, make_session: Callable[[], Session], *, grouped: bool,
                 lock_path: str | None = None, max_group: int = MAX_GROUP):
        self._make_session = make_session
        self._grouped = grouped
        self._lock_path = lock_path
        self._max_group = max_group
        self._mutex = threading.Lock()
        self._queue: list[_Job] = []
        self._leading = False

    def run(self, work: Callable[[Session], T]) -> T:
        """Run `work(session)` in a write transaction; return its result once committed.
        An exception from `work` (or from the commit) is raised here and nothing of it stays."""
        if not self._grouped:
            return self._alone(work)
        job = _Job(work)
        with self._mutex:
            self._queue.append(job)
            lead = not self._leading
            self._leading = True
        if not lead:
            job.wake.wait()
        if not job.done:  # this thread leads the next group, which starts with its own job
            self._lead()
        if job.error is not None:
            raise job.error
        return job.result

    def _alone(self, work):
        session = self._make_session()
        try:
            result = work(session)
            session.commit()
            return result
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def _lead(self) -> None:
        with self._mutex:
            jobs = self._queue[:self._max_group]
            del self._queue[:self._max_group]
        try:
            self._commit_group(jobs)
        finally:
            for job in jobs:
                job.done = True
                job.wake.set()
            with self._mutex:
                if self._queue:  # hand the lead over; `_leading` stays set
                    self._queue[0].wake.set()
                else:
                    self._leading = False

    def _commit_group(self, jobs: list[_Job]) -> None:
        with self._file_lock():
            session = self._make_session()
            try:
                if len(jobs) == 1:
                    # alone in its group: a failure rolls the whole transaction back, which
                    # holds nothing else, so no savepoint is needed
                    jobs[0].result = jobs[0].work(session)
                else:
                    for job in jobs:
                        self._run_in_savepoint(session, job)
                session.commit()
            except BaseException as exc:
                for job in jobs:
                    if job.error is None:
                        job.error, job.result = exc, None
                try:
                    session.rollback()
                except Exception:  # noqa: BLE001  (the first error is the one to report)
                    log.exception("rollback after a failed group")
            finally:
                session.close()

    @staticmethod
    def _run_in_savepoint(session: Session, job: _Job) -> None:
        try:
            with session.begin_nested():
                job.result = job.work(session)
        except Exception as exc:  # noqa: BLE001  (the job's own failure, for its request)
            job.error, job.result = exc, None
            if not _in_transaction(session):
                raise GroupAborted("the transaction ended under a failed job") from exc

    @contextmanager
    def _file_lock(self):
        if self._lock_path is None:
            yield
            return
        # Opened per group: a descriptor inherited across fork would share the lock.
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock


def _in_transaction(session: Session) -> bool:
    """Whether the group's transaction is still open on the connection (SQLite rolls the whole
    transaction back by itself on some errors, e.g. a full disk)."""
    try:
        dbapi = session.connection().connection.driver_connection
    except Exception:  # noqa: BLE001  (a session that cannot go on)
        return False
    return bool(getattr(dbapi, "in_transaction", True))


def for_database(database) -> GroupCommit:
    """Grouped commits on a SQLite file, one transaction per job elsewhere."""
    url = database.engine.url
    make = lambda: database.session(write=True)  # noqa: E731
    if url.get_backend_name() != "sqlite":
        return GroupCommit(make, grouped=False)
    path = url.database
    lock = f"{path}-writers.lock" if path and path != ":memory:" else None
    return GroupCommit(make, grouped=True, lock_path=lock)
