"""Configuration: defaults, then SERVER_* environment variables, then explicit overrides.

Every key of the outer contract (README, "Configuration") is read here and nowhere else.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import Flask

REPO_ROOT = Path(__file__).resolve().parent.parent

DEFAULTS: dict[str, object] = {
    "DATA_DIR": "./instance",
    "DATABASE_URL": None,  # derived from DATA_DIR
    "SECRET_KEY": None,  # generated and kept in DATA_DIR/secret_key
    "BASE_URL": None,  # derived from each request
    "TRUST_PROXY": 0,
    "TIMEZONE": "Asia/Ho_Chi_Minh",
    "MAX_SUBMISSION_BYTES": 100_000_000,
    "ADMIN_PASSWORD": None,
    "DIGEST_AUTH": 1,
    "FORMS_DIR": str(REPO_ROOT / "forms"),
    "WARD_CONFIG": None,  # defaults to FORMS_DIR/ward.toml
    "PID_KEY": None,  # keyed hash of identity numbers; generated into DATA_DIR/pid_key if unset
    "BLOB_STORE": "files",  # "files" (under DATA_DIR/blobs) or "database"
    "VALIDATE_FORMS": 1,  # run ODK Validate on publish when Java is present
}


class ConfigError(ValueError):
    """A setting the server cannot run with; the message names the variable."""


def load_config(app: Flask, overrides: dict | None = None, *, keys: bool = True) -> None:
    """Fill app.config from defaults, SERVER_* variables and overrides, then derive the rest.

    `keys=False` leaves unset secret keys unset instead of generating them (`restore` brings
    the backed-up ones). A bad setting raises ConfigError.
    """
    app.config.update(DEFAULTS)
    app.config.from_prefixed_env("SERVER")
    if overrides:
        app.config.update(overrides)
    cfg = app.config
    _check(cfg)
    data_dir = _writable_dir(Path(str(cfg["DATA_DIR"])).resolve())
    cfg["DATA_DIR"] = str(data_dir)
    if not cfg["DATABASE_URL"]:
        cfg["DATABASE_URL"] = f"sqlite:///{data_dir / 'server.db'}"
    if keys and not cfg["SECRET_KEY"]:
        cfg["SECRET_KEY"] = _kept_secret(data_dir / "secret_key")
    if keys and not cfg["PID_KEY"]:
        cfg["PID_KEY"] = _kept_secret(data_dir / "pid_key")
    if not cfg["WARD_CONFIG"]:
        cfg["WARD_CONFIG"] = str(Path(str(cfg["FORMS_DIR"])) / "ward.toml")
    # Werkzeug refuses larger bodies with 413 before a view reads them. Collect splits by
    # the bytes of the XML and files only, so the multipart framing needs some headroom.
    cfg["MAX_CONTENT_LENGTH"] = cfg["MAX_SUBMISSION_BYTES"] + 256 * 1024
    cfg["MAX_FORM_PARTS"] = 1000
    cfg["SESSION_COOKIE_HTTPONLY"] = True
    cfg["SESSION_COOKIE_SAMESITE"] = "Lax"


INTEGERS = {"MAX_SUBMISSION_BYTES": (1, None), "TRUST_PROXY": (0, 1), "DIGEST_AUTH": (0, 1),
            "VALIDATE_FORMS": (0, 1)}
DATABASE_SCHEMES = ("sqlite", "sqlite+pysqlite", "postgresql+psycopg")


def _check(cfg) -> None:
    """Refuse settings the server would only trip over later, one clear message each."""
    for key, (low, high) in INTEGERS.items():
        value = cfg[key]
        try:
            number = int(value)
            if isinstance(value, float | str) and float(value) != number:
                raise ValueError(value)
        except (TypeError, ValueError, OverflowError):
            raise ConfigError(f"SERVER_{key} must be a whole number, not {value!r}") from None
        if number < low or (high is not None and number > high):
            allowed = f"{low} or {high}" if high == low + 1 else f"at least {low}"
            raise ConfigError(f"SERVER_{key} must be {allowed}, not {value!r}")
        cfg[key] = number
    if cfg["BLOB_STORE"] not in ("files", "database"):
        raise ConfigError(f"SERVER_BLOB_STORE must be 'files' or 'database', "
                          f"not {cfg['BLOB_STORE']!r}")
    try:
        ZoneInfo(str(cfg["TIMEZONE"]))
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"SERVER_TIMEZONE {cfg['TIMEZONE']!r} is not a time zone "
                          "(for example Asia/Ho_Chi_Minh)") from None
    url = cfg["DATABASE_URL"]
    if url:
        # Only the scheme is shown: the URL may carry a password.
        scheme = str(url).split("://", 1)[0] if "://" in str(url) else None
        if scheme not in DATABASE_SCHEMES:
            got = f"a {scheme!r} URL" if scheme is not None else "no URL"
            raise ConfigError("SERVER_DATABASE_URL must be sqlite:///PATH or "
                              f"postgresql+psycopg://USER@HOST:PORT/NAME (got {got})")
    base = cfg["BASE_URL"]
    if base and not str(base).startswith(("http://", "https://")):
        raise ConfigError(f"SERVER_BASE_URL must start with http:// or https://, not {base!r}")


def _writable_dir(path: Path) -> Path:
    """The data dir, created if needed and proven writable (a read-only mount fails here,
    not at the first submission)."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=path, prefix=".tmp-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise ConfigError(f"SERVER_DATA_DIR {path} is not a writable folder "
                          f"({exc.strerror or exc})") from None
    return path


def _kept_secret(path: Path) -> str:
    """Read a secret from `path`, creating it (mode 0600) on first start."""
    value = secrets.token_hex(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # made earlier, or just now by another worker
        return path.read_text().strip() or _wait_for(path)
    with os.fdopen(fd, "w") as fh:
        fh.write(value)
        fh.flush()
        os.fsync(fh.fileno())
    return value


def _wait_for(path: Path) -> str:
    """Another process created the file a moment ago and is still writing it."""
    import time

    for _ in range(100):
        time.sleep(0.01)
        if text := path.read_text().strip():
            return text
    raise RuntimeError(f"{path} exists but is empty")
