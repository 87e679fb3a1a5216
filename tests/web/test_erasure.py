"""Erasure on request (Law 91/2025/QH15): the person's values leave every stored version, the
derived rows, the database files and the blob store; exports and counts keep working; only an
admin may do it, and the audit log says who, when, why and which fields, never the values."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest
from sqlalchemy import select

from server.db.models import (
    Attachment,
    AuditEntry,
    Base,
    Entity,
    HouseholdMember,
    SubmissionVersion,
)
from server.domain.erasure import redactor
from server.xml import local_name, parse_xml
from tests.openrosa.conftest import rows
from tests.openrosa.test_entities import households_csv, survey
from tests.support import instances
from tests.web.conftest import csrf_token

HEAD, MEMBER, PHONE = "Phạm Thị Xuyến", "Lò Văn Pình", "0912345678"
LABEL = f"Số 12 Đường Bình Thuận – {HEAD} (1971)"
FOLDED = ("xuyen", "pinh")  # the names as someone might type them without marks


def _household(collect, xforms, member_name=MEMBER) -> tuple[str, bytes, bytes]:
    """A consented survey naming two people, then a visit that types the member's name."""
    members = [{"m_name_eff": HEAD, "m_birth_year_eff": "1971", "m_sex_eff": "female",
                "m_age": "55", "m_vneid": "l2"},
               {"m_name": member_name, "m_name_eff": member_name, "m_birth_year": "1995",
                "m_birth_year_eff": "1995", "m_age": "31", "m_sex_eff": "male",
                "m_rel": "child"}]
    hid, xml = survey(xforms, head=HEAD, label=LABEL, extra={
        "g_head/phone": PHONE, "g_head/phone_owner": "head", "g_head/phone_tail": "678",
        "g_head/head_id": "001171012345", "g_head/head_birth_year": "1971",
        "g_members/n_members": "2", "g_end/location": "21.82 105.21 0 5",
        "g_end/house_photo": "house.jpg", "g_end/notes": f"Bà {HEAD} hẹn gọi 0912 345 678",
        "meta/instanceName": f"tdp01 – {LABEL}"}, repeats={"g_members/members": members})
    assert collect.submit(xml, {"house.jpg": f"JPEG {HEAD}".encode()})[0].status == 201
    visit = instances.build(xforms["support_visit"], {
        "g_hh/tdp": "tdp01", "g_hh/hh": hid, "g_hh/hh_label": LABEL,
        "g_hh/visit_date": "2026-11-22", "g_close/minutes": "30", "g_close/photo": "ev.jpg",
        "g_close/notes": f"{member_name} học cài VNeID", "g_close/update_status": "yes"},
        repeats={"g_svc/svc": [{"svc_code": "vneid_l1", "svc_level": "person",
                                "svc_member_other": member_name, "svc_outcome": "done"}]})
    assert collect.submit(visit, {"ev.jpg": f"JPEG {member_name}".encode()})[0].status == 201
    return hid, xml, visit


def _dump(app) -> str:
    """Every value of every table as text (JSON without escapes): a logical database dump."""
    session = app.extensions["db"].session()
    out = []
    try:
        for table in Base.metadata.sorted_tables:
            for row in session.execute(select(table)):
                for value in row:
                    if isinstance(value, bytes):
                        value = value.decode("utf-8", "replace")
                    elif isinstance(value, (dict, list)):
                        value = json.dumps(value, ensure_ascii=False)
                    out.append(str(value))
    finally:
        session.close()
    return "\n".join(out)


def _raw_files(app) -> bytes:
    """The bytes of the blob store and, on SQLite, of the database files themselves."""
    data = Path(app.config["DATA_DIR"])
    return b"".join(p.read_bytes() for p in sorted(data.rglob("*")) if p.is_file()
                    and (p.parent.parent.name == "blobs" or p.name.startswith("server.db")))


def _forbidden(names) -> list[bytes]:
    out = []
    for name in names:
        out += [name.encode(), json.dumps(name)[1:-1].encode()]  # raw and JSON-escaped
    return out


def _tables(cli, tmp_path, kind, *extra) -> dict[str, list[dict]]:
    out = tmp_path / f"{kind}-{len(list(tmp_path.iterdir()))}"
    result = cli("export", kind, "--out", str(out), *extra)
    assert result.exit_code == 0, result.output
    return {p.stem: list(csv.DictReader(io.StringIO(p.read_text("utf-8-sig"))))
            for p in out.glob("*.csv")}


def _erase(cli, *args):
    return cli("erase", *args, "--reason", "Đơn số 7/2026 ngày 3/12", "--yes")


def test_household_erasure_leaves_the_people_nowhere_and_counts_unchanged(
        app, ward, collect, xforms, sup1, cli, tmp_path):
    hid, survey_xml, _visit = _household(collect, xforms)
    sid = rows(app, SubmissionVersion)[0].submission_id
    sup1.post(f"/submissions/{sid}/review",
              {"state": "has_issues", "comment": f"Gọi lại cho {HEAD} số 0912.345.678"},
              page=f"/submissions/{sid}")
    before = _tables(cli, tmp_path, "households")
    events = _tables(cli, tmp_path, "activity")["service_events"]
    assert HEAD in _dump(app) and f"JPEG {HEAD}".encode() in _raw_files(app)
    elements = [local_name(e) for e in parse_xml(rows(app, SubmissionVersion)[0].xml).iter()]

    result = _erase(cli, "household", hid)
    assert result.exit_code == 0, result.output
    assert "2 submissions" in result.output

    dump, raw = _dump(app), _raw_files(app)
    for text in (HEAD, MEMBER, "Xuyến", "Pình", PHONE, "345 678", "345.678"):
        assert text not in dump, text
    folded = dump.casefold()
    assert not [w for w in FOLDED if re.search(rf"\b{w}\b", folded)]
    for needle in _forbidden((HEAD, MEMBER, "Xuyến", "Pình", PHONE)):
        assert needle not in raw, needle
    # the XML keeps its instanceID and every element, only emptied
    version = rows(app, SubmissionVersion)[0]
    root = parse_xml(version.xml)
    assert [local_name(e) for e in root.iter()] == elements
    assert root.findtext("meta/instanceID") == version.instance_id
    assert version.pid_hmac is None and version.pid_last4 is None
    assert version.fields["root"]["g_intro/tdp"] == "tdp01"  # the answers stay
    # the phones get the address-only label; the register keeps the household and its people
    [row] = households_csv(collect)
    assert row["label"] == "Số 12 Đường Bình Thuận – (chưa có thông tin chủ hộ)"
    assert row["head_name"] == row["phone_tail"] == row["geometry"] == ""
    after = _tables(cli, tmp_path, "households")
    assert [len(after[t]) for t in after] == [len(before[t]) for t in after]
    assert after["households_register"][0]["n_members"] == "2"
    assert {m["vneid"] for m in after["members_register"]} == {
        m["vneid"] for m in before["members_register"]}
    assert len(_tables(cli, tmp_path, "activity")["service_events"]) == len(events)
    raw_export = _tables(cli, tmp_path, "submissions")
    assert raw_export["household_survey"][0]["g_head-head_name"] == ""
    # a resend of the original bytes from a phone restores nothing
    assert collect.submit(survey_xml, {"house.jpg": f"JPEG {HEAD}".encode()})[0].status in (
        201, 202)
    assert HEAD not in _dump(app)
    [entry] = rows(app, AuditEntry, AuditEntry.action == "personal_data.erase")
    assert entry.target == hid and entry.actor_id is not None
    assert entry.details["reason"] == "Đơn số 7/2026 ngày 3/12"
    assert {"g_head/head_name", "g_members/members/m_name_eff", "g_head/phone",
            "g_end/location", "g_end/house_photo", "g_svc/svc/svc_member_other",
            "pid_hmac"} <= set(entry.details["fields"])
    assert entry.details["files"] == 2 and entry.details["n_submissions"] == 2


def test_admin_erases_one_member_on_the_web_after_confirming(app, ward, collect, xforms, admin,
                                                             cli, tmp_path):
    hid, _survey, _visit = _household(collect, xforms)
    members = _tables(cli, tmp_path, "households")["members_register"]
    page = admin.get(f"/households/{hid}")
    assert f"/households/{hid}/erase" in page.get_data(as_text=True)
    form = admin.get(f"/households/{hid}/erase").get_data(as_text=True)
    assert "Luật Bảo vệ dữ liệu cá nhân" in form and MEMBER in form
    pinh = next(m for m in rows(app, HouseholdMember) if m.name == MEMBER)
    # without the confirmation nothing happens, and the page says why
    refused = admin.post(f"/households/{hid}/erase", {"who": pinh.id, "reason": "Đơn 8"})
    assert refused.status_code == 400
    assert "Hãy đánh dấu xác nhận." in refused.get_data(as_text=True)
    assert MEMBER in _dump(app)
    done = admin.post(f"/households/{hid}/erase",
                      {"who": pinh.id, "reason": "Đơn 8", "confirm": "y"})
    assert done.status_code == 302
    dump = _dump(app)
    assert MEMBER not in dump and "Pình" not in dump
    assert HEAD in dump and PHONE in dump  # the head and the household's phone stay
    entity = rows(app, Entity)[0]
    assert entity.label == LABEL
    after = _tables(cli, tmp_path, "households")["members_register"]
    assert len(after) == len(members)
    neutral = f"(đã xoá {pinh.id[:6]})"
    assert sorted(m["full_name"] for m in after) == sorted([neutral, HEAD])
    assert {m["vneid"] for m in after} == {m["vneid"] for m in members}  # the visit still counts
    event = _tables(cli, tmp_path, "activity")["service_events"][0]
    assert event["member_name_other"] == neutral and event["member_id"] == pinh.id
    [entry] = rows(app, AuditEntry, AuditEntry.action == "personal_data.erase")
    assert entry.details["mode"] == "member" and entry.details["member_id"] == pinh.id
    assert MEMBER not in json.dumps(entry.details, ensure_ascii=False)


def test_merged_household_stays_merged_after_erasure_and_a_rerun(app, ward, add_household,
                                                                 cli, tmp_path):
    first = add_household(HEAD, house="7", year="1971")
    second = add_household(HEAD, house="7", year="1971")  # the same household surveyed twice
    alias = next(e for e in rows(app, Entity) if e.canonical_id is not None)
    assert {alias.id, alias.canonical_id} == {first, second}
    registers = _tables(cli, tmp_path, "households")
    assert _erase(cli, "household", second).exit_code == 0
    assert cli("dedupe").exit_code == 0  # matching can no longer see the names
    [still] = rows(app, Entity, Entity.id == alias.id)
    assert still.canonical_id == alias.canonical_id
    after = _tables(cli, tmp_path, "households")
    assert len(after["households_register"]) == len(registers["households_register"]) == 1
    assert len(after["members_register"]) == len(registers["members_register"])
    assert HEAD not in _dump(app)


def test_issued_reports_lose_the_names_and_keep_their_rows(app, ward, collect, xforms, cli,
                                                          tmp_path):
    from openpyxl import load_workbook

    hid, _survey, _visit = _household(collect, xforms)
    for kind in ("households", "activity", "indicators"):
        result = cli("reports", "issue", kind, "--period", "2026-11",
                     "--note", f"gửi kèm hồ sơ {HEAD}")
        assert result.exit_code == 0, result.output

    def issued(report_id: int, tag: str) -> dict[str, bytes]:
        out = tmp_path / f"issued-{report_id}-{tag}"
        assert cli("reports", "get", str(report_id), "--out", str(out)).exit_code == 0
        return {p.name: p.read_bytes() for p in out.iterdir()}

    before = {i: issued(i, "before") for i in (1, 2, 3)}
    assert HEAD.encode() in before[1]["households_register.csv"]
    assert MEMBER.encode() in before[1]["members_register.csv"]

    assert _erase(cli, "household", hid).exit_code == 0
    for needle in _forbidden((HEAD, MEMBER, PHONE)):
        assert needle not in _raw_files(app), needle  # the issued CSVs included
    after = {i: issued(i, "after") for i in (1, 2, 3)}
    for i in (1, 2, 3):
        assert after[i].keys() == before[i].keys()
        for name, data in after[i].items():
            if name.endswith(".xlsx"):
                book = load_workbook(io.BytesIO(data), read_only=True)
                cells = [str(v) for ws in book.worksheets for r in ws.iter_rows(values_only=True)
                         for v in r if v is not None]
                book.close()
                assert not [v for v in cells if HEAD in v or MEMBER in v], name
                continue
            old = list(csv.reader(io.StringIO(before[i][name].decode("utf-8-sig"))))
            new = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
            assert data.startswith(b"\xef\xbb\xbf") and len(new) == len(old), name
            changed = [(a, b) for ra, rb in zip(old, new, strict=True)
                       for a, b in zip(ra, rb, strict=True) if a != b]
            assert all("[đã xoá]" in b for _a, b in changed), (name, changed)
            if not changed:
                assert data == before[i][name], name  # untouched files: the very same bytes
    assert after[3] == before[3]  # the indicators name nobody: unchanged
    register = list(csv.DictReader(io.StringIO(
        after[1]["households_register.csv"].decode("utf-8-sig"))))
    assert register[0]["head_name"] == "[đã xoá]" and register[0]["n_members"] == "2"
    listing = cli("reports", "list").output
    assert HEAD not in listing
    [entry] = rows(app, AuditEntry, AuditEntry.action == "personal_data.erase")
    assert entry.details["issued_report_files"] >= 2


def test_erasing_one_submission_by_instance_id(app, ward, collect, xforms, cli, tmp_path):
    _household(collect, xforms)
    visit = rows(app, SubmissionVersion)[1]
    result = _erase(cli, "submission", visit.instance_id)
    assert result.exit_code == 0, result.output
    [visit] = rows(app, SubmissionVersion, SubmissionVersion.id == visit.id)
    root = visit.fields["root"]
    assert root["g_close/notes"] == root["g_close/photo"] == root["g_hh/hh_label"] == ""
    assert rows(app, Attachment, Attachment.submission_version_id == visit.id) == []
    pinh = next(m for m in rows(app, HouseholdMember) if m.name == MEMBER)  # not erased
    assert visit.fields["repeats"]["g_svc/svc"][0]["values"]["svc_member_other"] == (
        f"(đã xoá {pinh.id[:6]})")
    survey_version = rows(app, SubmissionVersion)[0]
    assert survey_version.fields["root"]["g_head/head_name"] == HEAD  # another submission
    assert len(_tables(cli, tmp_path, "activity")["service_events"]) == 1


@pytest.mark.parametrize("who", ["sup1", "office"])
def test_only_admins_may_erase(app, ward, collect, xforms, browser, cli, who):
    if who == "office":
        assert cli("user", "add", "office", "--role", "supervisor", "--team", "ward",
                   "--password-stdin", input="correct horse battery\n").exit_code == 0
    hid, _survey, _visit = _household(collect, xforms)
    b = browser()
    assert b.login(who).status_code == 302
    sid = rows(app, SubmissionVersion)[0].submission_id
    assert b.get(f"/households/{hid}/erase").status_code == 403
    assert b.get(f"/submissions/{sid}/erase").status_code == 403
    token = csrf_token(b.get("/households").get_data(as_text=True))
    posted = b.client.post(f"/households/{hid}/erase", data={
        "who": "household", "reason": "x", "confirm": "y", "csrf_token": token})
    assert posted.status_code == 403
    assert "/erase" not in b.get(f"/households/{hid}").get_data(as_text=True)
    refused = cli("erase", "household", hid, "--reason", "x", "--yes", "--as", who)
    assert refused.exit_code == 1 and "administrator" in refused.output
    assert HEAD in _dump(app)
    assert rows(app, AuditEntry, AuditEntry.action == "personal_data.erase") == []


def test_bad_requests_change_nothing(app, ward, collect, xforms, admin, cli):
    hid, _survey, _visit = _household(collect, xforms)
    assert cli("erase", "household", "no-such-household", "--reason", "x",
               "--yes").exit_code == 1
    assert cli("erase", "household", hid, "--member", "Không Có Ai", "--reason", "x",
               "--yes").exit_code == 1
    assert cli("erase", "household", hid, "--reason", "  ", "--yes").exit_code == 1
    assert cli("erase", "submission", "uuid:nothing", "--reason", "x", "--yes").exit_code == 1
    assert admin.get("/households/no-such-household/erase").status_code == 404
    missing = admin.post(f"/households/{hid}/erase", {"who": "household", "confirm": "y"})
    assert missing.status_code == 400
    assert "Hãy ghi lý do" in missing.get_data(as_text=True)
    assert HEAD in _dump(app) and MEMBER in _dump(app)
    assert rows(app, AuditEntry, AuditEntry.action == "personal_data.erase") == []


def test_redaction_ignores_case_marks_spacing_and_phone_separators():
    redact = redactor([HEAD], [PHONE])
    assert redact(f"Gọi {HEAD.upper()} hoặc pham  thi xuyen: +84 912 345 678.") == (
        "Gọi [đã xoá] hoặc [đã xoá]: [đã xoá].")
    assert redact("Phạm Thị Xuyến Anh") == "[đã xoá] Anh"
    assert redact("mã 091234567890") == "mã 091234567890"  # a longer number is another one
