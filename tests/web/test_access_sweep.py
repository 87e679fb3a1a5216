"""Every URL rule of the app, every method, every kind of caller (contract.md, "Roles").

ACCESS declares, per endpoint, who may reach it. The sweep walks `app.url_map` and fails for a
rule whose endpoint has no declaration, so a new page is swept from the day it is added: give
it one line, e.g. `"web.things": STAFF,` or `"web.thing_delete": ADMIN.posting({})`. A URL
variable takes the `swept` fixture's object of the same name (`sid`, `hid`, `uid`, `fid`…;
`.using(uid="vol4")` picks another); an object of a new kind is added there.

Callers: anonymous, a volunteer's token, a revoked token, a volunteer of tdp01 with a password
(`filler`: the fill pages of its forms only, 403 elsewhere), a team leader of another tổ, a
supervisor of another project, the team leader of the data's tổ (tdp01), the ward office and
an admin. Anonymous callers get the login page or a 401, tokens never reach the web UI, a
revoked token gets 403 at once, supervisors never reach another tổ's or project's objects nor
admin-only pages, admins reach everything, and no answer is a 500. Refused writes change
nothing stored, and no answer to a caller outside tdp01 carries a tdp01 household's name.

Login throttling is covered by tests/web/test_auth.py (five failures lock a username and
address); here every POST form of the web UI is checked to refuse a missing or foreign CSRF
token. The token callers send their token as a Bearer header and carry a signed session that
names their account, so neither a token nor a forged volunteer session opens the web UI.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from werkzeug.http import parse_dict_header

from server.db.models import (
    Attachment,
    Base,
    DedupePair,
    Entity,
    Form,
    FormMedia,
    FormVersion,
    HouseholdSnapshot,
    SubmissionVersion,
)
from server.domain import accounts, matching, team_registry
from server.domain.forms import ENTITY_LISTS, get_form, make_draft
from server.exports import issued
from server.exports.raw import raw_tables
from tests.openrosa.conftest import LOGO, PHOTO_FORM_MD, publish, xform_from_md
from tests.openrosa.test_entities import survey
from tests.support.factories import PASSWORD
from tests.web.conftest import Browser, csrf_token

# Who may reach an endpoint -------------------------------------------------------------------

CALLERS = ("anonymous", "volunteer", "revoked", "filler", "other_team", "other_project", "team",
           "office", "admin")
ALLOWED = {
    "public": set(CALLERS),
    "staff": {"other_team", "other_project", "team", "office", "admin"},  # shows own scope only
    "project": {"other_team", "team", "office", "admin"},  # an object of the project, no tổ
    "team": {"team", "office", "admin"},  # an object of tdp01
    "office": {"office", "admin"},  # the ward office's decisions
    "admin": {"admin"},
    "openrosa": {"volunteer", "filler", "other_team", "team", "office", "admin"},
    # a volunteer with a password: its own forms' fill pages, and logging out
    "session": {"filler", "other_team", "other_project", "team", "office", "admin"},
    "fill": {"filler", "other_team", "team", "office", "admin"},
    "api": {"other_team", "other_project", "team", "office", "admin"},  # any bearer session
}


class Ref(str):
    """A value taken from the fixture ward (`ids[name]`) rather than written literally."""


@dataclass(frozen=True)
class Access:
    kind: str
    values: dict = field(default_factory=dict)  # URL variables; default: ids[variable name]
    query: dict = field(default_factory=dict)
    form: dict | Callable | None = None  # POST body; a callable gets (ids, caller)
    ends_session: bool = False  # the allowed answer is the login page (logout)
    # What an allowed caller may get: the view's own answers (a 400 is the view refusing the
    # body on its merits, after the access check; the CSRF token sent is always valid).
    reached: tuple = (200, 201, 204, 302, 303)

    def using(self, **values) -> Access:
        """URL variables taken from other fixture ids than their own names."""
        return replace(self, values={**self.values, **{k: Ref(v) for k, v in values.items()}})

    def posting(self, form) -> Access:
        return replace(self, form=form)

    def answering(self, *statuses: int) -> Access:
        return replace(self, reached=self.reached + statuses)


PUBLIC, STAFF, PROJECT = Access("public"), Access("staff"), Access("project")
TEAM, OFFICE, ADMIN, OPENROSA = (Access("team"), Access("office"), Access("admin"),
                                 Access("openrosa"))
API = Access("api")  # Central's REST API: any bearer session (scoped inside the view)
SESSION, FILL = Access("session"), Access("fill")  # also reached by a volunteer's password


def submission_body(ids: dict, caller: str) -> dict:
    """A valid household survey (a new household of tdp02), so only access can refuse it."""
    n = CALLERS.index(caller)
    _eid, xml = survey(ids["xforms"], head=f"Khách Thử {n}", tdp="tdp02",
                       extra={"g_addr/house_no": f"9{n}", "g_head/head_birth_year": f"19{50 + n}"})
    return {"xml_submission_file": (io.BytesIO(xml), "submission.xml", "text/xml")}


CALLER_TEAM = {"other_team": "tdp02"}  # the tổ each allowed caller adds volunteers to


def volunteer_body(ids: dict, caller: str) -> dict:
    return {"username": f"sweep_{caller}", "display_name": f"Người mới {caller}",
            "team": CALLER_TEAM.get(caller, "tdp01"), "joined_on": ids["today"]}


ACCESS: dict[str, Access] = {
    "healthz": PUBLIC,
    "static": PUBLIC.using(filename="css"),
    "web.static": PUBLIC.using(filename="css"),
    "web.login": PUBLIC.posting({"username": "nobody"}),  # no password: no hashing, a 400
    "web.set_language": PUBLIC.posting({"lang": "vi", "next": "/"}),
    "web.logout": replace(SESSION, form={}, ends_session=True),
    "web.set_project": ADMIN.posting({"project": Ref("project")}),
    "web.dashboard": STAFF,
    "web.submissions": STAFF,
    "web.submission": TEAM,
    "web.attachment": TEAM,
    "web.review_submission": TEAM.posting({"state": "approved", "comment": "Đã kiểm tra."}),
    "web.households": STAFF,
    "web.household": TEAM,
    "web.duplicates": STAFF,
    "web.duplicate_pair": TEAM,
    "web.decide_pair": TEAM.posting({"decision": "merge"}),
    "web.merge_log": STAFF,
    "web.unmerge": OFFICE.using(hid="alias").posting({}),
    "web.setup": STAFF,
    "web.setup_volunteer": TEAM,
    "web.issue_token": TEAM.posting({}),
    "web.revoke_token": TEAM.using(uid="vol4").posting({}),
    "web.exports": STAFF,
    "web.export_csv": STAFF,
    "web.export_xlsx": STAFF,
    "web.export_raw_csv": PROJECT.using(name="raw_table"),
    "web.export_raw_xlsx": PROJECT,
    "web.export_raw_zip": PROJECT,
    "web.forms": STAFF,
    "web.form_page": PROJECT,
    "web.download_xform": PROJECT,
    "web.download_xlsform": PROJECT,
    "web.download_media": PROJECT.using(fid="media_fid", vid="media_vid"),
    "web.upload_form": ADMIN.posting({}).answering(400),  # no file: refused after the check
    "web.upload_version": ADMIN.posting({}).answering(400),
    "web.form_state": ADMIN.posting({"state": "open"}),
    "web.fill_list": SESSION,
    "web.fill_form": FILL,
    "web.fill_xform": FILL,
    "web.fill_attachment": FILL,  # households.csv: each caller's own tổ
    "web.submit_filled": FILL.posting(submission_body),
    "web.people": STAFF,
    "web.person": TEAM,
    "web.add_volunteer": STAFF.posting(volunteer_body),
    "web.person_leave": TEAM.using(uid="vol5").posting({"left_on": Ref("today")}),
    "web.reset_password": ADMIN.using(uid="sup4").posting({}),
    # a new password too short: the page answers 400 before any hashing, nothing changes
    "web.change_own_password": STAFF.posting({"current": "x", "new": "short", "again": "short"})
                                    .answering(400),
    "web.trainings": STAFF,
    "web.training": PROJECT,
    "web.add_training": STAFF.posting({"date": Ref("today"), "topic": "Kỹ năng số",
                                       "organiser": "Phường"}).answering(400),  # no attendee
    "web.add_training_attendees": PROJECT.posting({}).answering(400),
    "web.issued_reports": STAFF,
    # an impossible month: the view answers with its message (issuing is slow, see fixture)
    "web.issue_report": STAFF.posting({"kind": "indicators", "period": "2026-13"}),
    "web.issued_file": TEAM.using(name="report_file"),  # issued by tdp01's leader
    "web.audit_log": ADMIN,
    "web.audit_csv": ADMIN,
    "web.erase_household": ADMIN.using(hid="erase_hid").posting(
        {"who": "household", "reason": "Đơn số 1", "confirm": "y"}),
    "web.erase_submission": ADMIN.using(sid="erase_sid").posting(
        {"reason": "Đơn số 2", "confirm": "y"}),
    "central.create_session": PUBLIC.posting({"email": "nobody", "password": "x"}),
    "central.delete_session": API,  # only refused callers are sent a DELETE
    "central.current_user": API,
    "central.list_projects": API,
    "central.get_project": PROJECT,
    "central.list_submissions": PROJECT,  # a team leader's list holds its tổ's only
    "central.create_submission": PROJECT.posting({}).answering(400),  # JSON, not XML
    "central.get_submission": TEAM,
    "central.submission_xml": TEAM,
    "central.edit_submission": TEAM,  # only refused callers are sent a PUT
    "central.update_submission": TEAM,  # and a PATCH
    "central.list_attachments": TEAM,
    "central.get_attachment": replace(TEAM, values={"filename": "house.jpg"}),
    "central.upload_attachment": replace(TEAM, values={"filename": "house.jpg"}, form={}),
    "central.list_comments": TEAM,
    "central.add_comment": TEAM.posting({"body": "Đã kiểm tra."}),
    "central.list_forms": PROJECT,
    "central.get_form": PROJECT,
    "central.create_form": ADMIN.posting({}).answering(400),  # JSON, not an XForm
    "central.create_draft": ADMIN.posting({}).answering(400),
    "central.get_draft": PROJECT.using(form_id="draft_form"),
    "central.list_draft_attachments": PROJECT.using(form_id="draft_form"),
    # the JSON body is the new logo's bytes; the upload comes before the publish below
    "central.upload_draft_attachment": replace(
        ADMIN, values={"form_id": Ref("draft_form"), "name": "logo.png"}, form={}),
    "central.publish_draft": replace(ADMIN.using(form_id="draft_form"), form={},
                                     query={"version": "sweep"}),
    "central.list_form_attachments": PROJECT,
    "central.list_app_users": ADMIN,
    "central.create_app_user": ADMIN.posting({"displayName": "Máy tính bảng 9"}),
    "central.revoke_app_user": ADMIN.using(user_id="vol4"),  # only refused callers DELETE
    "central.list_form_assignments": replace(ADMIN, values={"role_id": 2}),
    "central.assign_form": replace(ADMIN, values={"role_id": 2, "user_id": Ref("vol3")},
                                   form={}),
    "central.unassign_form": replace(ADMIN, values={"role_id": 2, "user_id": Ref("vol3")}),
    "central.list_datasets": PROJECT,
    "central.create_dataset": ADMIN.posting({"name": "trees"}),
    "central.get_dataset": replace(PROJECT, values={"name": "households"}),
    "central.add_dataset_property": replace(ADMIN, values={"name": "households"},
                                            form={"name": "note"}),
    "central.list_entities": replace(PROJECT, values={"name": "households"}),  # its tổ's only
    "central.create_entities": replace(ADMIN, values={"name": "households"}, form={
        "uuid": "0f8e4a5c-3c1e-4f7a-9d2b-6a1e2c3d4e5f", "label": "Hộ thử",
        "data": {"tdp": "tdp02"}}),
    "central.get_entity": replace(TEAM, values={"name": "households", "uuid": Ref("hid")}),
    # only refused callers are sent a PATCH or a DELETE
    "central.update_entity": replace(ADMIN, values={"name": "households", "uuid": Ref("hid")}),
    "central.delete_entity": replace(ADMIN, values={"name": "households", "uuid": Ref("hid")}),
    "central.odata_service": replace(PROJECT, values={"name": "households"}),
    "central.odata_metadata": replace(PROJECT, values={"name": "households"}),
    "central.odata_entities": replace(PROJECT, values={"name": "households"}),  # its tổ's only
    "central.odata_form_service": PROJECT,
    "central.odata_form_metadata": PROJECT,
    "central.odata_form_table": replace(PROJECT, values={"table": "Submissions"}),  # its tổ's
    "openrosa.form_list": OPENROSA,
    "openrosa.form_xml": OPENROSA,
    "openrosa.manifest": OPENROSA.using(form_id="media_form"),
    "openrosa.media_file": OPENROSA.using(form_id="media_form", version="media_version"),
    "openrosa.dataset_integrity": replace(OPENROSA, query={"id": Ref("hid")}),
    "openrosa.submission_preflight": OPENROSA,
    "openrosa.submission": OPENROSA.posting(submission_body),
}

# The fixture ward ------------------------------------------------------------------------------

TDP01_NAMES = ("Nguyễn Văn Hùng", "Nguyễn Văn Hưng", "Phạm Thị Mận", "Phạm Thị Mẫn", "Lý Văn Tâm",
               "Đỗ Văn Khải", "Đỗ Thị Nga")
UNKNOWN_TOKEN = "x" * 43
JPEG = b"\xff\xd8\xff\xe0 a tiny jpeg"


def _add_user(db, username, role, project_id, team, *, password=PASSWORD):
    return accounts.create_user(db, username, role, project_id=project_id, team=team,
                                password=password, display_name=f"Người {username}").user



@pytest.fixture
def swept(app, ward, add_household, xforms):
    """The ward's data in tdp01 (and a little in tdp02), one account per kind of caller, and
    one object of each kind a URL names."""
    add_household("Nguyễn Văn Hùng", house="5", year="1970")
    add_household("Nguyễn Văn Hưng", house="5", year="1970")  # a pair waiting in tdp01
    add_household("Phạm Thị Mận", house="9", year="1980")
    add_household("Phạm Thị Mẫn", house="9", year="1980")  # merged below: the alias to undo
    add_household("Lý Văn Tâm", house="21", year="1965", attachments={"house.jpg": JPEG},
                  **{"g_end/house_photo": "house.jpg"})
    add_household("Đỗ Văn Khải", house="31", year="1955")  # erased as a household
    add_household("Đỗ Thị Nga", house="47", year="1962")  # erased as a submission
    add_household("Lê Thị Lan", tdp="tdp02", house="3", year="1990")
    publish(app, xform_from_md(PHOTO_FORM_MD), media={"logo.png": LOGO})  # a stored media file
    zone = ZoneInfo(app.config["TIMEZONE"])
    today = dt.datetime.now(zone).date()
    db = app.extensions["db"].session(write=True)
    try:
        pid = ward.project_id
        other = accounts.create_project(db, "Phường Khác").id
        _add_user(db, "sup2", "supervisor", pid, "tdp02")
        _add_user(db, "sup3", "supervisor", other, "tdp01")  # the same tổ code, another ward
        _add_user(db, "office", "supervisor", pid, "ward")
        ids = {"project": str(pid), "xforms": xforms, "css": "site.css", "kind": "households",
               "name": "households_register", "dataset": "households",
               "form_id": "household_survey", "token": ward.token,
               "today": today.isoformat(), "month": today.strftime("%Y-%m"),
               "sup4": _add_user(db, "sup4", "supervisor", pid, "tdp01").id}
        for name in ("vol2", "vol3", "vol4", "vol5"):
            user = _add_user(db, name, "volunteer", pid, "tdp01", password=None)
            ids[name] = user.id
            ids[f"{name}_token"] = accounts.collect_token(db, user, app.config["SECRET_KEY"])
        ids["uid"] = ids["vol3"]
        _add_user(db, "vol6", "volunteer", pid, "tdp01")  # given a password: the filler
        vol1, vol2 = accounts.get_user(db, "vol1"), accounts.get_user(db, "vol2")
        # What a signed session naming a volunteer would carry (a volunteer never logs in).
        ids["volunteer_session"] = f"{vol1.id}:{vol1.session_epoch}"
        ids["revoked_session"] = f"{vol2.id}:{vol2.session_epoch}"
        accounts.revoke(db, vol2)

        heads = {e.label.split(" – ")[0]: e
                 for e in db.scalars(select(Entity).where(Entity.project_id == pid))}
        for pair in db.scalars(select(DedupePair).where(DedupePair.project_id == pid)):
            pair_heads = {pair.entity_a, pair.entity_b}
            if pair_heads == {heads["Phạm Thị Mận"].id, heads["Phạm Thị Mẫn"].id}:
                matching.decide(db, pair.id, "merge", accounts.get_user(db, "admin"),
                                app.extensions["matcher"])
            elif pair_heads == {heads["Nguyễn Văn Hùng"].id, heads["Nguyễn Văn Hưng"].id}:
                ids["pid"] = pair.id
        db.flush()
        ids["alias"] = heads["Phạm Thị Mẫn"].id
        ids["hid"] = heads["Nguyễn Văn Hùng"].id
        ids["erase_hid"] = heads["Đỗ Văn Khải"].id
        att = db.scalar(select(Attachment).where(Attachment.name == "house.jpg"))
        ids["aid"], ids["sid"] = att.id, att.version.submission_id
        ids["iid"] = att.version.submission.instance_id  # the API names it so
        ids["erase_sid"] = db.scalar(
            select(SubmissionVersion.submission_id)
            .join(HouseholdSnapshot,
                  HouseholdSnapshot.submission_version_id == SubmissionVersion.id)
            .where(HouseholdSnapshot.entity_id == heads["Đỗ Thị Nga"].id))

        form = db.scalar(select(Form).where(Form.project_id == pid,
                                            Form.xml_form_id == "household_survey"))
        ids["fid"], ids["vid"] = form.id, form.current_version_id
        ids["version"] = db.get(FormVersion, form.current_version_id).version
        ids["media_form"], ids["media_version"], ids["filename"] = db.execute(
            select(Form.xml_form_id, FormVersion.version, FormMedia.filename)
            .join(FormVersion, FormVersion.id == Form.current_version_id)
            .join(FormMedia, FormMedia.form_version_id == FormVersion.id)
            .where(Form.project_id == pid, FormMedia.filename.in_(ENTITY_LISTS))).first()
        ids["media_fid"], ids["media_vid"], ids["mid"] = db.execute(
            select(Form.id, FormVersion.id, FormMedia.id)
            .join(FormVersion, FormVersion.id == Form.current_version_id)
            .join(FormMedia, FormMedia.form_version_id == FormVersion.id)
            .where(Form.project_id == pid, FormMedia.blob_sha256.is_not(None))).first()
        ids["raw_table"] = raw_tables(db, form)[0].name
        make_draft(db, app.extensions["blobs"], get_form(db, pid, "photo_form"))
        ids["draft_form"] = "photo_form"  # its draft: a copy of the current version

        sup1 = accounts.get_user(db, "sup1")
        training = team_registry.record_session(db, pid, day=today, topic="Dịch vụ công",
                                                organiser="Phường", recorded_by=sup1)
        team_registry.add_attendees(db, training, [vol1], recorded_by=sup1)
        ids["tid"] = training.id
        report = issued.issue(db, app.extensions["blobs"], "households", pid,
                              ward=app.extensions["ward"], period=ids["month"],
                              timezone=app.config["TIMEZONE"], team="tdp01", issued_by=sup1.id)
        ids["rid"], ids["report_file"] = report.id, report.files[0].name
        db.commit()
    finally:
        db.close()
    assert ids.get("pid") and ids["erase_sid"]
    return ids


# The callers -----------------------------------------------------------------------------------


@dataclass
class Caller:
    name: str
    web: Browser  # its cookies: a session after /login, a forged one, or none
    username: str | None = None  # a password user, for /login and the OpenRosa API
    token: str | None = None  # what it presents: as the token prefix, or a Bearer header
    api_token: str | None = None  # a password user's bearer session for Central's API
    csrf: str | None = None
    stale: bool = False  # logged out by the sweep: log in again before the next request

    def refresh(self) -> None:
        """(Re)open the web session and take its CSRF token."""
        if self.username:
            assert self.web.login(self.username).status_code == 302, self.name
        # The login page is the lightest page carrying the session's CSRF token.
        self.csrf = csrf_token(self.web.get("/login").get_data(as_text=True))
        self.stale = False


def make_callers(app, ids) -> dict[str, Caller]:
    users = {"filler": "vol6", "other_team": "sup2", "other_project": "sup3", "team": "sup1",
             "office": "office", "admin": "admin"}
    callers = {}
    for n, name in enumerate(CALLERS):
        caller = Caller(name, Browser(app, remote_addr=f"10.1.0.{n + 1}"), users.get(name))
        if name in ("volunteer", "revoked"):
            caller.token = ids["token"] if name == "volunteer" else ids["vol2_token"]
            with caller.web.client.session_transaction() as s:
                s["_user_id"] = ids[f"{name}_session"]
                s["_fresh"] = True
        caller.refresh()
        if caller.username and name != "filler":  # a volunteer never gets an API session
            response = app.test_client().post(
                "/v1/sessions", json={"email": caller.username, "password": PASSWORD},
                environ_base={"REMOTE_ADDR": f"10.2.0.{n + 1}"})
            caller.api_token = response.get_json()["token"]
        callers[name] = caller
    return callers


# One request -----------------------------------------------------------------------------------


def resolve(value, ids):
    return ids[value] if isinstance(value, Ref) else value


def build_path(rule, access: Access, ids, caller: Caller) -> str:
    values = {}
    for var in rule.arguments:
        if var == "project_id":
            values[var] = int(ids["project"])
        elif var == "token" and rule.endpoint.startswith("central."):
            values[var] = caller.api_token or caller.token or UNKNOWN_TOKEN
        elif var == "token":
            values[var] = caller.token or UNKNOWN_TOKEN
        else:
            values[var] = resolve(access.values.get(var, Ref(var)), ids)
    return rule.build(values, append_unknown=False)[1]


def digest(app, username: str, method: str, path: str) -> str:
    """HTTP Digest as Collect answers a challenge: plain http, one server nonce reused."""
    nonce = app.config.get("SWEEP_NONCE")
    if nonce is None:  # the server's challenge, answered from then on (as okhttp-digest does)
        challenge = app.test_client().get("/v1/projects/1/formList").headers["WWW-Authenticate"]
        nonce = app.config["SWEEP_NONCE"] = parse_dict_header(challenge.split(" ", 1)[1])["nonce"]
    md5 = lambda text: hashlib.md5(text.encode()).hexdigest()  # noqa: E731, S324
    ha1 = md5(f"{username}:{accounts.DIGEST_REALM}:{PASSWORD}")
    cnonce, nc = uuid.uuid4().hex, "00000001"
    response = md5(f"{ha1}:{nonce}:{nc}:{cnonce}:auth:{md5(f'{method}:{path}')}")
    return (f'Digest username="{username}", realm="{accounts.DIGEST_REALM}", '
            f'nonce="{nonce}", uri="{path}", qop=auth, nc={nc}, cnonce="{cnonce}", '
            f'response="{response}", algorithm=MD5')


def call(app, rule, method: str, access: Access, ids, caller: Caller):
    path = build_path(rule, access, ids, caller)
    query = {k: resolve(v, ids) for k, v in access.query.items()}
    headers, kw = {}, {}
    openrosa = rule.endpoint.startswith("openrosa.")
    api = rule.endpoint.startswith("central.")
    if caller.token:
        headers["Authorization"] = f"Bearer {caller.token}"
    if api:
        client = app.test_client(use_cookies=False)
        if caller.api_token:
            headers["Authorization"] = f"Bearer {caller.api_token}"
        if method == "POST":
            form = access.form(ids, caller.name) if callable(access.form) else {
                k: resolve(v, ids) for k, v in (access.form or {}).items()}
            kw["json"] = form
        return client.open(path, method=method, query_string=query, headers=headers, **kw)
    if openrosa:
        client = app.test_client(use_cookies=False)
        headers["X-OpenRosa-Version"] = "1.0"
        if caller.username and "<token>" not in rule.rule:
            headers["Authorization"] = digest(app, caller.username, method, path)
    else:
        client = caller.web.client
    if method == "POST":
        form = access.form(ids, caller.name) if callable(access.form) else {
            k: resolve(v, ids) for k, v in (access.form or {}).items()}
        if not openrosa:
            form["csrf_token"] = caller.csrf
        kw["data"] = form
    return client.open(path, method=method, query_string=query, headers=headers, **kw)


# What each answer must be ----------------------------------------------------------------------


def body_text(response) -> str:
    """The answer's text, with the members of a zip or .xlsx unpacked."""
    data = response.get_data()
    if data[:2] == b"PK":
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            return "\n".join(z.read(n).decode("utf-8", "replace") for n in z.namelist())
    return data.decode("utf-8", "replace")


def to_login(response) -> bool:
    return response.status_code == 302 and response.headers["Location"].startswith("/login")


def allowed(rule, access: Access, caller: str) -> bool:
    if caller not in ALLOWED[access.kind]:
        return False
    if rule.endpoint.startswith("openrosa."):
        # Token callers come in under the token prefix only, password users under the other.
        return (caller == "volunteer") == ("<token>" in rule.rule)
    return True


def verdict(rule, method: str, access: Access, caller: str, response) -> str | None:
    """None when the answer fits the role model, else what is wrong with it."""
    status = response.status_code
    if status >= 500:
        return f"server error {status}"
    openrosa = rule.endpoint.startswith("openrosa.")
    if caller in ("other_team", "other_project"):
        text = body_text(response)
        leaked = [n for n in TDP01_NAMES if n in text]
        if leaked:
            return f"shows tdp01's households {leaked}"
    if access.kind == "public":
        return None
    if allowed(rule, access, caller):
        if method == "POST" and access.ends_session:
            return None if to_login(response) else f"{status} instead of the login page"
        if to_login(response) or status not in access.reached:
            return f"refused ({status} {response.headers.get('Location', '')})"
        if status == 400 and "tải lại trang" in response.get_data(as_text=True):
            return "refused by the CSRF check"
        return None
    # Refused: how, by the kind of caller.
    if rule.endpoint.startswith("central."):
        if method == "OPTIONS" and status == 200 and not response.get_data():
            return None  # Flask's automatic OPTIONS: the methods, no data
        expected = ({401} if caller in ("anonymous", "volunteer", "revoked", "filler")
                    else {403, 404})
        if status not in expected:
            return f"{status}, expected {sorted(expected)}"
        if method != "HEAD" and not (response.is_json and "code" in response.get_json()):
            return "an error without Central's JSON body"
        return None
    if openrosa:
        if "<token>" in rule.rule:
            expected = {403}  # an unknown or revoked token, whatever else is sent
        elif caller in ("anonymous", "volunteer", "revoked"):
            expected = {401}  # no password user: a challenge
        else:
            expected = {403, 404}
        if status not in expected:
            return f"{status}, expected {sorted(expected)}"
        if status == 401 and not response.headers.get("WWW-Authenticate"):
            return "401 without a challenge"
        return None
    if caller in ("anonymous", "volunteer", "revoked"):
        return None if to_login(response) else f"{status} instead of the login page"
    if method == "OPTIONS" and status == 200 and not response.get_data():
        return None  # Flask's automatic OPTIONS: the methods, no data
    if caller == "filler":  # its home page is its forms; everything else says no
        if rule.endpoint == "web.dashboard" and method in ("GET", "HEAD"):
            return None if response.headers.get("Location") == "/fill" else f"{status}"
        return None if status == 403 else f"{status}, expected 403"
    return None if status in (403, 404) else f"{status}, expected 403 or 404"


def fingerprint(app) -> dict[str, str]:
    """A digest of every row, per table: what a refused write must leave as it was."""
    out = {}
    with app.extensions["db"].engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            digest = hashlib.sha256()
            order = list(table.primary_key.columns) or list(table.columns)
            for row in conn.execute(table.select().order_by(*order)):
                digest.update(repr(tuple(row)).encode())
            out[table.name] = digest.hexdigest()
    return out


# The sweep -------------------------------------------------------------------------------------


def swept_requests(app) -> list[tuple]:
    """(rule, method, access, caller, refused?) in three rounds: every read; every write that
    must be refused (what is stored is compared around this round); the allowed writes, logout
    last. HEAD runs the GET view and OPTIONS runs none (Flask answers it), so both are sent by
    the callers that must be refused: for the others they show nothing a GET does not."""
    reads, refused_writes, writes = [], [], []
    for rule in app.url_map.iter_rules():
        access = ACCESS.get(rule.endpoint)
        if access is None:
            continue  # reported by test_every_rule_has_a_declared_access
        for method in sorted(rule.methods):
            for caller in CALLERS:
                refused = access.kind != "public" and not allowed(rule, access, caller)
                item = (rule, method, access, caller, refused)
                if method != "POST":
                    if refused or method == "GET":
                        reads.append(item)
                else:
                    (refused_writes if refused else writes).append(item)
    writes.sort(key=lambda item: item[2].ends_session)
    return reads + refused_writes + writes


def test_every_rule_has_a_declared_access(app):
    missing = sorted({r.endpoint for r in app.url_map.iter_rules()} - set(ACCESS))
    assert not missing, ("no declared access for these endpoints; add each to ACCESS in "
                         f"{__name__.replace('.', '/')}.py: {missing}")
    assert not set(ACCESS) - {r.endpoint for r in app.url_map.iter_rules()}, "stale entries"


def test_every_rule_every_method_every_caller(app, swept):
    callers = make_callers(app, swept)
    problems, before = [], None
    requests = swept_requests(app)
    for rule, method, access, name, refused in requests:
        caller = callers[name]
        write = method == "POST"
        if write and refused and before is None:
            before = fingerprint(app)
        elif write and not refused and before is not None:
            changed = sorted(t for t, digest in fingerprint(app).items() if before[t] != digest)
            assert not changed, f"refused writes changed the tables {changed}"
            before = None
        if caller.stale:
            caller.refresh()
        response = call(app, rule, method, access, swept, caller)
        problem = verdict(rule, method, access, name, response)
        if problem:
            problems.append(f"{method} {rule.rule} as {name}: {problem}")
        response.close()
        caller.stale = write and access.ends_session and caller.username is not None
    assert before is None, "the sweep must end with allowed writes"
    assert not problems, "\n".join(problems)
    assert len(requests) >= 500


def sample_path(rule) -> str:
    """Any URL of the rule: the CSRF check answers before a view looks at its objects."""
    values = {name: 1 if type(conv).__name__ in ("IdConverter", "IntegerConverter") else "x"
              for name, conv in rule._converters.items()}
    return rule.build(values, append_unknown=False)[1]


def test_every_post_form_refuses_a_missing_or_foreign_csrf_token(app, ward, browser):
    admin, other = browser(remote_addr="10.2.0.1"), browser(remote_addr="10.2.0.2")
    assert admin.login("admin").status_code == 302
    assert other.login("sup1").status_code == 302
    foreign = csrf_token(other.get("/login").get_data(as_text=True))  # another session's
    checked, before = 0, fingerprint(app)
    for rule in app.url_map.iter_rules():
        if "POST" not in rule.methods or rule.endpoint.startswith(("openrosa.", "central.")):
            continue
        for token in (None, foreign):
            form = {"csrf_token": token} if token else {}
            response = admin.client.post(sample_path(rule), data=form)
            assert response.status_code == 400, (rule.rule, token, response.status_code)
            assert "tải lại trang" in response.get_data(as_text=True), rule.rule
            checked += 1
    assert checked >= 2 * 20
    after = fingerprint(app)
    assert not [t for t in before if before[t] != after[t]]
    assert admin.get("/").status_code == 200  # still logged in
