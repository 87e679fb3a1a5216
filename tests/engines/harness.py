"""ODK's own engines as test oracles against the served product.

A `Phone` downloads a form the way Collect does (formList, hash-checked XForm, manifest and every
media file, entity lists included); an engine fills it (`webforms_fill`: the ODK Web Forms engine
in Node, `javarosa_fill`: JavaRosa, the engine inside Collect, from the copy in ODK_Validate.jar);
the phone POSTs the result as Collect does; then the `*_values` readers flatten the engine's XML,
the stored fields and the raw export into the same `{path: text}` shape so a test compares them.

Paths are below the instance root with 1-based indices on repeat instances only:
`g_members/members[2]/m_name`. The engines' pieces are installed by `.ci/run` (npm ci) and by
pyxform (the jar); when one is missing the tests fail and say what to run, unless
SKIP_ENGINE_TESTS=1 asks to skip them on purpose.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from lxml import etree

from tests.support.collect import Collect

ENGINES_DIR = Path(__file__).resolve().parent
WEBFORMS_DIR = ENGINES_DIR / "webforms"
JAVAROSA_SOURCE = ENGINES_DIR / "javarosa" / "Fill.java"
SKIP_ENV = "SKIP_ENGINE_TESTS"
PHONE_TIMEZONE = "Asia/Ho_Chi_Minh"  # the volunteers' phones
DEVICE_ID = "collect:ENGINEPHONE00001"
XF = "{http://www.w3.org/2002/xforms}"
ENTITIES_NS = "http://www.opendatakit.org/xforms/entities"
GEO_PARTS = ("Latitude", "Longitude", "Altitude", "Accuracy")
# Columns of Central's root table that are not form fields.
EXPORT_META = {"SubmissionDate", "KEY", "SubmitterID", "SubmitterName", "AttachmentsPresent",
               "AttachmentsExpected", "Status", "ReviewState", "DeviceID", "Edits",
               "FormVersion"}


def require(what: str, problem: str | None) -> None:
    """Fail (or skip, only when SKIP_ENGINE_TESTS=1) when an engine piece is missing."""
    if problem is None:
        return
    message = f"{what} is not usable: {problem}"
    if os.environ.get(SKIP_ENV) == "1":
        pytest.skip(f"{message} ({SKIP_ENV}=1)")
    pytest.fail(f"{message}. Set {SKIP_ENV}=1 to skip the engine tests on purpose.",
                pytrace=False)


def webforms_problem() -> str | None:
    if shutil.which("node") is None:
        return "node is not installed (Node.js 20.19 or newer; .ci/run installs it)"
    version = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout
    major, minor = (int(x) for x in re.findall(r"\d+", version)[:2])
    if (major, minor) < (20, 19):
        return f"node {version.strip()} is too old (@getodk/xforms-engine needs 20.19 or newer)"
    if not (WEBFORMS_DIR / "node_modules" / "@getodk" / "xforms-engine").is_dir():
        return f"its npm packages are missing: run `npm ci --prefix {WEBFORMS_DIR}`"
    return None


def validate_jar() -> Path:
    """ODK Validate as pyxform ships it (it bundles JavaRosa, the engine inside Collect)."""
    import pyxform

    return Path(pyxform.__file__).parent / "validators/odk_validate/bin/ODK_Validate.jar"


def java_problem(*, compiler: bool) -> str | None:
    if shutil.which("java") is None or (compiler and shutil.which("javac") is None):
        return "a JDK is not installed (apt-get install default-jdk-headless; .ci/run does it)"
    if not validate_jar().is_file():
        return f"{validate_jar()} is missing (reinstall pyxform: make venv)"
    return None


# --- a phone ---------------------------------------------------------------------------------


@dataclass
class Downloaded:
    """A form as a phone holds it after "Get blank form"."""

    form_id: str
    version: str
    xml: bytes
    path: Path
    media: dict[str, Path]


class Phone:
    """Collect's protocol client with a folder for the forms and media it downloads."""

    def __init__(self, collect: Collect, folder: Path):
        self.collect = collect
        self.folder = folder

    def download(self, form_id: str) -> Downloaded:
        listed = {f["formID"]: f for f in self.collect.form_list()}
        assert form_id in listed, f"{form_id} is not in the form list: {sorted(listed)}"
        entry = listed[form_id]
        xml = self.collect.download_form(entry)  # the listed md5 is checked
        home = self.folder / form_id
        media_dir = home / "media"
        shutil.rmtree(home, ignore_errors=True)
        media_dir.mkdir(parents=True)
        path = home / f"{form_id}.xml"
        path.write_bytes(xml)
        media = {}
        for item in self.collect.manifest(entry):
            response = self.collect.download_media(item)
            assert response.status == 200, f"{item['filename']}: HTTP {response.status}"
            if item.get("type") is None:  # Collect re-downloads ordinary media whose md5 differs
                assert _md5(response.body) == item["hash"], f"{item['filename']}: manifest md5"
            (media_dir / item["filename"]).write_bytes(response.body)
            media[item["filename"]] = media_dir / item["filename"]
        return Downloaded(form_id, entry.get("version") or "", xml, path, media)

    def send(self, xml: bytes, attachments: dict[str, bytes]) -> None:
        responses = self.collect.submit(xml, attachments, xml_filename="instance.xml")
        last = responses[-1]
        assert last.status == 201, (f"HTTP {last.status}: {last.extra.get('failure_message')}\n"
                                    f"{last.body.decode(errors='replace')}")


# --- the engines -----------------------------------------------------------------------------


@dataclass
class Filled:
    """What an engine produced: the submission XML, its files, and the answers it gave."""

    xml: bytes
    attachments: dict[str, bytes]
    answered: dict[str, str] = field(default_factory=dict)

    @property
    def instance_id(self) -> str:
        return instance_values(self.xml)["meta/instanceID"]


def webforms_fill(form: Downloaded, workdir: Path, *, seed: int, answers=None, uploads=None,
                  repeats=None, edit: Filled | None = None, username: str = "") -> Filled:
    """Fill `form` with the ODK Web Forms engine (tests/engines/webforms/fill.mjs)."""
    require("The ODK Web Forms engine", webforms_problem())
    job = {"form": str(form.path), "media": {k: str(v) for k, v in form.media.items()},
           "seed": seed, "answers": answers or {}, "repeats": repeats or {},
           "uploads": {k: str(v) for k, v in (uploads or {}).items()},
           "preload": {"deviceID": DEVICE_ID, "username": username}}
    if edit is not None:
        job["edit"] = _edit_files(edit, workdir)
    done = subprocess.run(["node", "fill.mjs"], cwd=WEBFORMS_DIR, input=json.dumps(job),
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "TZ": PHONE_TIMEZONE})
    try:
        result = json.loads(done.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"the Web Forms driver failed (exit {done.returncode}):\n{done.stderr}")
    if done.returncode != 0:
        pytest.fail(f"the Web Forms engine could not complete {form.form_id}: "
                    f"status {result['status']}, unanswered {result['unanswered']}, "
                    f"violations {result['violations']}\n{done.stderr[-2000:]}")
    files = {name: base64.b64decode(item["base64"])
             for name, item in result["attachments"].items()}
    answered = {_below_root(ref): value for ref, value in result["answered"].items()}
    return Filled(result["xml"].encode("utf-8"), files, answered)


def _edit_files(previous: Filled, workdir: Path) -> dict:
    folder = workdir / f"edit-{previous.instance_id.replace(':', '-')}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "instance.xml").write_bytes(previous.xml)
    for name, data in previous.attachments.items():
        (folder / name).write_bytes(data)
    return {"instance": str(folder / "instance.xml"),
            "attachments": {name: str(folder / name) for name in previous.attachments}}


def compile_javarosa_driver() -> Path:
    """javac tests/engines/javarosa/Fill.java against ODK_Validate.jar; the classes folder.

    Kept in javarosa/build/ (git-ignored) under a digest of the source and the jar, so a second
    run (CI's PostgreSQL pass) does not compile again."""
    require("JavaRosa (in ODK_Validate.jar)", java_problem(compiler=True))
    digest = hashlib.sha256(JAVAROSA_SOURCE.read_bytes() + validate_jar().read_bytes())
    out = JAVAROSA_SOURCE.parent / "build" / digest.hexdigest()[:16]
    if (out / "Fill.class").is_file():
        return out
    out.parent.mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=out.parent, prefix=".javac-"))
    try:
        done = subprocess.run(["javac", "-encoding", "UTF-8", "-nowarn", "-cp",
                               str(validate_jar()), "-d", str(work), str(JAVAROSA_SOURCE)],
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"javac failed:\n{done.stderr}"
        try:
            work.rename(out)  # atomic; a concurrent run may have got there first
        except OSError:
            if not (out / "Fill.class").is_file():
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out


def javarosa_fill(classes: Path, form: Downloaded, workdir: Path, *, seed: int, answers=None,
                  repeats=None, edit: Filled | None = None, username: str = "") -> Filled:
    """Fill `form` with JavaRosa (tests/engines/javarosa/Fill.java), as Collect would."""
    workdir.mkdir(parents=True, exist_ok=True)
    n = len(list(workdir.glob("job-*.properties")))
    out = workdir / f"out-{n}.xml"
    props = {"form": str(form.path), "media": str(form.path.parent / "media"),
             "out": str(out), "seed": str(seed), "preload.deviceid": DEVICE_ID,
             "preload.username": username}
    props.update({f"answer.{k}": _java_value(v) for k, v in (answers or {}).items()})
    props.update({f"repeat.{k}": str(v) for k, v in (repeats or {}).items()})
    if edit is not None:
        props["edit"] = _edit_files(edit, workdir)["instance"]
    job = workdir / f"job-{n}.properties"
    job.write_text("".join(f"{k}={_escape(v)}\n" for k, v in props.items()), encoding="utf-8")
    done = subprocess.run(["java", "-Djava.awt.headless=true", f"-Duser.timezone={PHONE_TIMEZONE}",
                           "-cp", f"{validate_jar()}{os.pathsep}{classes}", "Fill", str(job)],
                          capture_output=True, timeout=300)
    report = done.stdout.decode("utf-8")
    lines = [line.split("\t", 2) for line in report.splitlines() if line]
    if done.returncode != 0:
        problems = [line for line in lines if line[0] == "unanswered"]
        pytest.fail(f"JavaRosa could not complete {form.form_id}: {problems}\n"
                    f"{done.stderr.decode(errors='replace')[-3000:]}")
    answered = {ref: value for kind, ref, value in (x for x in lines if len(x) == 3)
                if kind == "answered"}
    # Collect sends the files the instance names; a photo here is bytes the test makes up. An
    # edit sends again every file of the instance folder.
    files = {line[1]: _photo_bytes(line[1]) for line in lines if line[0] == "attachment"}
    if edit is not None:
        files = {**edit.attachments, **files}
    return Filled(out.read_bytes(), files, answered)


def _java_value(value) -> str:
    return "|".join(str(v) for v in value) if isinstance(value, list) else str(value)


def _escape(value: str) -> str:
    """A java.util.Properties value (read as UTF-8 text)."""
    return (value.replace("\\", "\\\\").replace("\n", "\\n").replace(":", "\\:")
            .replace("=", "\\="))


def _photo_bytes(name: str) -> bytes:
    return b"\xff\xd8\xff\xe0" + name.encode() + bytes(range(256)) * 4


def _below_root(ref: str) -> str:
    return ref.split("/", 2)[2] if ref.count("/") >= 2 else ref


# --- reading the form, the instance, the database and the export ----------------------------


def _bare(path: str) -> str:
    return re.sub(r"\[\d+\]", "", path)


def _form_paths(xform: bytes, xpath: str) -> set[str]:
    root = etree.fromstring(xform)
    return {_below_root(p.strip()) for p in root.xpath(xpath, namespaces={"xf": XF[1:-1]})}


def repeat_paths(xform: bytes) -> set[str]:
    """Bare paths of the form's repeats (from the body's <repeat nodeset>)."""
    return _form_paths(xform, "//xf:repeat/@nodeset")


def geopoint_paths(xform: bytes) -> set[str]:
    return _form_paths(xform, "//xf:bind[@type='geopoint']/@nodeset")


def entity_properties(xform: bytes) -> dict[str, str]:
    """Entity property -> bare field path (the binds' entities:saveto)."""
    root = etree.fromstring(xform)
    return {b.get(f"{{{ENTITIES_NS}}}saveto"): _below_root(b.get("nodeset").strip())
            for b in root.iter(f"{XF}bind") if b.get(f"{{{ENTITIES_NS}}}saveto")}


def instance_values(xml: bytes, repeats: set[str] | None = None) -> dict[str, str]:
    """Every leaf element of a submission: `{path: text}`; repeats indexed from 1."""
    root = etree.fromstring(xml)
    out: dict[str, str] = {}

    def walk(el, prefix: str) -> None:
        seen: dict[str, int] = {}
        for child in el:
            if not isinstance(child.tag, str):
                continue
            name = etree.QName(child).localname
            bare = _bare(f"{prefix}/{name}" if prefix else name)
            if repeats is not None and bare in repeats:
                seen[name] = seen.get(name, 0) + 1
                name = f"{name}[{seen[name]}]"
            path = f"{prefix}/{name}" if prefix else name
            if len(child):
                walk(child, path)
            elif path != "meta/entity":  # an entity without a label child is all attributes
                out[path] = child.text or ""

    walk(root, "")
    return out


def stored_values(fields: dict) -> dict[str, str]:
    """The server's parsed fields of one submission version in the same shape."""
    out = dict(fields["root"])
    prefix = fields["key"] + "/"
    for rows in fields["repeats"].values():
        for row in rows:
            assert row["key"].startswith(prefix), row["key"]
            for column, value in row["values"].items():
                out[f"{row['key'][len(prefix):]}/{column}"] = value
    return out


def read_export(zip_path: Path) -> dict[str, list[dict[str, str]]]:
    """Every CSV table in an export zip: {table name: rows as dicts}; media under "media/"."""
    tables = {}
    with zipfile.ZipFile(zip_path) as zf:
        for name in zf.namelist():
            if name.endswith(".csv") and "/" not in name:
                text = zf.read(name).decode("utf-8")
                tables[name[:-4]] = list(csv.DictReader(io.StringIO(text)))
    return tables


def export_media(zip_path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(zip_path) as zf:
        return {n[len("media/"):]: zf.read(n) for n in zf.namelist() if n.startswith("media/")}


def export_values(tables: dict[str, list[dict[str, str]]], form_id: str, key: str,
                  geopoints: set[str]) -> tuple[dict[str, str], dict[str, str]]:
    """(field values, Central's meta columns) of the export rows of submission `key`."""
    rows = [r for r in tables[form_id] if r["KEY"] == key]
    assert len(rows) == 1, f"{len(rows)} root rows for {key}"
    root = rows[0]
    values: dict[str, str] = {}
    _cells(values, root, "", geopoints, skip=EXPORT_META)
    for name, table in tables.items():
        if name == form_id:
            continue
        for row in table:
            if row["KEY"].startswith(key + "/"):
                _cells(values, row, row["KEY"][len(key) + 1:] + "/", geopoints,
                       skip={"KEY", "PARENT_KEY"})
    return values, {k: root[k] for k in EXPORT_META}


def _cells(out: dict[str, str], row: dict[str, str], prefix: str, geopoints: set[str],
           skip: set[str]) -> None:
    parts: dict[str, list[str]] = {}
    for header, cell in row.items():
        if header in skip:
            continue
        path = prefix + header.replace("-", "/")
        base, _, part = path.rpartition("/")
        if part in GEO_PARTS and _bare(base) in geopoints:
            parts.setdefault(base, []).append(cell)
        else:
            out[path] = cell
    for base, cells in parts.items():
        out[base] = " ".join(c for c in cells if c)


def entity_rows(csv_path: Path) -> dict[str, dict[str, str]]:
    """An entity-list CSV as a phone reads it: rows by entity id (the `name` column)."""
    data = csv_path.read_bytes()
    assert not data.startswith(b"\xef\xbb\xbf"), f"{csv_path.name} starts with a BOM"
    return {row["name"]: row for row in csv.DictReader(io.StringIO(data.decode("utf-8")))}


# --- the round trip ---------------------------------------------------------------------------

IDENTITY_NUMBER = "g_head/head_id"  # blanked by the server before storage (domain §3.1)


def _blank_identity(xml: bytes) -> bytes:
    tag = IDENTITY_NUMBER.rsplit("/", 1)[1].encode()
    return re.sub(rb"<" + tag + rb">[^<]*</" + tag + rb">", b"<" + tag + b"></" + tag + b">", xml)


def _instances(paths) -> set[str]:
    """Repeat instances named by a set of paths: `g_members/members[2]`, ..."""
    return {p[:m.end()] for p in paths for m in re.finditer(r"\[\d+\]", p)}


def check_round_trip(server, form: Downloaded, filled: Filled, out: Path, *,
                     files: dict[str, bytes] | None = None, key: str | None = None,
                     edits: int = 0) -> dict[str, str]:
    """What the server stored and exports for `filled` is what the engine produced.

    `files`: the attachments the stored version must hold (default: those the engine sent);
    `key`: the submission's first instanceID (an edit keeps its row); `edits`: Central's Edits.
    Returns the engine's values by path.
    """
    files = filled.attachments if files is None else files
    expected = instance_values(filled.xml, repeat_paths(form.xml))
    expected.pop("meta/deprecatedID", None)  # Collect adds it; the form does not declare it
    identity = expected.get(IDENTITY_NUMBER, "")

    stored = server.stored(filled.instance_id)
    assert stored.current
    assert stored.xml == _blank_identity(filled.xml)
    values = stored_values(stored.fields)
    assert set(expected) <= set(values), f"fields the server does not know: " \
                                         f"{sorted(set(expected) - set(values))}"
    wanted = {**expected, IDENTITY_NUMBER: ""} if identity else expected
    assert values == {k: wanted.get(k, "") for k in values}
    if identity:
        assert stored.has_pid_hmac and stored.pid_last4 == identity[-4:]
        assert identity.encode() not in stored.xml
    assert stored.attachment_md5 == {n: _md5(b) for n, b in files.items()}

    zip_path = server.export_zip(form.form_id, out)
    tables = read_export(zip_path)
    exported, meta = export_values(tables, form.form_id, key or filled.instance_id,
                                   geopoint_paths(form.xml))
    assert exported == {k: wanted.get(k, "") for k in exported}
    assert {k for k, v in wanted.items() if v} <= set(exported), "values missing from the export"
    assert _instances(exported) == _instances(k for k, v in wanted.items() if v)
    assert meta["Edits"] == str(edits)
    assert meta["FormVersion"] == form.version
    assert meta["DeviceID"] == DEVICE_ID
    assert meta["AttachmentsPresent"] == meta["AttachmentsExpected"] == str(len(files))
    if identity:
        assert not any(identity in c for rows in tables.values() for r in rows for c in r.values())
    media = export_media(zip_path)
    for name, data in files.items():
        assert media.get(name) == data, f"media/{name} differs from what the phone sent"
    return expected


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()  # noqa: S324 (the server's attachment md5)


def check_entity_row(row: dict[str, str], form: Downloaded, values: dict[str, str], *,
                     version: int) -> None:
    """An entity-list row carries what the submission's entity declared and saved."""
    assert row["__version"] == str(version)
    if "meta/entity/label" in values:  # a form without a label leaves it as it was
        assert row["label"] == values["meta/entity/label"]
    for prop, path in entity_properties(form.xml).items():
        assert row[prop] == values.get(path, ""), f"property {prop} (from {path})"
