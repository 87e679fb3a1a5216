"""Configuration: defaults, then SERVER_* environment variables, then explicit overrides.

Every key of the outer contract (README, "Configuration") is read here and nowhere else.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

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


def load_config(app: Flask, overrides: dict | None = None) -> None:
    """Fill app.config from defaults, SERVER_* variables and overrides, then derive the rest."""
    app.config.update(DEFAULTS)
    app.config.from_prefixed_env("SERVER")
    if overrides:
        app.config.update(overrides)
    cfg = app.config
    data_dir = Path(str(cfg["DATA_DIR"])).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    cfg["DATA_DIR"] = str(data_dir)
    if not cfg["DATABASE_URL"]:
        cfg["DATABASE_URL"] = f"sqlite:///{data_dir / 'server.db'}"
    if not cfg["SECRET_KEY"]:
        cfg["SECRET_KEY"] = _kept_secret(data_dir / "secret_key")
    if not cfg["PID_KEY"]:
        cfg["PID_KEY"] = _kept_secret(data_dir / "pid_key")
    if not cfg["WARD_CONFIG"]:
        cfg["WARD_CONFIG"] = str(Path(str(cfg["FORMS_DIR"])) / "ward.toml")
    for key in ("MAX_SUBMISSION_BYTES", "TRUST_PROXY", "DIGEST_AUTH", "VALIDATE_FORMS"):
        cfg[key] = int(cfg[key])
    # Werkzeug refuses larger bodies with 413 before a view reads them. Collect splits by
    # the bytes of the XML and files only, so the multipart framing needs some headroom.
    cfg["MAX_CONTENT_LENGTH"] = cfg["MAX_SUBMISSION_BYTES"] + 256 * 1024
    cfg["MAX_FORM_PARTS"] = 1000
    cfg["SESSION_COOKIE_HTTPONLY"] = True
    cfg["SESSION_COOKIE_SAMESITE"] = "Lax"


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
