"""The synthetic ward generator: determinism, Collect-like XML, entities, traps, ground truth."""

from __future__ import annotations

import re
import time
import unicodedata
import uuid
from collections import Counter
from datetime import date
from math import comb
from pathlib import Path

import pytest

from server.domain.forms import convert_xlsform, schema_of
from server.domain.instance import (
    blank_identity_number,
    parse_fields,
    read_envelope,
    referenced_attachments,
)
from server.domain.ward import apply_ward_lists, load_ward_config
from server.xml import parse_xml
from tests.support.synthetic_ward import (
    OPERATORS,
    TZ,
    SyntheticWard,
    generate,
    hard_negative_pairs,
    strip_marks,
    true_duplicate_pairs,
)

REPO = Path(__file__).resolve().parents[2]
PID = re.compile(r"^0\d{2}[0-3]\d{8}$")
SMALL = 120
MEDIUM = 1000


@pytest.fixture(scope="module")
def xforms() -> dict[str, bytes]:
    config = load_ward_config(REPO / "forms" / "ward.toml")
    out = {}
    for name in ("household_survey", "support_visit"):
        xlsx = (REPO / "forms" / f"{name}.xlsx").read_bytes()
        out[name] = convert_xlsform(apply_ward_lists(xlsx, config), f"{name}.xlsx")[0]
    return out


@pytest.fixture(scope="module")
def schemas(xforms):
    return {name: schema_of(xml) for name, xml in xforms.items()}


@pytest.fixture(scope="module")
def small(xforms) -> SyntheticWard:
    return generate(xforms["household_survey"], xforms["support_visit"], households=SMALL)


@pytest.fixture(scope="module")
def medium(xforms) -> SyntheticWard:
    return generate(xforms["household_survey"], xforms["support_visit"], households=MEDIUM,
                    seed=7)


def _parsed(ward: SyntheticWard, schemas) -> list[tuple]:
    out = []
    for u in ward.uploads:
        root = parse_xml(u.xml)
        envelope = read_envelope(u.xml)
        fields = parse_fields(schemas[u.form_id], root, envelope.instance_id)
        out.append((u, root, envelope, fields))
    return out


@pytest.fixture(scope="module")
def small_parsed(small, schemas):
    return _parsed(small, schemas)


@pytest.fixture(scope="module")
def medium_parsed(medium, schemas):
    return _parsed(medium, schemas)


def _fingerprint(ward: SyntheticWard) -> list:
    return [
        (u.seq, u.form_id, u.instance_id, u.xml, sorted(u.attachments.items()), u.username,
         u.received_at, u.kind, u.true_household, u.entity_id, u.base_version, u.noise)
        for u in ward.uploads
    ] + [(h.household_id, h.head.name, h.pid, h.phone, h.entity_ids) for h in ward.households]


# --------------------------------------------------------------------------- determinism


def test_same_seed_gives_the_same_bytes(xforms, small):
    again = generate(xforms["household_survey"], xforms["support_visit"], households=SMALL)
    assert _fingerprint(again) == _fingerprint(small)
    assert again.hard_negatives == small.hard_negatives
    assert again.duplicates == small.duplicates
    other = generate(xforms["household_survey"], xforms["support_visit"], households=SMALL,
                     seed=1)
    assert [u.xml for u in other.uploads] != [u.xml for u in small.uploads]


def test_small_ward_is_quick(xforms):
    t0 = time.perf_counter()
    generate(xforms["household_survey"], xforms["support_visit"], households=SMALL, seed=3)
    assert time.perf_counter() - t0 < 3.0  # about 0.1 s on a laptop


def test_without_the_visit_form_there_are_no_visits(xforms):
    ward = generate(xforms["household_survey"], households=40, tdps=4)
    assert ward.uploads and not ward.visit_uploads
    assert {h.tdp for h in ward.households} == {"tdp01", "tdp02", "tdp03", "tdp04"}
    assert len(ward.volunteers) == 4 * 5 + 10


# --------------------------------------------------------------------------- the XML


def test_every_upload_is_a_submission_of_the_given_form(xforms, small, small_parsed):
    versions = {name: _xform_version(x) for name, x in xforms.items()}
    usernames = {v.username for v in small.volunteers}
    previous = None
    for u, root, envelope, _ in small_parsed:
        assert envelope.form_id == u.form_id
        assert envelope.version == versions[u.form_id] == u.form_version
        assert envelope.instance_id == u.instance_id
        assert u.instance_id.startswith("uuid:")
        uuid.UUID(u.instance_id[5:])
        assert u.username in usernames
        assert u.received_at.tzinfo is TZ
        assert previous is None or previous <= u.received_at
        previous = u.received_at
        assert u.xml.startswith(b"<?xml version='1.0' encoding='UTF-8' ?>")
        assert b"\n" not in u.xml  # one line, as Collect writes it
    assert {u.form_id for u in small.uploads} == {"household_survey", "support_visit"}


def _xform_version(xform: bytes) -> str:
    model = parse_xml(xform)
    data = next(e for e in model.iter() if isinstance(e.tag, str) and e.get("version")
                and e.get("id"))
    return data.get("version")


def test_attachments_are_the_files_the_xml_names(schemas, small_parsed):
    photos = 0
    for u, root, envelope, _ in small_parsed:
        assert referenced_attachments(schemas[u.form_id], root, envelope) == set(u.attachments)
        for name, body in u.attachments.items():
            assert name.endswith(".jpg")
            assert body.startswith(b"\xff\xd8\xff") and body.endswith(b"\xff\xd9")
            assert len(body) < 1000
            photos += 1
    assert photos > 0


def test_calculated_fields_are_filled_like_collect(small_parsed):
    surveys = [(u, f["root"], f["repeats"]) for u, _, _, f in small_parsed
               if u.form_id == "household_survey"]
    for u, r, rep in surveys:
        assert r["entity_id"] == u.entity_id or u.entity_action == "none"
        assert r["survey_date"] == r["today"] == u.event_date.isoformat()
        assert r["cur_year"] == "2026"
        assert r["meta/instanceName"] == f"{r['g_intro/tdp']} – {r['hh_label']}"
        members = rep["g_members/members"]
        if r["g_intro/consent"] != "yes":
            assert members == [] and r["g_head/head_name"] == "" and r["g_head/phone_tail"] == ""
            assert r["hh_label"].endswith("– (chưa có thông tin chủ hộ)")
            continue
        assert r["hh_label"].endswith(f" – {r['g_head/head_name']} ({r['g_head/head_birth_year']})")
        assert r["g_head/phone_tail"] == r["g_head/phone"][-3:]
        assert int(r["g_members/n_members"]) == len(members)
        head = members[0]["values"]
        assert head["m_pos"] == "1" and head["m_name"] == "" and head["m_birth_year"] == ""
        assert head["m_name_eff"] == r["g_head/head_name"]
        assert head["m_birth_year_eff"] == r["g_head/head_birth_year"]
        assert head["m_sex_eff"] == r["g_head/head_sex"]
        for pos, row in enumerate(members, start=1):
            v = row["values"]
            assert v["m_pos"] == str(pos)
            if pos > 1:
                assert (v["m_name"], v["m_birth_year"], v["m_sex"]) == (
                    v["m_name_eff"], v["m_birth_year_eff"], v["m_sex_eff"])
            age = 2026 - int(v["m_birth_year_eff"])
            assert v["m_age"] == str(age)
            assert (v["m_smartphone"] != "") == (age >= 10)
            assert (v["m_vneid"] != "") == (age >= 14)
            assert (v["m_dvc"] != "") == (age >= 15)
            assert (v["m_digisig"] != "") == (age >= 18)
            skills = v["m_skills"].split()
            basic = all(k in skills for k in ("call_msg", "search", "install", "safety"))
            assert v["m_basic"] == ("yes" if basic else "no")
            capable = basic and v["m_vneid"] in ("l1", "l2") and v["m_dvc"] == "yes"
            assert v["m_capable"] == ("1" if capable else "0")
        n_capable = sum(int(m["values"]["m_capable"]) for m in members)
        assert r["g_members/hh_n_capable"] == str(n_capable)
        assert r["g_members/hh_capable"] == ("yes" if n_capable else "no")
        assert (r["g_help/assigned_helper"] != "") == (n_capable == 0)


def test_non_relevant_groups_are_left_out(small):
    for u in small.survey_uploads:
        if u.kind == "absent":
            assert b"<g_head>" not in u.xml and b"<g_hh>" not in u.xml
            assert b"<g_addr>" in u.xml and b"<contact_result>absent<" in u.xml
        elif u.kind in ("refusal", "withdrawal"):
            assert b"<g_head>" not in u.xml and b"<g_members>" not in u.xml
            assert b"<consent>no</consent>" in u.xml and b"<location" not in u.xml
        else:
            assert b"<g_head>" in u.xml and b"<consent>yes</consent>" in u.xml
            assert (b"<hh_existing>" in u.xml) == (u.kind == "resurvey")
    for u in small.visit_uploads:
        assert b"<svc_members_done" not in u.xml  # only for a partial with several members


# --------------------------------------------------------------------------- entities


def test_entity_creates_and_updates_are_consistent(small, small_parsed):
    created: dict[str, int] = {}
    versions: Counter[str] = Counter()
    for u, _, envelope, fields in small_parsed:
        e = envelope.entity
        assert e is not None and e.dataset == "households"
        r = fields["root"]
        if e.create:
            assert not e.update and u.entity_action == "create"
            assert uuid.UUID(e.id).version == 4 and str(uuid.UUID(e.id)) == e.id
            assert e.id not in created
            assert e.base_version is None and e.label == r["hh_label"] != ""
            assert r["g_intro/hh_mode"] == "new" and r["g_intro/contact_result"] == "met"
            assert r["hh_new_id"] == e.id
            created[e.id] = u.seq
            versions[e.id] = 1
        elif e.update:
            assert u.entity_action == "update"
            assert e.id in created and created[e.id] < u.seq  # updates follow their create
            assert 1 <= int(e.base_version) <= versions[e.id]
            assert u.base_version == int(e.base_version)
            if u.form_id == "household_survey":
                assert r["g_intro/hh_mode"] == "existing" and r["g_intro/hh_existing"] == e.id
                assert r["hh_new_id"] != e.id and e.label == r["hh_label"] != ""
            else:
                assert r["g_hh/hh"] == e.id and e.label is None
            versions[e.id] += 1
        else:
            assert u.entity_action == "none"
            if u.form_id == "support_visit":
                assert e.id in created and r["g_close/update_status"] == "no"
            else:
                assert r["g_intro/contact_result"] == "absent" and e.id not in created
    assert set(created) == set(small.entity_household)
    assert sorted(e for h in small.households for e in h.entity_ids) == sorted(created)
    for h in small.households:
        assert small.canonical_entity[h.household_id] == min(h.entity_ids, key=created.get)


def test_visits_reference_listed_households(medium, medium_parsed):
    created = {}
    aliases = 0
    for u, _, envelope, fields in medium_parsed:
        r = fields["root"]
        if u.entity_action == "create":
            created[u.entity_id] = r["g_intro/tdp"]
            continue
        if u.form_id != "support_visit":
            continue
        assert r["g_hh/tdp"] == created[r["g_hh/hh"]]
        assert medium.entity_household[r["g_hh/hh"]] == u.true_household
        rows = fields["repeats"]["g_svc/svc"]
        assert rows and r["g_svc/services"] == " ".join(x["values"]["svc_code"] for x in rows)
        not_done = sum(x["values"]["svc_outcome"] != "done" for x in rows)
        assert r["g_svc/n_not_done"] == str(not_done)
        assert (r["g_close/followup_date"] != "") == (not_done > 0)
        assert r["e_followup_date"] == r["g_close/followup_date"]
        assert r["e_last_visit"] == r["g_hh/visit_date"] == u.event_date.isoformat()
        assert r["e_last_visitor"] == r["username"]
        assert date.fromisoformat(r["g_hh/visit_date"]) <= date.fromisoformat(r["today"])
        for x in rows:
            v = x["values"]
            assert v["svc_name"] and v["svc_level"] in ("person", "household")
            assert (v["svc_member_other"] != "") == (v["svc_level"] == "person")
        if u.noise == "alias":
            aliases += 1
            assert r["g_hh/hh"] != medium.canonical_entity[u.true_household]
        else:
            assert r["g_hh/hh"] == medium.canonical_entity[u.true_household]
    assert aliases > 0  # some visits go to an entity a merge will take away
    visits = len(medium.visit_uploads)
    assert 0.6 * MEDIUM < visits < 1.2 * MEDIUM  # 6-8 k at the full 8,000


# --------------------------------------------------------------------------- ground truth


def test_every_survey_upload_names_its_true_household(small):
    ids = {h.household_id for h in small.households}
    for u in small.survey_uploads:
        assert u.true_household in ids
        if u.entity_id is not None:
            assert small.entity_household[u.entity_id] == u.true_household
    for h in small.households:
        creates = [u for u in small.survey_uploads
                   if u.entity_action == "create" and u.true_household == h.household_id]
        assert sorted(u.entity_id for u in creates) == sorted(h.entity_ids)


def test_true_duplicate_pairs(small):
    pairs = true_duplicate_pairs(small)
    assert len(pairs) == sum(comb(len(h.entity_ids), 2) for h in small.households)
    for a, b in pairs:
        assert a < b and small.entity_household[a] == small.entity_household[b]
    dup_entities = {d.entity_id for d in small.duplicates}
    assert all(a in dup_entities or b in dup_entities for a, b in pairs)
    negatives = hard_negative_pairs(small)
    assert negatives and not negatives & pairs


def test_duplicate_counts_follow_the_recipe(small):
    n = len(small.households)
    seconds = [d for d in small.duplicates if d.ordinal == 2]
    thirds = [d for d in small.duplicates if d.ordinal == 3]
    assert len(seconds) == round(0.08 * n) and len(thirds) == round(0.01 * n)
    assert {d.household_id for d in thirds} <= {d.household_id for d in seconds}
    slots = len(small.duplicates)
    ops = Counter(d.operator for d in small.duplicates)
    assert sum(ops.values()) == slots and set(ops) <= {op for op, _ in OPERATORS}
    for op, share in OPERATORS:  # largest-remainder allocation; "copy" absorbs infeasible ones
        if op != "copy":
            assert ops[op] <= int(share * slots / 100) + 1
    assert sum(d.no_id for d in small.duplicates) == round(0.30 * slots)
    assert sum(d.year_shift != 0 for d in small.duplicates) == round(0.15 * slots)
    assert sum(d.member_change != "" for d in small.duplicates) == round(0.10 * slots)
    by_tdp = Counter(small.household(d.household_id).tdp for d in seconds)
    sizes = Counter(h.tdp for h in small.households)
    for tdp, size in sizes.items():  # stratified by tổ
        assert abs(by_tdp[tdp] - 0.08 * size) <= 1
    for d in small.duplicates:
        original = small.household(d.household_id)
        assert original.consent and d.entity_id in original.entity_ids
        team = {v.username for v in small.volunteers if v.team == original.tdp}
        assert d.username in team  # another volunteer of the same tổ
        first = next(u for u in small.survey_uploads if u.entity_id == d.original_entity_id)
        assert d.username != first.username


def test_duplicate_proportions_on_a_larger_ward(medium):
    slots = len(medium.duplicates)
    ops = Counter(d.operator for d in medium.duplicates)
    for op, share in OPERATORS:
        expected = share * slots / 100
        assert abs(ops[op] - expected) <= max(2, 0.25 * expected), (op, ops[op], expected)
    assert sum(d.no_id for d in medium.duplicates) == round(0.30 * slots)
    assert sum(d.year_shift != 0 for d in medium.duplicates) == round(0.15 * slots)
    assert sum(d.member_change != "" for d in medium.duplicates) == round(0.10 * slots)
    assert sum(d.as_resurvey for d in medium.duplicates) > 0  # re-surveys entered as new


def _surveys_by_entity(ward):
    return {u.entity_id: u for u in ward.survey_uploads if u.entity_action == "create"}


def _field(xml: bytes, tag: str) -> str:
    m = re.search(rf"<{tag}>(.*?)</{tag}>".encode(), xml)
    return m.group(1).decode() if m else ""


def test_noise_operators_do_what_they_say(medium):
    creates = _surveys_by_entity(medium)
    seen = set()
    for d in medium.duplicates:
        dup, first = creates[d.entity_id].xml, creates[d.original_entity_id].xml
        assert creates[d.entity_id].noise == d.operator
        name, original = _field(dup, "head_name"), _field(first, "head_name")
        seen.add(d.operator)
        if d.operator == "copy":
            assert name != original
            fixed = " ".join(name.replace("\u00a0", " ").split())
            assert fixed.replace("Ð", "Đ").replace("Ɖ", "Đ").replace("ð", "đ") == original
        elif d.operator == "ascii":
            assert name.isascii() and name == strip_marks(original)
        elif d.operator == "upper":
            assert name == original.upper()
        elif d.operator == "nfd":
            assert name != original and unicodedata.normalize("NFC", name) == original
        elif d.operator == "tone":
            assert name != original and strip_marks(name) == strip_marks(original)
        elif d.operator in ("diacritic", "typo"):  # the given name only
            assert name != original and name.split()[:-1] == original.split()[:-1]
        elif d.operator == "reorder":
            assert sorted(name.split()) == sorted(original.split()) or \
                name in (f"Ông {original}", f"Bà {original}")
        elif d.operator == "phone":
            assert _field(dup, "phone") != _field(first, "phone")
        elif d.operator == "street_text":
            assert _field(dup, "street") == "other" and _field(dup, "street_other")
        elif d.operator == "house":
            assert _field(dup, "house_no") != _field(first, "house_no")
        elif d.operator == "wrong_tdp":
            a, b = int(_field(first, "tdp")[3:]), int(_field(dup, "tdp")[3:])
            assert abs(a - b) == 1
        if d.operator not in ("copy", "ascii", "upper", "nfd", "tone", "diacritic", "typo",
                              "reorder"):
            assert name == original
        if d.year_shift:
            assert int(_field(dup, "head_birth_year")) - int(_field(first, "head_birth_year")) \
                == d.year_shift
        if d.no_id or d.year_shift:
            assert b"<head_id>" not in dup
    assert seen == {op for op, _ in OPERATORS}


def test_hard_negatives(small, medium):
    n = SMALL
    kinds = Counter(x.kind for x in small.hard_negatives)
    expected = {"father_son": 0.005, "shared_phone": 0.02, "namesake": 0.003,
                "same_address": 0.01}
    for kind, share in expected.items():
        assert kinds[kind] == round(share * n)
        assert Counter(x.kind for x in medium.hard_negatives)[kind] == round(share * MEDIUM)
    assert len([h for h in small.households if h.trap]) == len(small.hard_negatives)
    flagged = []
    for neg in medium.hard_negatives:
        a, b = medium.household(neg.household_a), medium.household(neg.household_b)
        assert b.trap == neg.kind and b.trap_of == a.household_id
        assert a.consent and b.consent and a.tdp == b.tdp
        address_a = (a.street, a.alley, a.house_no, a.landmark)
        address_b = (b.street, b.alley, b.house_no, b.landmark)
        if neg.kind == "father_son":
            assert b.head.name == a.head.name and address_a == address_b
            assert 24 <= b.head.birth_year - a.head.birth_year <= 32
            assert a.phone != b.phone and b.phone
        elif neg.kind == "shared_phone":
            assert a.phone == b.phone != "" and a.head.name != b.head.name
            assert address_a != address_b
            flagged.append(b.phone_owner == "other_hh")
        elif neg.kind == "namesake":
            assert b.head.name == a.head.name
            assert abs(b.head.birth_year - a.head.birth_year) <= 1
            assert address_a != address_b and a.house_no and b.house_no
            assert a.phone != b.phone
        else:
            assert address_a == address_b
            assert strip_marks(a.head.name).split()[-1] != strip_marks(b.head.name).split()[-1]
            assert a.phone != b.phone or not b.phone
    assert sum(flagged) == round(0.6 * len(flagged))


def test_proportions_of_the_household_truth(medium):
    households = medium.households
    base = [h for h in households if not h.trap]
    assert len(base) == MEDIUM
    assert sum(not h.consent for h in base) == round(0.03 * MEDIUM)
    assert sum(h.absent_first for h in households) == round(0.08 * len(households))
    assert abs(sum(bool(h.phone) for h in households) / len(households) - 0.92) < 0.01
    consented = [h for h in households if h.consent]
    assert sum(h.id_given for h in consented) == round(0.6 * len(consented))
    mean = len(medium.persons) / len(households)
    assert 3.2 < mean < 3.8
    assert abs(sum(h.head.sex == "male" for h in base) / MEDIUM - 0.72) < 0.05
    for tdp, official in medium.official_households.items():
        true = sum(h.tdp == tdp for h in households)
        assert true <= official <= true * 1.03 + 1
    team = Counter(v.team for v in medium.volunteers)
    assert team["ward"] == 10 and all(team[t] == 5 for t in medium.tdps)
    assert sum(v.leader for v in medium.volunteers) == 20


# --------------------------------------------------------------------------- identity numbers


def test_identity_numbers_match_sex_and_birth_year(small, small_parsed):
    sent = set()
    for u, _, _, fields in small_parsed:
        r = fields["root"]
        pid = r.get("g_head/head_id", "")
        if not pid:
            continue
        assert PID.match(pid)
        blanked, digits = blank_identity_number(u.xml)  # what the server does on receipt
        assert digits == pid and pid.encode() not in blanked
        by, sex = int(r["g_head/head_birth_year"]), r["g_head/head_sex"]
        assert int(pid[3]) == (2 if by >= 2000 else 0) + (1 if sex == "female" else 0)
        assert pid[4:6] == f"{by % 100:02d}"
        assert r["g_head/id_ok"] == "yes"
        sent.add(pid)
    assert sent
    pids = [h.pid for h in small.households]
    assert len(set(pids)) == len(pids)
    for h in small.households:
        assert PID.match(h.pid)
        century = 2 if h.head.birth_year >= 2000 else 0
        assert int(h.pid[3]) == century + (h.head.sex == "female")
        assert h.pid[4:6] == f"{h.head.birth_year % 100:02d}"
        assert (h.pid in sent) == h.id_given  # refusing heads' numbers never leave truth


# --------------------------------------------------------------------------- files


def test_write_to(tmp_path, small):
    out = small.write_to(tmp_path / "ward")
    xml = sorted((out / "uploads").glob("*.xml"))
    assert len(xml) == len(small.uploads)
    assert xml[0].read_bytes() == small.uploads[0].xml
    index = (out / "uploads.csv").read_text(encoding="utf-8").splitlines()
    assert len(index) == len(small.uploads) + 1
    households = (out / "households.csv").read_text(encoding="utf-8").splitlines()
    assert len(households) == len(small.households) + 1
    pairs = (out / "true_duplicate_pairs.csv").read_text(encoding="utf-8").splitlines()
    assert len(pairs) == len(true_duplicate_pairs(small)) + 1
    media = [p for p in (out / "uploads").rglob("*.jpg")]
    assert len(media) == sum(len(u.attachments) for u in small.uploads)
    assert (out / "summary.json").exists()
