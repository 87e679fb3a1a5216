"""Duplicate households found at ingest, merged, reviewed and undone (domain §7)."""

from __future__ import annotations

import csv
import io
import unicodedata
import uuid

from server.db.models import DedupePair, Entity, MergeLogEntry, SubmissionVersion
from tests.openrosa.conftest import rows
from tests.openrosa.test_entities import households_csv, manifest_hash, survey


def add(collect, xforms, head, *, house="15", phone="", tdp="tdp01", year="1975",
        members=None, **kw) -> str:
    members = members or [{"m_name_eff": head, "m_birth_year_eff": year, "m_sex_eff": "male"}]
    extra = {"g_addr/house_no": house, "g_head/head_birth_year": year, "g_head/phone": phone,
             "g_head/phone_tail": phone[-3:], **kw.pop("extra", {})}
    entity_id, xml = survey(xforms, head=head, tdp=tdp, extra=extra,
                            repeats={"g_members/members": members}, **kw)
    assert collect.submit(xml)[0].status == 201
    return entity_id


def live(app):
    return {e.id for e in rows(app, Entity) if e.canonical_id is None}


def test_two_volunteers_same_household_is_merged_at_ingest(app, collect, xforms):
    a = add(collect, xforms, "Phạm Văn Đức", phone="0983123456")
    b = add(collect, xforms, "Phạm Văn Đức", phone="0983 123 456")
    entities = {e.id: e for e in rows(app, Entity)}
    assert entities[b].canonical_id == a  # created first stays canonical
    assert [r["name"] for r in households_csv(collect)] == [a]
    [merge] = rows(app, MergeLogEntry)
    assert (merge.action, merge.canonical_id, merge.alias_id, merge.rule) == ("merge", a, b, "R3")
    assert merge.decided_by is None  # automatic
    assert entities[a].version == 2  # the canonical gets a new version
    entry = next(f for f in collect.form_list() if f["formID"] == "support_visit")
    media = next(m for m in collect.manifest(entry) if m["filename"] == "households.csv")
    assert collect.integrity(media["integrityUrl"], [a, b]) == {a: False, b: True}
    assert len(rows(app, SubmissionVersion)) == 2  # nothing deleted


def test_nfd_and_no_diacritics_are_the_same_household(app, collect, xforms):
    a = add(collect, xforms, "Nguyễn Văn Hùng", house="22", year="1971")
    add(collect, xforms, unicodedata.normalize("NFD", "Nguyễn Văn Hùng"), house="22",
        year="1971")
    add(collect, xforms, "Nguyen Van Hung", house="22", year="1971")
    assert live(app) == {a}


def test_hung_and_hung_go_to_review(app, collect, xforms):
    a = add(collect, xforms, "Nguyễn Văn Hùng", house="5", year="1970")
    b = add(collect, xforms, "Nguyễn Văn Hưng", house="5", year="1970")
    assert live(app) == {a, b}
    [pair] = rows(app, DedupePair)
    assert (pair.rule, pair.status, pair.outcome) == ("R4c", "pending", "review")


def test_father_and_son_are_never_merged(app, collect, xforms):
    add(collect, xforms, "Hoàng Văn Minh", house="12", year="1952", phone="0912000111")
    add(collect, xforms, "Hoàng Văn Minh", house="12", year="1980", phone="0868000222")
    assert len(live(app)) == 2
    assert rows(app, DedupePair) == []


def test_members_csv_links_people_across_merged_snapshots(app, collect, xforms):
    family = [{"m_name_eff": "Phạm Văn Đức", "m_birth_year_eff": "1975", "m_sex_eff": "male"},
              {"m_name_eff": "Lê Thị Mai", "m_birth_year_eff": "1978", "m_sex_eff": "female"}]
    a = add(collect, xforms, "Phạm Văn Đức", phone="0983123456", members=family)
    family[1] = {**family[1], "m_name_eff": "Le Thi Mai", "m_birth_year_eff": "1977"}
    add(collect, xforms, "Phạm Văn Đức", phone="0983123456", members=family)
    entry = next(f for f in collect.form_list() if f["formID"] == "support_visit")
    media = next(m for m in collect.manifest(entry) if m["filename"] == "members.csv")
    body = collect.download_media(media).body.decode()
    people = list(csv.DictReader(io.StringIO(body)))
    assert len(people) == 2 and {p["hh"] for p in people} == {a}
    assert body.splitlines()[0] == "name,label,hh,birth_year,sex"
    assert {p["label"] for p in people} == {"Phạm Văn Đức – 1975", "Le Thi Mai – 1977"}


def test_review_decide_merge_and_unmerge_from_the_command_line(app, collect, xforms, cli):
    a = add(collect, xforms, "Nguyễn Văn Hùng", house="5", year="1970")
    b = add(collect, xforms, "Nguyễn Văn Hưng", house="5", year="1970")
    listing = cli("households", "review").output.split()
    pair_id, rule, _score, ha, hb = listing
    assert rule == "R4c" and {ha, hb} == {a, b}
    # a team leader of another tổ may not decide, the office may
    out = cli("households", "decide", pair_id, "keep_separate", "--as", "sup1")
    assert out.exit_code == 0  # sup1 leads tdp01, where both households are
    assert cli("households", "review").output == ""
    assert live(app) == {a, b}
    # a later direct merge is a person changing their mind: it wins
    merged = cli("households", "merge", a, b)
    assert merged.exit_code == 0 and merged.output.strip() == a
    assert live(app) == {a}

    c = add(collect, xforms, "Trần Văn Bình", house="3", year="1940", phone="0912888999")
    d = add(collect, xforms, "Tran Van Binh", house="3", year="1940")
    assert c in live(app) and d not in live(app)
    undo = cli("households", "unmerge", d)
    assert undo.exit_code == 0, undo.output
    assert {c, d} <= live(app)
    log = [(m.action, m.alias_id, m.undone_at is not None) for m in rows(app, MergeLogEntry)]
    assert ("merge", d, True) in log and ("unmerge", d, False) in log
    # the full re-run keeps every decision and gives the same result
    assert cli("dedupe").exit_code == 0
    assert {c, d} <= live(app) and a in live(app) and b not in live(app)


def test_cross_tdp_pairs_are_for_the_office(app, collect, xforms, cli):
    pid = "a" * 64
    a = add(collect, xforms, "Đặng Thị Thu", house="88", year="1979", tdp="tdp03")
    b = add(collect, xforms, "Đặng Thị Thu", house="88", year="1979", tdp="tdp04")
    session = app.extensions["db"].session(write=True)  # same identity number on both
    from server.db.models import HouseholdSnapshot

    for snap in session.query(HouseholdSnapshot):
        snap.data = {**snap.data, "pid_hmac": pid}
    session.commit()
    session.close()
    cli("dedupe")
    [line] = cli("households", "review").output.splitlines()
    pair_id, rule = line.split()[:2]
    assert rule == "R1x"
    refused = cli("households", "decide", pair_id, "merge", "--as", "sup1")
    assert refused.exit_code == 1 and "office" in refused.output
    assert cli("households", "decide", pair_id, "merge").exit_code == 0  # as the admin
    assert live(app) == {a}
    assert b not in live(app)


def test_dedupe_rerun_equals_incremental(app, collect, xforms, cli):
    for i in range(6):
        add(collect, xforms, "Phạm Văn Đức", house=str(10 + i % 3), phone=f"098312345{i % 3}")
    before = {(e.id, e.canonical_id) for e in rows(app, Entity)}
    assert cli("dedupe").exit_code == 0
    assert {(e.id, e.canonical_id) for e in rows(app, Entity)} == before
    assert str(uuid.uuid4())


def test_visit_naming_an_alias_updates_the_canonical_household(app, collect, xforms):
    from server.db.models import AuditEntry
    from tests.support import instances

    a = add(collect, xforms, "Phạm Văn Đức", phone="0983123456")
    b = add(collect, xforms, "Phạm Văn Đức", phone="0983123456")
    visit = instances.build(xforms["support_visit"], {
        "g_hh/tdp": "tdp01", "g_hh/hh": b, "g_close/update_status": "yes",
        "e_needs_followup": "yes", "e_last_visit": "2026-11-22"},
        entity={"id": b, "update": "1", "baseVersion": "1"})
    assert collect.submit(visit)[0].status == 201
    [row] = households_csv(collect)
    assert row["name"] == a and row["needs_followup"] == "yes"
    assert [(e.action, e.target) for e in rows(app, AuditEntry)] == [
        ("entity.alias_remapped", b)]


def test_one_phone_on_three_households_is_flagged(app, collect, xforms):
    from server.db.models import EntityProblem

    for head, year in (("Lê Văn Lâm", "1969"), ("Đỗ Thị Hạnh", "1950"), ("Ma Văn Tư", "1930")):
        add(collect, xforms, head, year=year, house=year[-2:], phone="0977222333")
    assert len(live(app)) == 3
    assert [p.kind for p in rows(app, EntityProblem)] == ["review_shared_phone"]


def test_the_list_cache_keeps_one_copy_of_each_list(app, collect, xforms):
    """Every change makes a new households.csv; a worker keeps the latest of each list, not
    a copy per revision that nobody will ask for again."""
    cache = app.extensions["list_cache"]
    for n, head in enumerate(("Nguyễn Văn Một", "Trần Thị Hai", "Lê Văn Ba", "Phạm Thị Bốn")):
        add(collect, xforms, head, house=str(40 + n))
        assert [r["head_name"] for r in households_csv(collect)][-1] == head
        assert manifest_hash(collect)  # the manifest hashes the same cached bytes
    assert len(cache) == 2  # households.csv and members.csv of tdp01, each at its latest
    assert len(households_csv(collect)) == 4
