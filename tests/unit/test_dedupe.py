"""Household de-duplication: the §7.9 cases, blocking, clustering, survivorship, members."""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import random
import unicodedata

import pytest

from server.domain.dedupe import (
    BlockIndex,
    DedupeConfig,
    Member,
    Outcome,
    Snapshot,
    candidate_pairs,
    cluster,
    compare,
    compare_all,
    find_member,
    link_members,
    review_reasons,
    snapshot_keys,
    survivorship,
)
from server.domain.ward import Street

STREETS = tuple(
    Street(f"st0{i}", label, label, ())
    for i, label in enumerate(
        [
            "Đường Bình Thuận",
            "Đường 17 Tháng 8",
            "Đường Quang Trung",
            "Đường Tân Trào",
            "Đường Chiến Thắng Sông Lô",
            "Đường Lê Duẩn",
            "Đường Trường Chinh",
            "Đường Kim Bình",
        ],
        start=1,
    )
)
CONFIG = DedupeConfig(streets=STREETS)
T0 = dt.datetime(2026, 1, 5, 8, 0, tzinfo=dt.UTC)
_ids = itertools.count(1)


def snap(
    tdp: str,
    street: str,
    house_no: str,
    head: str,
    year: int | None,
    *,
    alley: str = "",
    street_other: str = "",
    phone: str = "",
    phone_owner: str = "",
    pid: str | None = None,
    members: tuple[tuple[str, int], ...] = (),
    sid: str | None = None,
    entity: str | None = None,
    at: dt.datetime | None = None,
    **extra,
) -> Snapshot:
    n = next(_ids)
    return Snapshot(
        snapshot_id=sid or f"s{n:04d}",
        entity_id=entity or f"e{n:04d}",
        tdp=tdp,
        uploaded_at=at or T0 + dt.timedelta(hours=n),
        street=street,
        street_other=street_other,
        alley=alley,
        house_no=house_no,
        head_name=head,
        head_birth_year=year,
        phone=phone,
        phone_owner=phone_owner or ("head" if phone else ""),
        pid_hmac=pid,
        members=tuple(Member(name, y, None) for name, y in members),
        **extra,
    )


NFD_HUNG = unicodedata.normalize("NFD", "Nguyễn Văn Hùng")

# id, record A, record B, expected outcome, rule ("-" = none)
CASES = [
    (
        "T01",
        lambda: snap("tdp01", "st01", "15", "Phạm Văn Đức", 1975, phone="0983123456"),
        lambda: snap("tdp01", "st01", "15", "Phạm Văn Đức", 1975, phone="0983 123 456"),
        Outcome.MATCH,
        "R3",
    ),
    (
        "T02",
        lambda: snap("tdp01", "st01", "7", "Nguyễn Văn Hùng", 1971, alley="3"),
        lambda: snap("tdp01", "st01", "7", NFD_HUNG, 1971, alley="3"),
        Outcome.MATCH,
        "R4",
    ),
    (
        "T03a",
        lambda: snap("tdp01", "st01", "22", "Nguyễn Văn Hùng", 1971, phone="0912345678"),
        lambda: snap("tdp01", "st01", "22", "Nguyen Van Hung", 1971),
        Outcome.MATCH,
        "R4",
    ),
    (
        "T03b",
        lambda: snap("tdp01", "st01", "22", "Nguyen Van Hung", 1971),
        lambda: snap("tdp01", "st01", "22", "NGUYỄN VĂN HÙNG", 1971, phone="+84 912 345 678"),
        Outcome.MATCH,
        "R4",
    ),
    (
        "T03c",
        lambda: snap("tdp01", "st01", "22", "Nguyễn Văn Hùng", 1971, phone="0912345678"),
        lambda: snap("tdp01", "st01", "22", "NGUYỄN VĂN HÙNG", 1971, phone="+84 912 345 678"),
        Outcome.MATCH,
        "R3",
    ),
    (
        "T04",
        lambda: snap("tdp02", "st01", "40", "Trần Thị Thuý Hoà", 1962),
        lambda: snap("tdp02", "st01", "40", "Trần Thị Thúy Hòa", 1962),
        Outcome.MATCH,
        "R4",
    ),
    (
        "T05",
        lambda: snap("tdp05", "st02", "21", "Đỗ Văn Thành", 1980, phone="+84 912 345 678"),
        lambda: snap("tdp05", "st02", "12", "Đỗ Văn Thành", 1980, phone="84912345678"),
        Outcome.MATCH,
        "R3",
    ),
    (
        "T06",
        lambda: snap(
            "tdp06", "st03", "9", "Lê Thị Lan", 1968,
            phone="0977222333", phone_owner="other_hh", members=(("Lê Thị Lan", 1968),),
        ),
        lambda: snap(
            "tdp06", "st03", "31", "Lê Văn Lâm", 1969, phone="0977 222 333",
            members=(("Lê Văn Lâm", 1969), ("Đỗ Thị Hạnh", 1972), ("Lê Minh Khôi", 2005)),
        ),
        Outcome.NON_MATCH,
        "-",
    ),
    (
        "T07",
        lambda: snap(
            "tdp01", "st01", "12", "Hoàng Văn Minh", 1952, phone="0912000111",
            members=(("Hoàng Văn Minh", 1952), ("Ma Thị Lụa", 1955)),
        ),
        lambda: snap(
            "tdp01", "st01", "12", "Hoàng Văn Minh", 1980, phone="0868000222",
            members=(("Hoàng Văn Minh", 1980), ("Nông Thị Hà", 1983), ("Hoàng Minh Đức", 2008)),
        ),
        Outcome.NON_MATCH,
        "V2",
    ),
    (
        "T08",
        lambda: snap("tdp07", "st03", "5", "Nguyễn Văn Hùng", 1970),
        lambda: snap("tdp07", "st03", "5", "Nguyễn Văn Hưng", 1970),
        Outcome.REVIEW,
        "R4c",
    ),
    (
        "T09",
        lambda: snap("tdp03", "st01", "12", "Vũ Thị Ngọc Ánh", 1985, alley="5"),
        lambda: snap(
            "tdp03", "other", "12/5", "Vu Thi Ngoc Anh", 1985, street_other="đường Bình Thuận"
        ),
        Outcome.MATCH,
        "R4",
    ),
    (
        "T10",
        lambda: snap("tdp10", "st04", "60", "Lý Văn Sơn", 1968, phone="0388111222", pid="H7"),
        lambda: snap("tdp10", "st04", "60", "Lý Văn Sơn", 1968, phone="0867333444", pid="H7"),
        Outcome.MATCH,
        "R1",
    ),
    (
        "T11",
        lambda: snap("tdp07", "st03", "", "Bùi Thị Hằng", 1958, landmark="cạnh chợ"),
        lambda: snap("tdp07", "st03", "45", "Bùi Thị Hằng", 1958, phone="0987654321"),
        Outcome.REVIEW,
        "R5",
    ),
    (
        "T12",
        lambda: snap("tdp11", "st04", "8", "Nguyễn Thị Lan", 1965),
        lambda: snap("tdp11", "st05", "112", "Nguyễn Thị Lan", 1988),
        Outcome.NON_MATCH,
        "V2",
    ),
    (
        "T13",
        lambda: snap(
            "tdp14", "st06", "3", "Trần Văn Bình", 1940, phone="02073822123",
            members=(("Trần Văn Bình", 1940), ("Lê Thị Mai", 1945), ("Trần Văn Long", 1970)),
        ),
        lambda: snap(
            "tdp14", "st06", "3", "Lê Thị Mai", 1945, phone="0912888999",
            members=(("Lê Thị Mai", 1945), ("Trần Văn Long", 1970), ("Trần Thị Hoa", 2005)),
        ),
        Outcome.REVIEW,
        "R6",
    ),
    (
        "T14",
        lambda: snap("tdp03", "st01", "88", "Đặng Thị Thu", 1979, pid="H9"),
        lambda: snap("tdp04", "st01", "88", "Đặng Thị Thu", 1979, pid="H9"),
        Outcome.REVIEW,
        "R1x",
    ),
    (
        "T15",
        lambda: snap("tdp18", "st08", "17", "\u00d0ặng Văn Tú", 1990, phone="0358777666"),
        lambda: snap("tdp18", "st08", "17A", "Tú Đặng Văn", 1990, phone="035 8777 666"),
        Outcome.MATCH,
        "R3",
    ),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "make_a", "make_b", "outcome", "rule"), CASES, ids=[c[0] for c in CASES]
)
def test_spec_cases(case, make_a, make_b, outcome, rule):
    a, b = make_a(), make_b()
    for x, y in ((a, b), (b, a)):
        result = compare(x, y, CONFIG)
        assert (result.outcome, result.rule or "-") == (outcome, rule), result
    # The pair is also found by blocking.
    assert (min(a.snapshot_id, b.snapshot_id), max(a.snapshot_id, b.snapshot_id)) in (
        candidate_pairs([a, b], CONFIG).pairs
    )


def test_t02_record_b_is_nfd():
    assert len(NFD_HUNG) == 19 and len(unicodedata.normalize("NFC", NFD_HUNG)) == 15


def test_t03_three_spellings_form_one_cluster():
    x = snap("tdp01", "st01", "22", "Nguyễn Văn Hùng", 1971, phone="0912345678")
    y = snap("tdp01", "st01", "22", "Nguyen Van Hung", 1971)
    z = snap("tdp01", "st01", "22", "NGUYỄN VĂN HÙNG", 1971, phone="+84 912 345 678")
    results, skipped = compare_all([x, y, z], CONFIG)
    assert not skipped
    assert len(results) == 3
    assert all(r.outcome is Outcome.MATCH for r in results)
    created = {s.entity_id: s.uploaded_at for s in (x, y, z)}
    res = cluster(created, results, (), (), {s.entity_id: [s] for s in (x, y, z)}, CONFIG)
    assert len(res.clusters) == 1
    assert res.clusters[0].canonical_id == x.entity_id
    assert set(res.clusters[0].entity_ids) == {x.entity_id, y.entity_id, z.entity_id}
    assert res.aliases == {y.entity_id: x.entity_id, z.entity_id: x.entity_id}
    assert not res.rejected and not res.review_edges


def test_pair_features_and_score():
    a, b = CASES[14][1](), CASES[14][2]()  # T13
    r = compare(a, b, CONFIG)
    assert r.vetoes == ("V2",)
    assert r.members_shared == 2 and r.members_jaccard == 0.5
    assert r.address_relation == "same" and not r.phone_match and r.pid_match is None
    assert r.year_delta == 5 and r.same_tdp
    expected = 0.4 * r.name_similarity / 100 + 0.2 * 1 + 0.2 * 0 + 0.2 * 0.5
    assert r.score == pytest.approx(expected, abs=1e-3)
    assert r.snapshot_a < r.snapshot_b


def test_r0_same_entity_and_r3x_cross_tdp():
    a = snap("tdp01", "st01", "1", "Phạm Văn Đức", 1975, entity="E", sid="a")
    b = snap("tdp01", "st01", "1", "Phạm Văn Đức", 1975, entity="E", sid="b", updated_entity=True)
    assert compare(a, b, CONFIG).rule == "R0"
    c = snap("tdp01", "st01", "15", "Phạm Văn Đức", 1975, phone="0983123456")
    d = snap("tdp02", "st01", "15", "Phạm Văn Đức", 1975, phone="0983123456")
    assert (compare(c, d, CONFIG).outcome, compare(c, d, CONFIG).rule) == (Outcome.REVIEW, "R3x")


def test_v1_different_pids_only_r6():
    a = snap("tdp01", "st01", "15", "Phạm Văn Đức", 1975, phone="0983123456", pid="H1")
    b = snap("tdp01", "st01", "15", "Phạm Văn Đức", 1975, phone="0983123456", pid="H2")
    r = compare(a, b, CONFIG)
    assert (r.outcome, r.rule, r.pid_match) == (Outcome.NON_MATCH, "V1", False)


def test_phone_alone_never_merges():
    a = snap("tdp01", "st01", "15", "Phạm Văn Đức", 1975, phone="0983123456")
    b = snap("tdp01", "st02", "99", "Trần Thị Mai", 1976, phone="0983123456")
    assert compare(a, b, CONFIG).outcome is Outcome.NON_MATCH


def test_gps_distance_only_for_accurate_fixes():
    a = snap("tdp01", "st01", "1", "A B", 1970, lat=21.8, lon=105.2, accuracy=5.0)
    b = snap("tdp01", "st01", "1", "A B", 1970, lat=21.801, lon=105.2, accuracy=12.0)
    c = snap("tdp01", "st01", "1", "A B", 1970, lat=21.801, lon=105.2, accuracy=45.0)
    assert compare(a, b, CONFIG).distance_m == pytest.approx(111.2, abs=0.5)
    assert compare(a, c, CONFIG).distance_m is None


# --------------------------------------------------------------------------- blocking

FAMILY = ["Nguyễn", "Trần", "Lê", "Hoàng", "Nông", "Ma", "Đặng", "Vũ"]
MIDDLE = ["Văn", "Thị", "Minh", "Đức", "Ngọc"]
GIVEN = ["Hùng", "Hưng", "Lan", "Lân", "Tâm", "Mai", "Long", "Hà", "Tú", "Sơn"]


def _random_snapshots(n: int, seed: int = 7) -> list[Snapshot]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        name = f"{rng.choice(FAMILY)} {rng.choice(MIDDLE)} {rng.choice(GIVEN)}"
        entity = f"e{i:05d}" if rng.random() > 0.1 or i == 0 else out[-1].entity_id
        phone = f"09{rng.randrange(10**8):08d}" if rng.random() < 0.8 else ""
        if rng.random() < 0.1 and out:
            phone = rng.choice(out).phone
        out.append(
            Snapshot(
                snapshot_id=f"s{i:05d}",
                entity_id=entity,
                tdp=f"tdp0{rng.randrange(1, 4)}",
                uploaded_at=T0 + dt.timedelta(minutes=i),
                street=f"st0{rng.randrange(1, 4)}",
                house_no=str(rng.randrange(1, 40)) if rng.random() > 0.05 else "",
                head_name=name,
                head_birth_year=rng.randrange(1940, 2000),
                phone=phone,
                pid_hmac=f"H{rng.randrange(60)}" if rng.random() < 0.2 else None,
            )
        )
    return out


def test_incremental_add_gives_the_full_run_pairs():
    snapshots = _random_snapshots(400)
    full = candidate_pairs(snapshots, CONFIG)
    assert not full.skipped and len(full.pairs) > 300
    index = BlockIndex(CONFIG)
    incremental = set()
    for s in snapshots:
        incremental |= {tuple(sorted((s.snapshot_id, other))) for other in index.add(s)}
    assert incremental == set(full.pairs)
    assert index.pairs() == set(full.pairs)
    keys = full.keys
    assert all(keys[a].entity_id != keys[b].entity_id for a, b in full.pairs)


def test_remove_and_replace():
    snapshots = _random_snapshots(200, seed=3)
    index = BlockIndex(CONFIG)
    for s in snapshots:
        index.add(s)
    gone = snapshots[17]
    index.remove(gone)
    index.remove("no-such-id")
    assert gone.snapshot_id not in index and len(index) == 199
    rest = [s for s in snapshots if s is not gone]
    assert index.pairs() == set(candidate_pairs(rest, CONFIG).pairs)
    # Adding a corrected version of a snapshot replaces it.
    index.add(gone)
    index.add(dataclasses.replace(gone, head_name="Khổng Minh Tuệ"))
    assert index.pairs() == set(
        candidate_pairs(
            [*rest, dataclasses.replace(gone, head_name="Khổng Minh Tuệ")], CONFIG
        ).pairs
    )


def test_oversize_block_is_skipped_and_reported():
    config = dataclasses.replace(CONFIG, max_block=3)
    names = ["Nguyễn Văn Hùng", "Trần Thị Mai", "Lê Minh Khôi", "Đỗ Thị Hạnh", "Ma Văn Sơn"]
    shared = [
        snap(f"tdp0{i + 1}", f"st0{i + 1}", str(10 + i), name, 1950 + 7 * i, phone="0977222333")
        for i, name in enumerate(names)
    ]
    result = candidate_pairs(shared, config)
    assert result.pairs == ()
    assert [(b.kind, b.size, b.key) for b in result.skipped] == [("B2", 5, "phone:…333")]
    # Incrementally, the block yields pairs only while it is small enough.
    index = BlockIndex(config)
    found = [len(index.add(s)) for s in shared]
    assert found == [0, 1, 2, 0, 0]
    assert index.skipped_blocks() == result.skipped


def test_same_entity_never_paired():
    a = snap("tdp01", "st01", "1", "Phạm Văn Đức", 1975, entity="E", sid="a")
    b = snap("tdp01", "st01", "1", "Phạm Văn Đức", 1975, entity="E", sid="b")
    assert candidate_pairs([a, b], CONFIG).pairs == ()


def test_blocking_catches_wrong_tdp_and_reordered_names():
    a = snap("tdp03", "st01", "88", "Đặng Thị Thu", 1979)  # B5 across tổ
    b = snap("tdp04", "st02", "3", "Đặng Thị Thu", 1979)
    c = snap("tdp18", "st08", "", "Đặng Văn Tú", 1990)  # B6: longest token, year band
    d = snap("tdp18", "st08", "", "Tú Đặng Văn", 1991)
    pairs = set(candidate_pairs([a, b, c, d], CONFIG).pairs)
    assert (a.snapshot_id, b.snapshot_id) in pairs
    assert (c.snapshot_id, d.snapshot_id) in pairs
    assert len(pairs) == 2


# --------------------------------------------------------------------------- clustering


def _entity(eid: str, tdp: str, head: str, year: int | None, pid: str | None = None, n=0):
    return snap(tdp, "st01", str(n or 1), head, year, pid=pid, entity=eid, sid=f"{eid}-{n}")


def _created(*ids: str) -> dict[str, dt.datetime]:
    return {e: T0 + dt.timedelta(days=i) for i, e in enumerate(ids)}


def test_cannot_link_blocks_direct_and_transitive_joins():
    created = _created("A", "B", "C")
    res = cluster(created, [("A", "B")], (), [("A", "B")], {})
    assert res.clusters == () and res.aliases == {}
    assert [(r.entity_a, r.entity_b, r.reason) for r in res.review_edges] == [
        ("A", "B", "cannot_link")
    ]
    res = cluster(created, [("B", "C"), ("A", "B")], (), [("A", "C")], {})
    assert [c.entity_ids for c in res.clusters] == [("A", "B")]
    assert [(r.entity_a, r.entity_b, r.reason) for r in res.review_edges] == [
        ("B", "C", "cannot_link")
    ]


def test_canonical_is_earliest_created_and_aliases_point_to_it():
    created = {"X": T0 + dt.timedelta(days=3), "Y": T0, "Z": T0 + dt.timedelta(days=1)}
    res = cluster(created, [("X", "Z"), ("Z", "Y")], (), (), {})
    assert res.clusters[0].canonical_id == "Y"
    assert res.clusters[0].entity_ids == ("Y", "Z", "X")
    assert res.aliases == {"X": "Y", "Z": "Y"}
    assert res.canonical_of("X") == "Y" and res.canonical_of("Y") == "Y"
    assert res.canonical_of("unrelated") == "unrelated"


def test_clustering_is_deterministic():
    created = _created(*"ABCDEF")
    edges = [("A", "B"), ("C", "B"), ("E", "F"), ("D", "C")]
    first = cluster(created, edges, (), [("A", "D")], {})
    for perm in itertools.permutations(edges):
        assert cluster(created, list(perm), (), [("D", "A")], {}) == first


@pytest.mark.parametrize(
    ("entities", "reason"),
    [
        (  # father and son chained through a record without a birth year
            [("A", "tdp01", "Hoàng Văn Minh", 1952, None),
             ("B", "tdp01", "Hoang Van Minh", None, None),
             ("C", "tdp01", "Hoàng Văn Minh", 1980, None)],
            "namesake_heads",
        ),
        (
            [("A", "tdp01", "Lý Văn Sơn", 1968, "H1"),
             ("B", "tdp01", "Lý Văn Sơn", 1968, None),
             ("C", "tdp01", "Lý Văn Sơn", 1969, "H2")],
            "pid_conflict",
        ),
    ],
)  # fmt: skip
def test_chaining_rejected_by_consistency_check(entities, reason):
    snaps = {e: [_entity(e, t, name, y, pid)] for e, t, name, y, pid in entities}
    res = cluster(_created("A", "B", "C"), [("A", "B"), ("B", "C")], (), (), snaps)
    assert res.clusters == () and res.aliases == {}
    assert len(res.rejected) == 1
    assert res.rejected[0].entity_ids == ("A", "B", "C")
    assert res.rejected[0].reasons == (reason,)
    assert res.rejected[0].auto_edges == (("A", "B"), ("B", "C"))
    assert {(r.entity_a, r.entity_b) for r in res.review_edges} == {("A", "B"), ("B", "C")}
    assert all(r.reason == f"rejected_cluster:{reason}" for r in res.review_edges)


def test_cross_tdp_chain_needs_a_supervisor():
    snaps = {
        "A": [_entity("A", "tdp01", "Lê Văn Nam", 1970)],
        "B": [
            _entity("B", "tdp01", "Lê Văn Nam", 1970),
            _entity("B", "tdp02", "Lê Văn Nam", 1970, n=2),  # the household moved
        ],
        "C": [_entity("C", "tdp02", "Lê Văn Nam", 1970)],
    }
    created = _created("A", "B", "C")
    res = cluster(created, [("A", "B"), ("B", "C")], (), (), snaps)
    assert res.rejected[0].reasons == ("cross_tdp",)
    assert res.clusters == ()
    # With the cross-tổ link accepted by a supervisor only the auto part is rejected.
    res = cluster(created, [("A", "B")], [("B", "C")], (), snaps)
    assert res.rejected[0].reasons == ("cross_tdp",)
    assert [c.entity_ids for c in res.clusters] == [("B", "C")]
    assert res.aliases == {"C": "B"}
    # Accepted all the way: the supervisors' decisions stand.
    res = cluster(created, (), [("A", "B"), ("B", "C")], (), snaps)
    assert not res.rejected and res.aliases == {"B": "A", "C": "A"}


def test_accepted_edge_still_respects_cannot_link():
    res = cluster(_created("A", "B"), (), [("A", "B")], [("B", "A")], {})
    assert res.clusters == ()
    assert res.review_edges[0].reason == "cannot_link"


def test_cluster_keeps_the_pair_result_for_review():
    a = snap("tdp01", "st01", "22", "Nguyễn Văn Hùng", 1971, pid="H1")
    b = snap("tdp01", "st01", "22", "Nguyen Van Hung", 1971)
    c = snap("tdp01", "st01", "22", "NGUYỄN VĂN HÙNG", 1971, pid="H2")
    results, _ = compare_all([a, b, c], CONFIG)
    assert sum(r.outcome is Outcome.MATCH for r in results) == 2  # a–c is vetoed by V1
    snaps = {s.entity_id: [s] for s in (a, b, c)}
    res = cluster({}, results, (), (), snaps)  # only MATCH results become auto edges
    assert res.rejected[0].reasons == ("pid_conflict",)
    assert all(r.pair is not None and r.pair.rule == "R4" for r in res.review_edges)


# --------------------------------------------------------------------------- survivorship


def test_survivorship_latest_non_empty_and_diacritic_spelling():
    old = snap(
        "tdp01",
        "st01",
        "22",
        "Nguyễn Văn Hùng",
        1971,
        phone="0912.345.678",
        pid="H1",
        alley="5",
        landmark="",
        lat=21.80,
        lon=105.20,
        accuracy=4.0,
        entity="A",
        pid_last4="1234",
    )
    mid = snap(
        "tdp01",
        "st01",
        "22",
        "Nguyen Van Hung",
        1972,
        phone="",
        entity="B",
        lat=21.81,
        lon=105.21,
        accuracy=25.0,
        head_sex="male",
    )
    new = snap(
        "tdp01",
        "other",
        "",
        "NGUYEN VAN HUNG",
        None,
        street_other="Binh Thuan",
        phone="+84 988 777 666",
        phone_owner="member",
        entity="A",
        lat=21.82,
        lon=105.22,
        accuracy=8.0,
        members=(("Nguyen Van Hung", 1971),),
    )
    got = survivorship([old, mid, new])
    assert got["head_name"] == "Nguyễn Văn Hùng"  # ASCII-only latest: keep the marks
    assert got["head_birth_year"] == 1972  # latest non-empty
    assert got["head_sex"] == "male"
    assert (got["street"], got["street_other"]) == ("other", "Binh Thuan")
    assert got["house_no"] == "22" and got["alley"] == "5" and got["landmark"] is None
    assert (got["phone"], got["phone_owner"], got["phone_tail"]) == ("0988777666", "member", "666")
    assert (got["pid_hmac"], got["pid_last4"], got["pid_conflict"]) == ("H1", "1234", False)
    assert (got["lat"], got["lon"], got["accuracy"]) == (21.80, 105.20, 4.0)
    assert got["latest_snapshot_id"] == new.snapshot_id
    assert got["latest_consented_snapshot_id"] == new.snapshot_id
    assert got["n_members"] == 1 and got["consent"] is True


def test_survivorship_location_only_from_the_last_three():
    best_but_old = snap("tdp01", "st01", "1", "A Bê", 1970, lat=1.0, lon=1.0, accuracy=1.0)
    rest = [
        snap("tdp01", "st01", "1", "A Bê", 1970, lat=2.0 + i, lon=2.0, accuracy=acc)
        for i, acc in enumerate([20.0, 9.0, None])
    ]
    got = survivorship([best_but_old, *rest])
    assert (got["lat"], got["accuracy"]) == (3.0, 9.0)


def test_survivorship_diacritic_spelling_needs_same_ascii():
    a = snap("tdp01", "st01", "1", "Nguyễn Văn Hùng", 1971)
    b = snap("tdp01", "st01", "1", "Nguyen Van Hung Anh", 1971)
    assert survivorship([a, b])["head_name"] == "Nguyen Van Hung Anh"


def test_survivorship_withdrawn_consent_keeps_only_the_address():
    a = snap("tdp01", "st01", "22", "Nguyễn Văn Hùng", 1971, phone="0912345678", pid="H1",
             lat=21.8, lon=105.2, accuracy=5.0)  # fmt: skip
    b = snap("tdp02", "st01", "23", "", None, consent=False)
    got = survivorship([a, b])
    assert got["consent"] is False and got["tdp"] == "tdp02"
    assert got["latest_consented_snapshot_id"] is None
    assert got["head_name"] is None and got["phone"] is None and got["pid_hmac"] is None
    assert got["lat"] is None and got["n_members"] is None
    assert got["house_no"] == "22"  # latest non-empty among consented snapshots


def test_survivorship_pid_conflict():
    a = snap("tdp01", "st01", "22", "Nguyễn Văn Hùng", 1971, pid="H1")
    b = snap("tdp01", "st01", "22", "Nguyễn Văn Hùng", 1971, pid="H2")
    got = survivorship([a, b])
    assert got["pid_hmac"] is None and got["pid_conflict"] is True
    with pytest.raises(ValueError):
        survivorship([])


# --------------------------------------------------------------------------- members


def _household(*members: tuple[str, int, str], **kw) -> Snapshot:
    s = snap("tdp14", "st06", "3", members[0][0], members[0][1], **kw)
    return dataclasses.replace(s, members=tuple(Member(*m) for m in members))


def _counter_ids():
    n = itertools.count(1)
    return lambda: f"m{next(n)}"


def test_link_members_across_snapshots():
    s1 = _household(("Trần Văn Bình", 1940, "male"), ("Lê Thị Mai", 1945, "female"),
                    ("Trần Văn Long", 1970, "male"))  # fmt: skip
    s2 = _household(("Le Thi Mai", 1946, "female"), ("TRẦN VĂN LONG", 1970, "male"),
                    ("Trần Thị Hoa", 2005, "female"))  # fmt: skip
    links = link_members([s1, s2], new_id=_counter_ids())
    by_name = {p.name: p for p in links.persons}
    assert len(links.persons) == 4
    assert by_name["Le Thi Mai"].records == ((s1.snapshot_id, 1), (s2.snapshot_id, 0))
    assert by_name["TRẦN VĂN LONG"].records == ((s1.snapshot_id, 2), (s2.snapshot_id, 1))
    binh = by_name["Trần Văn Bình"]
    assert binh.last_snapshot_id == s1.snapshot_id and binh.left_snapshot_id == s2.snapshot_id
    assert by_name["Trần Thị Hoa"].left_snapshot_id is None
    assert links.ids[(s1.snapshot_id, 1)] == links.ids[(s2.snapshot_id, 0)]


def test_link_members_keeps_previous_ids_across_runs():
    s1 = _household(("Nguyễn Văn Hùng", 1971, "male"), ("Hà Thị Thu", 1973, "female"))
    s2 = _household(("Nguyễn Văn Hùng", 1971, "male"), ("Ha Thi Thu", 1974, "female"),
                    ("Nguyễn Minh Khôi", 2001, "male"))  # fmt: skip
    first = link_members([s1], new_id=_counter_ids())
    second = link_members([s1, s2], previous_ids=first.ids, new_id=lambda: "new")
    assert second.ids[(s2.snapshot_id, 0)] == first.ids[(s1.snapshot_id, 0)]
    assert second.ids[(s2.snapshot_id, 1)] == first.ids[(s1.snapshot_id, 1)]
    assert second.ids[(s2.snapshot_id, 2)] == "new"
    # Two people that were separate before and are one now keep the older id.
    merged = link_members(
        [s1, s2],
        previous_ids={(s1.snapshot_id, 0): "old-1", (s2.snapshot_id, 0): "old-2"},
        new_id=_counter_ids(),
    )
    assert merged.ids[(s2.snapshot_id, 0)] == "old-1"
    assert merged.replaced_ids == {"old-2": "old-1"}


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        (("Nguyễn Văn Hùng", 1971, "male"), ("Nguyễn Văn Hưng", 1971, "male"), False),
        (("Nguyễn Văn Hùng", 1971, "male"), ("Nguyen Van Hung", 1972, "male"), True),
        (("Nguyễn Văn Hùng", 1971, "male"), ("Nguyễn Văn Hùng", 1973, "male"), False),
        (("Nguyễn Minh Anh", 2010, "male"), ("Nguyễn Minh Anh", 2010, "female"), False),
        (("Nguyễn Văn Hùng", 1971, "male"), ("Nguyễn Văn Hùngg", 1971, "male"), True),
    ],
)
def test_member_rule(a, b, same):
    s1, s2 = _household(a), _household(b)
    links = link_members([s1, s2], new_id=_counter_ids())
    assert (len(links.persons) == 1) is same


def test_member_in_two_records_of_one_snapshot_stays_two_people():
    s1 = _household(("Lò Văn Páo", 1950, "male"))
    s2 = _household(("Lò Văn Páo", 1950, "male"), ("Lò Văn Páo", 1951, "male"))
    links = link_members([s1, s2], new_id=_counter_ids())
    assert len(links.persons) == 2
    assert links.ids[(s2.snapshot_id, 0)] == links.ids[(s1.snapshot_id, 0)]


def test_refusal_snapshot_is_not_members_leaving():
    s1 = _household(("Nguyễn Văn Hùng", 1971, "male"))
    refusal = dataclasses.replace(s1, snapshot_id="refusal", members=(), consent=False)
    assert link_members([s1, refusal]).persons[0].left_snapshot_id is None


def test_find_member_maps_free_text_names():
    members = [
        Member("Lê Thị Mai", 1945, "female"),
        Member("Trần Văn Long", 1970, "male"),
        Member("Trần Thị Hoa", 2005, "female"),
    ]
    assert find_member("tran van long", members) == 1
    assert find_member("Trần Thị Hoa", members, birth_year=2004) == 2
    assert find_member("Trần Thị Hoa", members, birth_year=2001) is None
    assert find_member("Nguyễn Văn A", members) is None
    twins = [Member("Lò Thị Mai", 2000, None), Member("Lò Thị Mai", 2000, None)]
    assert find_member("Lò Thị Mai", twins) is None


# --------------------------------------------------------------------------- review triggers


def test_review_reasons():
    base = snap("tdp01", "st01", "10", "Nguyễn Văn Hùng", 1971, entity="E1", phone="0977222333")
    wrong_pick = snap(
        "tdp01",
        "st02",
        "99",
        "Đào Thị Ngọc",
        1990,
        entity="E1",
        updated_entity=True,
        phone="0977222333",
    )
    other_house = snap("tdp01", "st01", "12", "Lê Văn Nam", 1960, entity="E2",
                       phone="+84 977 222 333")  # fmt: skip
    third = snap("tdp01", "st01", "14", "Lý Văn Sơn", 1968, entity="E3", phone="0977.222.333")
    moved_first = snap("tdp03", "st01", "1", "Hà Văn Tư", 1955, entity="E4")
    moved_now = snap("tdp04", "st01", "1", "Hà Văn Tư", 1955, entity="E4", updated_entity=True)
    got = review_reasons([third, wrong_pick, base, other_house, moved_now, moved_first], CONFIG)
    kinds = [(r.kind, r.household_ids) for r in got]
    assert kinds == [
        ("head_changed", ("E1",)),
        ("shared_phone", ("E1", "E2", "E3")),
        ("tdp_changed", ("E4",)),
    ]
    assert got[0].snapshot_ids == (base.snapshot_id, wrong_pick.snapshot_id)
    assert got[2].detail == "tdp03 → tdp04"
    # Once E2 and E3 are known duplicates, the phone is on two households only.
    merged = review_reasons([third, wrong_pick, base, other_house], CONFIG, {"E3": "E2"})
    assert [r.kind for r in merged] == ["head_changed"]


def test_update_with_same_head_or_same_address_is_not_flagged():
    a = snap("tdp01", "st01", "10", "Nguyễn Văn Hùng", 1971, entity="E1")
    typo = snap("tdp01", "st02", "10", "Nguyễn Văn Hùn", 1971, entity="E1", updated_entity=True)
    new_head = snap("tdp01", "st01", "10", "Lê Thị Mai", 1945, entity="E1", updated_entity=True)
    assert review_reasons([a, typo], CONFIG) == []
    assert review_reasons([a, new_head], CONFIG) == []


def test_snapshot_keys_are_reused():
    s = snap("tdp03", "other", "12/5", "Vu Thi Ngoc Anh", 1985, street_other="đường Bình Thuận")
    k = snapshot_keys(s, CONFIG)
    assert snapshot_keys(k, CONFIG) is k
    assert (k.street_key, k.numbers, k.phone) == ("st01", ("5", "12"), None)
