"""E1 `indicators_long` and E2 `report_wide` on a small ward built through Collect uploads.

Every expected number below was worked out by hand from the fixture (see the comments in
`build_ward`), never by calling the code under test. Tổ: tdp01 (10 official households),
tdp02 (8), tdp03 (5); the ward = 23.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select, update

from server.db.models import (
    DedupePair,
    HouseholdStatus,
    ServiceCheck,
    Submission,
    User,
    VolunteerTraining,
)
from server.domain import accounts, matching
from server.domain.dedupe import DEFAULT_CONFIG
from server.domain.ward import Tdp, load_ward_config
from server.exports.indicators import report_tables
from server.exports.tables import Table, csv_chunks
from tests.support import instances
from tests.support.collect import Collect, FlaskTransport
from tests.support.factories import make_ward

BASIC = "call_msg search install safety"
NOW = datetime(2026, 12, 3, 2, 0, tzinfo=UTC)  # generated_at 2026-12-03T09:00:00+07:00
CUTOFF = datetime(2026, 11, 30, 17, 0, tzinfo=UTC)  # 1 Dec 2026 00:00 in Vietnam


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


class Clock:
    """The server's upload time, set before each upload."""

    def __init__(self) -> None:
        self.now = at("2026-01-05T00:00:00")

    def __call__(self) -> datetime:
        return self.now


def member(name: str, year: int, sex: str, rel: str = "", *, smartphone="no", skills="none",
           vneid="none", dvc="no", cashless="no", digisig="no", vssid="no", ehealth="no",
           bdhvs="no", student="", trained="") -> dict[str, str]:
    return {"m_name_eff": name, "m_birth_year_eff": str(year), "m_sex_eff": sex, "m_rel": rel,
            "m_smartphone": smartphone, "m_skills": skills, "m_vneid": vneid, "m_dvc": dvc,
            "m_cashless": cashless, "m_digisig": digisig, "m_vssid": vssid,
            "m_ehealth": ehealth, "m_bdhvs": bdhvs, "m_student": student,
            "m_student_trained": trained}


@dataclass
class Built:
    """What the tests need to know about the fixture ward."""

    app: object
    ward: object  # WardConfig with three tổ
    project_id: int
    clock: Clock
    clients: dict[str, Collect]
    xforms: dict[str, bytes]
    hh: dict[str, str] = field(default_factory=dict)  # H1… → entity id (canonical)
    alias_b: str = ""  # the merged-away duplicate of H3
    members: dict[str, str] = field(default_factory=dict)  # name → member id
    visits: dict[str, str] = field(default_factory=dict)  # V1… → instance id
    h5_first_version: str = ""

    def tables(self, fn, **kw) -> dict[str, list[dict[str, str]]]:
        session = self.app.extensions["db"].session()
        try:
            kw.setdefault("timezone", "Asia/Ho_Chi_Minh")
            kw.setdefault("now", NOW)
            return {t.name: csv_rows(t) for t in fn(session, self.project_id, self.ward, **kw)}
        finally:
            session.close()


def csv_rows(table: Table) -> list[dict[str, str]]:
    """The table as people get it: the CSV text, read back."""
    text = "".join(csv_chunks(table))
    assert text.startswith("\ufeff") and "\r\n" in text
    return list(csv.DictReader(io.StringIO(text.removeprefix("\ufeff"))))


def _survey(b: Built, who: str, when: str, *, tdp: str, head: str = "", year: int = 0,
            sex: str = "", members=(), mode: str = "new", entity_id: str | None = None,
            consent: str = "yes", informed: str = "before", house: str = "1",
            phone: str = "", survey_date: str, hh: dict[str, str] | None = None,
            helper: str = "", location: str = "", contact: str = "met",
            instance_id: str | None = None, deprecated_id: str | None = None) -> str:
    entity_id = entity_id or str(uuid.uuid4())
    label = (f"Số {house} Đường Bình Thuận – {head} ({year})" if consent == "yes"
             else f"Số {house} Đường Bình Thuận – (chưa có thông tin chủ hộ)")
    values = {"g_intro/tdp": tdp, "g_intro/hh_mode": mode, "g_intro/contact_result": contact,
              "g_addr/street": "st01", "g_addr/house_no": house, "survey_date": survey_date,
              "today": survey_date, "entity_id": entity_id, "hh_label": label}
    if mode == "existing":
        values["g_intro/hh_existing"] = entity_id
    if contact == "met":
        values.update({"g_intro/consent": consent, "g_hh/hh_informed": informed})
    if contact == "met" and consent == "yes":
        values.update({
            "g_head/head_name": head, "g_head/head_birth_year": str(year),
            "g_head/head_sex": sex, "g_head/phone": phone, "g_head/phone_tail": phone[-3:],
            "g_head/phone_owner": "head" if phone else "", "g_head/id_ok": "no",
            "g_members/n_members": str(len(members)), "g_help/assigned_helper": helper,
            "g_end/location": location, **(hh or {})})
    met = contact == "met"
    entity = {"id": entity_id, "create": "1" if met and mode == "new" else "0",
              "update": "1" if met and mode == "existing" else "0",
              "baseVersion": "1" if mode == "existing" else "", "label": label}
    xml = instances.build(b.xforms["household_survey"], values,
                          repeats={"g_members/members": list(members)}, entity=entity,
                          instance_id=instance_id, deprecated_id=deprecated_id)
    b.clock.now = at(when)
    [response] = b.clients[who].submit(xml)
    assert response.status == 201
    return entity_id


def _visit(b: Built, who: str, when: str, *, entity_id: str, tdp: str, visit_date: str,
           blocks: list[dict[str, str]], minutes: int, satisfaction: str,
           followup: str = "", mode: str = "home") -> str:
    instance_id = f"uuid:{uuid.uuid4()}"
    values = {"g_hh/tdp": tdp, "g_hh/hh": entity_id, "g_hh/visit_date": visit_date,
              "g_hh/visit_mode": mode, "g_close/minutes": str(minutes),
              "g_close/followup_date": followup, "g_close/satisfaction": satisfaction,
              "g_close/update_status": "yes", "e_needs_followup": "yes" if followup else "no",
              "e_followup_date": followup, "e_last_visit": visit_date, "e_last_visitor": who,
              "today": visit_date}
    xml = instances.build(b.xforms["support_visit"], values, repeats={"g_svc/svc": blocks},
                          entity={"id": entity_id, "update": "1", "baseVersion": "1"},
                          instance_id=instance_id)
    b.clock.now = at(when)
    [response] = b.clients[who].submit(xml)
    assert response.status == 201
    return instance_id


def _member_ids(client: Collect) -> dict[str, str]:
    entry = next(f for f in client.form_list() if f["formID"] == "support_visit")
    media = next(m for m in client.manifest(entry) if m["filename"] == "members.csv")
    body = client.download_media(media).body.decode("utf-8")
    return {row["label"].rsplit(" – ", 1)[0]: row["name"]
            for row in csv.DictReader(io.StringIO(body))}


def _office(b: Built, *rows) -> None:
    session = b.app.extensions["db"].session(write=True)
    try:
        session.add_all(rows)
        session.commit()
    finally:
        session.close()


def _user_id(b: Built, username: str) -> int:
    session = b.app.extensions["db"].session()
    try:
        return session.scalar(select(User.id).where(User.username == username))
    finally:
        session.close()


def start_ward(app, monkeypatch, volunteers: list[tuple[str, str, str]],
               official: dict[str, int], inactive: tuple[str, ...] = ()) -> Built:
    """The fixture ward before its households: vol1 (tdp01) and `volunteers` (username, team,
    display name), all created on 5 Jan 2026 (`inactive` ones revoked), a Collect for each,
    the tổ with their official household counts, and the clock of the server's uploads."""
    clock = Clock()
    monkeypatch.setattr("server.domain.submissions.utcnow", clock)
    w = make_ward(app)
    session = app.extensions["db"].session(write=True)
    try:
        tokens = {"vol1": w.token}
        for username, team, display in volunteers:
            user = accounts.create_user(session, username, "volunteer", project_id=w.project_id,
                                        team=team, display_name=display).user
            tokens[username] = accounts.collect_token(session, user, app.config["SECRET_KEY"])
        session.execute(update(User).where(User.project_id == w.project_id)
                        .values(created_at=at("2026-01-05T00:00:00")))
        if inactive:
            session.execute(update(User).where(User.username.in_(inactive)).values(active=False))
        session.commit()
    finally:
        session.close()
    clients = {name: Collect(f"http://localhost/v1/key/{token}/projects/{w.project_id}",
                             FlaskTransport(app)) for name, token in tokens.items()}
    xforms = {f["formID"]: clients["vol1"].download_form(f) for f in clients["vol1"].form_list()}
    base = load_ward_config(Path(app.config["WARD_CONFIG"]))
    ward = dataclasses.replace(base, tdps=tuple(
        Tdp(code, f"Tổ dân phố {int(code[3:])}", f"Residential group {int(code[3:])}", n)
        for code, n in official.items()))
    return Built(app=app, ward=ward, project_id=w.project_id, clock=clock, clients=clients,
                 xforms=xforms)


def build_ward(app, monkeypatch) -> Built:
    """The fixture ward. Ages are 2026 − birth year; adults are 15+.

    tdp01  H1 Nguyễn Văn An (surveyed 5 Oct): An 1970 (basic, VNeID none → l1 by visit V1 on
              10 Nov, DVC yes), Bình 1975 (no basic, l2), Cường 2009 (student, DVC dk).
              Business, no cashless until V2 (22 Nov, ward volunteer) makes biz_qr done.
           H2 "=Lê Văn Dũng" 1950, surveyed 1 Nov 2026 but uploaded 31 Oct 18:30 UTC;
              VNeID dk, nothing else; declined to be informed; helper vol1.
           H3 Phạm Văn Đức, surveyed twice as new (3 Nov by vol1, 4 Nov by volw): merged.
              The second survey adds Lê Thị Mai (l1, DVC no, digital signature dk); V3 (6 Nov)
              names the merged-away entity and gives Mai a DVC account (free-text name).
    tdp02  H4 Hoàng Thị Hoa: consented on 10 Oct (a digital citizen, business with
              cashless), refused on 15 Nov: known and informed, no longer consented.
           H5 Đỗ Văn Hải: surveyed 12 Nov, edited on 13 Nov (only the edit counts): Hải l2 and
              DVC; Lan l1 with DVC, cashless and Bình dân học vụ số dk. OCOP business selling
              on social media. V4 (14 Nov): ecommerce done; VssID partial, done for Lan only.
           H7 Vũ Văn Khoa 1960 (surveyed 20 Oct), moved out on 18 Nov (office record).
           H6 Bùi Văn Long, surveyed 28 Nov but uploaded 2 Dec (after the cut-off).
    tdp03  H8 Nguyễn Văn Hùng and H9 Nguyễn Văn Hưng, same house: a pending review pair.
    Volunteers: vol1 (tdp01, trained Mar 2026), sup1 (leader tdp01, untrained), vol2 (tdp02,
    trained Dec 2025), volw (ward level, trained 10 Nov 2026).
    """
    b = start_ward(app, monkeypatch, [("vol2", "tdp02", "Lò Văn Tám"),
                                      ("volw", "ward", "Đinh Thị Hà")],
                   {"tdp01": 10, "tdp02": 8, "tdp03": 5})

    b.hh["H1"] = _survey(
        b, "vol1", "2026-10-05T03:00:00", tdp="tdp01", head="Nguyễn Văn An", year=1970,
        sex="male", house="7", phone="0912000001", survey_date="2026-10-05", helper="vol1",
        location="21.82 105.21 0 5",
        hh={"g_hh/hh_channels": "zalo meeting", "g_hh/hh_internet": "mobile",
            "g_hh/hh_pupils": "yes", "g_hh/hh_school_app": "no", "g_hh/hh_business": "yes",
            "g_hh/biz_registered": "yes", "g_hh/biz_type": "retail",
            "g_hh/biz_cashless": "no", "g_hh/biz_ocop": "no", "g_hh/biz_online": "none"},
        members=[
            member("Nguyễn Văn An", 1970, "male", smartphone="yes", skills=BASIC, dvc="yes",
                   cashless="yes", vssid="yes"),
            member("Trần Thị Bình", 1975, "female", "spouse", smartphone="yes",
                   skills="call_msg", vneid="l2", cashless="yes", ehealth="yes"),
            member("Nguyễn Văn Cường", 2009, "male", "child", smartphone="yes", skills=BASIC,
                   vneid="l1", dvc="dk", digisig="", bdhvs="yes", student="yes",
                   trained="yes"),
        ])
    b.hh["H4"] = _survey(
        b, "vol2", "2026-10-10T03:00:00", tdp="tdp02", head="Hoàng Thị Hoa", year=1980,
        sex="female", house="21", phone="0977000004", survey_date="2026-10-10",
        informed="now",
        hh={"g_hh/hh_pupils": "no", "g_hh/hh_business": "yes", "g_hh/biz_registered": "no",
            "g_hh/biz_type": "food", "g_hh/biz_cashless": "yes",
            "g_hh/biz_pay_methods": "qr_bank", "g_hh/biz_ocop": "no",
            "g_hh/biz_online": "social"},
        members=[member("Hoàng Thị Hoa", 1980, "female", smartphone="yes", skills=BASIC,
                        vneid="l2", dvc="yes", cashless="yes", vssid="yes", ehealth="yes")])
    b.hh["H7"] = _survey(
        b, "vol2", "2026-10-20T03:00:00", tdp="tdp02", head="Vũ Văn Khoa", year=1960,
        sex="male", house="33", survey_date="2026-10-20", helper="vol2",
        hh={"g_hh/hh_pupils": "no", "g_hh/hh_business": "no"},
        members=[member("Vũ Văn Khoa", 1960, "male")])
    # 1 Nov 01:30 in Vietnam is still 31 Oct in UTC: the survey belongs to November.
    b.hh["H2"] = _survey(
        b, "vol1", "2026-10-31T18:30:00", tdp="tdp01", head="=Lê Văn Dũng", year=1950,
        sex="male", house="9", survey_date="2026-11-01", informed="no", helper="vol1",
        hh={"g_hh/hh_pupils": "no", "g_hh/hh_business": "no"},
        members=[member("=Lê Văn Dũng", 1950, "male", vneid="dk")])
    _survey(b, "vol1", "2026-11-02T03:00:00", tdp="tdp01", house="40", contact="absent",
            survey_date="2026-11-02")  # nobody at home: no snapshot, no household
    family = [member("Phạm Văn Đức", 1975, "male", smartphone="yes", skills=BASIC, vneid="l2",
                     dvc="yes", cashless="yes", digisig="yes", vssid="yes", ehealth="yes",
                     bdhvs="yes")]
    b.hh["H3"] = _survey(
        b, "vol1", "2026-11-03T03:00:00", tdp="tdp01", head="Phạm Văn Đức", year=1975,
        sex="male", house="15", phone="0983123456", survey_date="2026-11-03",
        location="21.8 105.2 0 12", hh={"g_hh/hh_pupils": "no", "g_hh/hh_business": "no"},
        members=family)
    b.alias_b = _survey(
        b, "volw", "2026-11-04T03:00:00", tdp="tdp01", head="Phạm Văn Đức", year=1975,
        sex="male", house="15", phone="0983123456", survey_date="2026-11-04",
        location="21.81 105.21 0 4", hh={"g_hh/hh_pupils": "no", "g_hh/hh_business": "no"},
        members=[*family, member("Lê Thị Mai", 1978, "female", "spouse", smartphone="yes",
                                 skills=BASIC, vneid="l1", cashless="yes", digisig="dk")])
    for key, head, when, day in (("H8", "Nguyễn Văn Hùng", "2026-11-05T03:00:00", "2026-11-05"),
                                 ("H9", "Nguyễn Văn Hưng", "2026-11-07T03:00:00", "2026-11-07")):
        b.hh[key] = _survey(
            b, "volw", when, tdp="tdp03", head=head, year=1970, sex="male", house="5",
            survey_date=day, hh={"g_hh/hh_pupils": "no", "g_hh/hh_business": "no"},
            members=[member(head, 1970, "male")])
    b.visits["V3"] = _visit(
        b, "vol1", "2026-11-06T03:00:00", entity_id=b.alias_b, tdp="tdp01",
        visit_date="2026-11-06", minutes=15, satisfaction="na", mode="remote",
        blocks=[{"svc_code": "dvc_account", "svc_level": "person",
                 "svc_member_other": "Le Thi Mai", "svc_outcome": "done"}])
    b.members.update(_member_ids(b.clients["vol1"]))
    b.visits["V1"] = _visit(
        b, "vol1", "2026-11-10T03:00:00", entity_id=b.hh["H1"], tdp="tdp01",
        visit_date="2026-11-10", minutes=40, satisfaction="very", followup="2026-11-20",
        blocks=[{"svc_code": "vneid_l1", "svc_level": "person",
                 "svc_members": b.members["Nguyễn Văn An"], "svc_outcome": "done"},
                {"svc_code": "biz_qr", "svc_level": "household", "svc_outcome": "followup",
                 "svc_reason": "missing_docs"}])
    h5_first = f"uuid:{uuid.uuid4()}"
    b.hh["H5"] = _survey(
        b, "vol2", "2026-11-12T03:00:00", tdp="tdp02", head="Đỗ Văn Hải", year=1990,
        sex="male", house="50", survey_date="2026-11-12", informed="now",
        instance_id=h5_first,
        hh={"g_hh/hh_pupils": "no", "g_hh/hh_business": "no"},
        members=[member("Đỗ Văn Hải", 1990, "male", smartphone="yes", skills="call_msg search"),
                 member("Đỗ Thị Lan", 1992, "female", "spouse", smartphone="yes",
                        skills="call_msg")])
    b.h5_first_version = h5_first
    _survey(  # the edit: only this version counts from now on
        b, "vol2", "2026-11-13T03:00:00", tdp="tdp02", head="Đỗ Văn Hải", year=1990,
        sex="male", house="50", survey_date="2026-11-12", informed="now",
        entity_id=b.hh["H5"], deprecated_id=h5_first,
        hh={"g_hh/hh_pupils": "no", "g_hh/hh_business": "yes", "g_hh/biz_registered": "no",
            "g_hh/biz_type": "agri", "g_hh/biz_cashless": "no", "g_hh/biz_ocop": "yes",
            "g_hh/biz_ocop_name": "Chè Shan tuyết", "g_hh/biz_online": "social"},
        members=[member("Đỗ Văn Hải", 1990, "male", smartphone="yes", skills=BASIC,
                        vneid="l2", dvc="yes", cashless="yes", ehealth="yes"),
                 member("Đỗ Thị Lan", 1992, "female", "spouse", smartphone="yes",
                        skills=BASIC, vneid="l1", dvc="dk", cashless="dk", bdhvs="dk")])
    b.members.update(_member_ids(b.clients["vol2"]))
    hai, lan = b.members["Đỗ Văn Hải"], b.members["Đỗ Thị Lan"]
    b.visits["V4"] = _visit(
        b, "vol2", "2026-11-14T03:00:00", entity_id=b.hh["H5"], tdp="tdp02",
        visit_date="2026-11-14", minutes=40, satisfaction="neutral", followup="2026-12-05",
        blocks=[{"svc_code": "ecommerce", "svc_level": "household", "svc_outcome": "done"},
                {"svc_code": "vssid", "svc_level": "person", "svc_members": f"{hai} {lan}",
                 "svc_outcome": "partial", "svc_members_done": lan,
                 "svc_reason": "not_ready"}])
    _survey(b, "vol2", "2026-11-15T03:00:00", tdp="tdp02", mode="existing",
            entity_id=b.hh["H4"], consent="no", informed="no", house="21",
            survey_date="2026-11-15")  # the refusal withdraws consent
    b.visits["V2"] = _visit(
        b, "volw", "2026-11-22T03:00:00", entity_id=b.hh["H1"], tdp="tdp01",
        visit_date="2026-11-22", minutes=20, satisfaction="yes",
        blocks=[{"svc_code": "biz_qr", "svc_level": "household", "svc_outcome": "done"},
                {"svc_code": "vneid_l1", "svc_level": "person",
                 "svc_members": b.members["Nguyễn Văn An"], "svc_outcome": "done"}])

    session = app.extensions["db"].session()
    try:
        v1_submission = session.scalar(select(Submission.id).where(
            Submission.instance_id == b.visits["V1"]))
    finally:
        session.close()
    _office(
        b,
        HouseholdStatus(project_id=b.project_id, entity_id=b.hh["H7"], status="moved_out",
                        date="2026-11-18", created_at=at("2026-11-18T05:00:00")),
        VolunteerTraining(project_id=b.project_id, user_id=_user_id(b, "vol1"),
                          date="2026-03-10", topic="VNeID", created_at=at("2026-03-10T09:00:00")),
        VolunteerTraining(project_id=b.project_id, user_id=_user_id(b, "vol2"),
                          date="2025-12-01", topic="DVC", created_at=at("2025-12-01T09:00:00")),
        VolunteerTraining(project_id=b.project_id, user_id=_user_id(b, "volw"),
                          date="2026-11-10", topic="An toàn số",
                          created_at=at("2026-11-10T09:00:00")),
        ServiceCheck(project_id=b.project_id, submission_id=v1_submission,
                     service_code="vneid_l1", member_id=b.members["Nguyễn Văn An"],
                     verified=True, checked_at=at("2026-11-25T03:00:00")),
    )
    return b


def upload_late(b: Built) -> None:
    """H6, surveyed on 28 Nov but uploaded on 2 Dec, after the 1 Dec cut-off."""
    b.hh["H6"] = _survey(
        b, "vol2", "2026-12-02T03:00:00", tdp="tdp02", head="Bùi Văn Long", year=1985,
        sex="male", house="60", survey_date="2026-11-28",
        hh={"g_hh/hh_pupils": "no", "g_hh/hh_business": "no"},
        members=[member("Bùi Văn Long", 1985, "male", smartphone="yes", skills=BASIC,
                        vneid="l2", dvc="yes", cashless="yes")])


@pytest.fixture
def built(app, monkeypatch) -> Built:
    return build_ward(app, monkeypatch)


SCOPES = ("tdp01", "tdp02", "tdp03", "WARD")
E = ("0", "0", "0", "")  # nothing to count
# (numerator, denominator, n_unknown, value_pct) per scope, at T = 30 Nov 2026.
NOVEMBER = {
    "I00": [("3", "10", "0", "30.0"), ("2", "8", "0", "25.0"), ("2", "5", "0", "40.0"),
            ("7", "23", "0", "30.4")],
    "I01": [("1", "1", "0", "100.0"), E, E, ("1", "1", "0", "100.0")],
    "I02": [("3", "6", "1", "50.0"), ("1", "2", "1", "50.0"), ("0", "2", "0", "0.0"),
            ("4", "10", "2", "40.0")],
    "I02a": [("4", "6", "0", "66.7"), ("2", "2", "0", "100.0"), ("0", "2", "0", "0.0"),
             ("6", "10", "0", "60.0")],
    "I02b": [("4", "6", "1", "66.7"), ("1", "2", "1", "50.0"), ("0", "2", "0", "0.0"),
             ("5", "10", "2", "50.0")],
    "I03": [("2", "3", "0", "66.7"), ("2", "2", "0", "100.0"), ("2", "2", "0", "100.0"),
            ("6", "7", "0", "85.7")],
    "I04": [("2", "3", "0", "66.7"), ("1", "1", "0", "100.0"), ("0", "2", "0", "0.0"),
            ("3", "6", "0", "50.0")],
    "I04a": [("2", "3", "0", "66.7"), ("1", "1", "0", "100.0"), ("0", "2", "0", "0.0"),
             ("3", "6", "0", "50.0")],
    "I04b": [("2", "3", "1", "66.7"), ("1", "1", "0", "100.0"), ("0", "2", "0", "0.0"),
             ("3", "6", "1", "50.0")],
    "I04c": [("2", "3", "0", "66.7"), ("1", "1", "0", "100.0"), ("0", "2", "0", "0.0"),
             ("3", "6", "0", "50.0")],
    "I05": [("1", "1", "0", "100.0"), E, ("0", "2", "0", "0.0"), ("1", "3", "0", "33.3")],
    "I06": [("1", "1", "0", "100.0"), ("0", "1", "0", "0.0"), E, ("1", "2", "0", "50.0")],
    "I06a": [("1", "1", "0", "100.0"), ("0", "1", "0", "0.0"), E, ("1", "2", "0", "50.0")],
    "I07": [("1", "2", "0", "50.0"), ("0", "1", "0", "0.0"), E, ("2", "4", "0", "50.0")],
    "I08": [("1", "5", "1", "20.0"), ("0", "2", "0", "0.0"), ("0", "2", "0", "0.0"),
            ("1", "9", "1", "11.1")],
    "I09": [("2", "6", "1", "33.3"), ("1", "2", "0", "50.0"), ("0", "2", "0", "0.0"),
            ("3", "10", "1", "30.0")],
    "I10": [("3", "6", "1", "50.0"), ("1", "2", "1", "50.0"), ("0", "2", "0", "0.0"),
            ("4", "10", "2", "40.0")],
    "I11": [("4", "6", "0", "66.7"), ("1", "2", "1", "50.0"), ("0", "2", "0", "0.0"),
            ("5", "10", "1", "50.0")],
    "I12": [("2", "6", "0", "33.3"), ("1", "2", "0", "50.0"), ("0", "2", "0", "0.0"),
            ("3", "10", "0", "30.0")],
    "I13": [("2", "6", "0", "33.3"), ("1", "2", "0", "50.0"), ("0", "2", "0", "0.0"),
            ("3", "10", "0", "30.0")],
    "I14": [("0", "1", "0", "0.0"), E, E, ("0", "1", "0", "0.0")],
    "I15": [E, ("1", "1", "0", "100.0"), E, ("1", "1", "0", "100.0")],
    "I16": [("2", "6", "0", "33.3"), ("0", "2", "1", "0.0"), ("0", "2", "0", "0.0"),
            ("2", "10", "1", "20.0")],
    "I17": [("5", "6", "0", "83.3"), ("2", "2", "0", "100.0"), ("0", "2", "0", "0.0"),
            ("7", "10", "0", "70.0")],
}
# Flows: A01 surveyed, A02 new, A03 visits, A04 helped, A05 unique completions, A06 minutes,
# A07 follow-ups due, A08 on time. tdp01: V3 (15 min), V1 (40), V2 (20); tdp02: V4 (40).
ACTIVITY_MONTH = {"tdp01": [2, 2, 3, 2, 3, 75, 1, 1], "tdp02": [2, 1, 1, 1, 2, 40, 0, 0],
                  "tdp03": [2, 2, 0, 0, 0, 0, 0, 0], "WARD": [6, 5, 4, 3, 5, 115, 1, 1]}
ACTIVITY_YTD = {"tdp01": [3, 3, 3, 2, 3, 75, 1, 1], "tdp02": [3, 3, 1, 1, 2, 40, 0, 0],
                "tdp03": [2, 2, 0, 0, 0, 0, 0, 0], "WARD": [8, 8, 4, 3, 5, 115, 1, 1]}
ACTIVITY = ("A01", "A02", "A03", "A04", "A05", "A06", "A07", "A08")


def long_index(rows) -> dict[tuple[str, str, str], dict[str, str]]:
    return {(r["period_type"], r["tdp_code"], r["indicator_code"]): r for r in rows}


def test_columns_are_exactly_the_spec(built):
    out = built.tables(report_tables, period="2026-11")
    assert list(out) == ["indicators_long", "report_wide"]
    long_header = ("period_type,period_start,period_end,scope,tdp_code,tdp_name,indicator_code,"
                   "indicator_name_vi,indicator_name_en,numerator,denominator,n_unknown,"
                   "value_pct,target_pct,target_rule,met,prev_value_pct,change_pp,"
                   "pending_review_pairs,data_cutoff,generated_at")
    assert ",".join(out["indicators_long"][0]) == long_header
    assert ",".join(out["report_wide"][0]).startswith(
        "period_type,period_start,period_end,tdp_code,tdp_name,n_households_official,")
    assert list(out["report_wide"][0])[-3:] == [
        "A08_followups_on_time", "pending_review_pairs", "data_cutoff"]
    # one row per configured tổ plus WARD, for the month and the year to date
    assert [(r["period_type"], r["tdp_code"]) for r in out["report_wide"]] == [
        (p, t) for p in ("month", "ytd") for t in SCOPES]
    assert {r["tdp_name"] for r in out["report_wide"] if r["tdp_code"] == "WARD"} == {""}


def test_every_indicator_by_hand(built):
    rows = long_index(built.tables(report_tables, period="2026-11")["indicators_long"])
    for period_type in ("month", "ytd"):  # status indicators are read at T = 30 Nov for both
        for code, expected in NOVEMBER.items():
            for scope, want in zip(SCOPES, expected, strict=True):
                r = rows[(period_type, scope, code)]
                got = (r["numerator"], r["denominator"], r["n_unknown"], r["value_pct"])
                assert got == want, (period_type, scope, code)
    for period_type, table in (("month", ACTIVITY_MONTH), ("ytd", ACTIVITY_YTD)):
        for scope, values in table.items():
            got = [int(rows[(period_type, scope, code)]["numerator"]) for code in ACTIVITY]
            assert got == values, (period_type, scope)
    month = rows[("month", "tdp01", "I00")]
    assert (month["period_start"], month["period_end"]) == ("2026-11-01", "2026-11-30")
    ytd = rows[("ytd", "WARD", "I00")]
    assert (ytd["period_start"], ytd["period_end"], ytd["scope"]) == (
        "2026-01-01", "2026-11-30", "ward")
    assert rows[("month", "tdp02", "I04")]["indicator_name_vi"] == (
        'Hộ có ít nhất 1 "công dân số"')


def test_targets_previous_period_and_change(built):
    rows = long_index(built.tables(report_tables, period="2026-11")["indicators_long"])

    def cells(scope, code, period_type="month"):
        r = rows[(period_type, scope, code)]
        return (r["target_pct"], r["target_rule"], r["met"], r["prev_value_pct"],
                r["change_pp"])

    # 31 Oct: H1 (tdp01); H4 and H7 (tdp02). H2 is dated 1 Nov although uploaded on 31 Oct UTC.
    assert cells("tdp01", "I00") == ("100.0", ">=100", "0", "10.0", "20.0")
    assert cells("WARD", "I00") == ("100.0", ">=100", "0", "13.0", "17.4")
    # On 31 Oct An had no VNeID yet and Cường's DVC was dk: H1 was unknown, not a citizen.
    assert cells("tdp01", "I04") == ("100.0", ">=100", "0", "0.0", "66.7")
    assert cells("tdp02", "I04") == ("100.0", ">=100", "1", "50.0", "50.0")
    assert cells("WARD", "I04") == ("100.0", ">=100", "0", "33.3", "16.7")
    # I08 must increase: 20.0 > 0.0 (tdp01), 0.0 = 0.0 (tdp02), nothing to compare (tdp03)
    assert cells("tdp01", "I08") == ("", "increase", "1", "0.0", "20.0")
    assert cells("tdp02", "I08") == ("", "increase", "0", "0.0", "0.0")
    assert cells("tdp03", "I08") == ("", "increase", "", "", "")
    assert cells("WARD", "I08") == ("", "increase", "1", "0.0", "11.1")
    assert cells("tdp02", "I03") == ("100.0", ">=100", "1", "100.0", "0.0")
    # 31 Oct, H1 only: An had no VNeID, Bình no basic skills, Cường unknown (DVC dk)
    assert cells("tdp01", "I02") == ("80.0", ">=80", "0", "0.0", "50.0")
    # 31 Oct: Bình and Hoa at level 2 among An, Bình, Cường, Hoa and Khoa
    assert cells("WARD", "I09") == ("", "", "", "40.0", "-10.0")
    # year to date: the previous period is the same span of 2025, before any data
    assert cells("tdp01", "I00", "ytd") == ("100.0", ">=100", "0", "0.0", "30.0")
    assert cells("tdp01", "I04", "ytd")[3:] == ("", "")
    assert cells("WARD", "A03") == ("", "", "", "", "")


def test_ward_row_is_the_sum_of_the_tdp_rows(built):
    out = built.tables(report_tables, period="2026-11")
    rows = out["indicators_long"]
    for period_type in ("month", "ytd"):
        for code in (*NOVEMBER, *ACTIVITY):
            if code == "I07":
                continue  # the ward row also counts the ward-level team (§6.4)
            mine = [r for r in rows if r["period_type"] == period_type
                    and r["indicator_code"] == code]
            ward = next(r for r in mine if r["tdp_code"] == "WARD")
            parts = [r for r in mine if r["tdp_code"] != "WARD"]
            for column in ("numerator", "denominator", "n_unknown"):
                if ward[column] != "":
                    assert int(ward[column]) == sum(int(r[column]) for r in parts), (code, column)
    wide = out["report_wide"]
    for period_type in ("month", "ytd"):
        mine = [r for r in wide if r["period_type"] == period_type]
        ward = mine[-1]
        for column in wide[0]:
            if column.endswith(("_num", "_den")) or column.startswith(("n_", "A0")):
                if column.startswith("I07"):
                    continue
                assert int(ward[column]) == sum(int(r[column]) for r in mine[:-1]), column


def test_report_wide_by_hand(built):
    wide = built.tables(report_tables, period="2026-11")["report_wide"]
    month = {r["tdp_code"]: r for r in wide if r["period_type"] == "month"}
    t1 = month["tdp01"]
    assert t1["tdp_name"] == "Tổ dân phố 1"
    assert [t1[c] for c in ("n_households_official", "n_households_known",
                            "n_households_consented", "n_members", "n_adults")] == [
        "10", "3", "3", "6", "6"]
    assert [t1[c] for c in ("I00_pct", "I01_num", "I01_den", "I01_pct", "I02_num", "I02_den",
                            "I02_pct", "I02a_pct", "I02b_pct", "I05_num", "I05_den", "I05_pct",
                            "I07_num", "I07_den", "I07_pct", "I08_pct")] == [
        "30.0", "1", "1", "100.0", "3", "6", "50.0", "66.7", "66.7", "1", "1", "100.0", "1",
        "2", "50.0", "20.0"]
    assert [t1[c] for c in ("A01_households_surveyed", "A02_new_households", "A03_visits",
                            "A04_households_helped", "A05_unique_completions", "A06_minutes",
                            "A07_followups_due", "A08_followups_on_time")] == [
        "2", "2", "3", "2", "3", "75", "1", "1"]
    # tdp02: H4 refused (known, not consented), H7 moved out (not known)
    assert [month["tdp02"][c] for c in ("n_households_known", "n_households_consented",
                                        "n_members", "I06_num", "I06_den", "I06_pct")] == [
        "2", "1", "2", "0", "1", "0.0"]
    assert [month["tdp03"][c] for c in ("I01_pct", "I06_pct", "I07_den", "I07_pct")] == [
        "", "", "0", ""]
    ward = month["WARD"]
    assert ward["tdp_name"] == "" and ward["n_households_official"] == "23"
    assert [ward[c] for c in ("n_households_known", "n_households_consented", "n_members",
                              "n_adults", "I00_pct", "I07_num", "I07_den")] == [
        "7", "6", "10", "10", "30.4", "2", "4"]
    # the Hùng/Hưng pair of tdp03 waits for a supervisor
    assert {t: month[t]["pending_review_pairs"] for t in SCOPES} == {
        "tdp01": "0", "tdp02": "0", "tdp03": "1", "WARD": "1"}
    assert {r["data_cutoff"] for r in wide} == {"2026-11-22T10:00:00+07:00"}


def test_month_boundary_is_cut_in_vietnam_time(built):
    rows = long_index(built.tables(report_tables, period="2026-10")["indicators_long"])
    # H2's survey (1 Nov local, uploaded 31 Oct 18:30 UTC) is not an October survey
    assert rows[("month", "tdp01", "A01")]["numerator"] == "1"
    assert rows[("month", "tdp01", "I00")]["numerator"] == "1"
    assert rows[("month", "tdp01", "I00")]["period_end"] == "2026-10-31"
    assert rows[("month", "tdp02", "A01")]["numerator"] == "2"  # H4 and H7
    assert rows[("month", "WARD", "A03")]["numerator"] == "0"


def test_quarter_and_year_periods(built):
    quarter = built.tables(report_tables, period="2026-Q4")["report_wide"]
    assert {(r["period_type"], r["period_start"], r["period_end"]) for r in quarter} == {
        ("quarter", "2026-10-01", "2026-12-31"), ("ytd", "2026-01-01", "2026-12-31")}
    q = next(r for r in quarter if r["period_type"] == "quarter" and r["tdp_code"] == "WARD")
    assert (q["A01_households_surveyed"], q["A02_new_households"], q["A06_minutes"]) == (
        "8", "8", "115")
    year = built.tables(report_tables, period="2026")["indicators_long"]
    assert {r["period_type"] for r in year} == {"ytd"}
    with pytest.raises(ValueError):
        built.tables(report_tables, period="2026-13")


def test_edit_counts_only_its_latest_version(built):
    # As of 12 Nov noon UTC the edit, V4, the refusal and the move-out were not in yet:
    # tdp02 had H4 (a digital citizen), H7 and H5 as first sent (nobody with VNeID).
    rows = long_index(built.tables(report_tables, period="2026-11",
                                   as_of=at("2026-11-12T12:00:00"))["indicators_long"])
    assert (rows[("month", "tdp02", "I04")]["numerator"],
            rows[("month", "tdp02", "I04")]["denominator"]) == ("1", "3")
    assert rows[("month", "tdp02", "I02a")]["numerator"] == "1"  # only Hoa
    now = long_index(built.tables(report_tables, period="2026-11")["indicators_long"])
    assert now[("month", "tdp02", "I02a")]["numerator"] == "2"  # Hải and Lan, once each


def test_late_upload_after_the_cutoff_changes_nothing(built):
    before = built.tables(report_tables, period="2026-11")
    upload_late(built)
    frozen = built.tables(report_tables, period="2026-11", as_of=CUTOFF)
    assert frozen == before
    # an as_of equal to the recorded data_cutoff reproduces it too
    cutoff = datetime.fromisoformat(before["report_wide"][0]["data_cutoff"])
    assert built.tables(report_tables, period="2026-11", as_of=cutoff) == before
    live = long_index(built.tables(report_tables, period="2026-11")["indicators_long"])
    assert live[("month", "tdp02", "I00")]["numerator"] == "3"  # H6, dated 28 Nov, now counts
    assert live[("month", "tdp02", "I00")]["data_cutoff"] == "2026-12-02T10:00:00+07:00"
    assert live[("month", "tdp02", "I00")]["generated_at"] == "2026-12-03T09:00:00+07:00"


def test_a_decision_after_the_cutoff_is_ignored(built, monkeypatch):
    before = built.tables(report_tables, period="2026-11")
    monkeypatch.setattr("server.domain.matching.utcnow", lambda: at("2026-12-02T05:00:00"))
    session = built.app.extensions["db"].session(write=True)
    try:
        pair = session.scalar(select(DedupePair).where(DedupePair.status == "pending"))
        admin = session.scalar(select(User).where(User.username == "admin"))
        matching.decide(session, pair.id, "merge", admin, DEFAULT_CONFIG)
        session.commit()
    finally:
        session.close()
    assert built.tables(report_tables, period="2026-11", as_of=CUTOFF) == before
    merged = long_index(built.tables(report_tables, period="2026-11")["indicators_long"])
    assert merged[("month", "tdp03", "I00")]["numerator"] == "1"
    assert merged[("month", "tdp03", "I00")]["pending_review_pairs"] == "0"
