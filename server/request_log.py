"""Structured request logs: one JSON line on stderr per request, written when its response
has been sent (streamed exports included).

    {"ts": "2026-11-26T01:30:00.123Z", "method": "POST",
     "path": "/v1/key/***/projects/1/submission", "status": 201, "duration_ms": 23.4,
     "user": 7, "bytes_in": 81234, "pid": 4242}

Only what an operator needs to follow traffic and errors: no query string (searches carry
names), no address, no header, and the Collect token in `/v1/key/<token>/` is masked. `user`
is the account's id (null before authentication), never its name.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
from datetime import UTC, datetime

LOGGER = "server.requests"
USER_KEY = "server.user_id"  # the WSGI environ key where a request leaves its user's id
_TOKEN = re.compile(r"^/v1/key/[^/]*")
_MAX_PATH = 300


def redact(path: str) -> str:
    """The path as it may be logged: the token masked, the length bounded."""
    return _TOKEN.sub("/v1/key/***", path)[:_MAX_PATH]


class _Stderr(logging.Handler):
    """Writes to whatever sys.stderr is when the line is emitted (gunicorn and test runners
    replace it)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(record.getMessage() + "\n")
            sys.stderr.flush()
        except (OSError, ValueError):  # a closed stream must never fail a request
            pass


def _logger() -> logging.Logger:
    log = logging.getLogger(LOGGER)
    if not any(isinstance(h, _Stderr) for h in log.handlers):
        log.addHandler(_Stderr())
        log.setLevel(logging.INFO)
        log.propagate = False
    return log


class RequestLog:
    """WSGI middleware around the whole app: times each request until its body is closed."""

    def __init__(self, app):
        self.app = app
        self.log = _logger()

    def __call__(self, environ, start_response):
        started = time.perf_counter()
        seen: dict[str, int] = {}

        def recording_start_response(status, headers, exc_info=None):
            seen["status"] = int(status.split(" ", 1)[0])
            return start_response(status, headers, exc_info)

        try:
            body = self.app(environ, recording_start_response)
        except BaseException:
            self._write(environ, 500, started)
            raise
        wrapper = environ.get("wsgi.file_wrapper")
        if isinstance(wrapper, type) and isinstance(body, wrapper):
            # a file sent by the server itself (sendfile): logged now, left unwrapped
            self._write(environ, seen.get("status", 500), started)
            return body
        return _Closing(body, lambda: self._write(environ, seen.get("status", 500), started))

    def _write(self, environ, status: int, started: float) -> None:
        path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
        try:
            bytes_in = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            bytes_in = None
        line = {
            "ts": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "method": environ.get("REQUEST_METHOD", ""),
            "path": redact(path),
            "status": status,
            "duration_ms": round((time.perf_counter() - started) * 1000, 1),
            "user": environ.get(USER_KEY),
            "bytes_in": bytes_in,
            "pid": os.getpid(),
        }
        self.log.info(json.dumps(line, ensure_ascii=False))


class _Closing:
    """The response body, with the log line written when the server closes it."""

    def __init__(self, body, on_close):
        self._body = body
        self._on_close = on_close

    def __iter__(self):
        return iter(self._body)

    def close(self) -> None:
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            self._on_close()
