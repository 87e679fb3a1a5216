"""The duplicate queue through the pages: side by side, decisions, unmerge (domain §7.8)."""

from __future__ import annotations

from server.db.models import AuditEntry, DedupePair, Entity, MergeLogEntry
from tests.openrosa.conftest import rows


def live(app):
    return {e.id for e in rows(app, Entity) if e.canonical_id is None}


def test_pair_side_by_side_with_differences(app, sup1, add_household):
    add_household("Nguyễn Văn Hùng", house="5", year="1970")
    add_household("Nguyễn Văn Hưng", house="5", year="1970")
    [pair] = rows(app, DedupePair)
    queue = sup1.get("/duplicates").get_data(as_text=True)
    assert f"/duplicates/{pair.id}" in queue
    html = sup1.get(f"/duplicates/{pair.id}").get_data(as_text=True)
    assert "Nguyễn Văn Hùng" in html and "Nguyễn Văn Hưng" in html
    assert '<tr class="differ"><th>Chủ hộ' in html
    assert '<tr class="same"><th>Địa chỉ' in html


def test_keep_separate_then_merge_through_the_page(app, sup1, add_household):
    a = add_household("Nguyễn Văn Hùng", house="5", year="1970")
    b = add_household("Nguyễn Văn Hưng", house="5", year="1970")
    [pair] = rows(app, DedupePair)
    response = sup1.post(f"/duplicates/{pair.id}/decide",
                         {"decision": "keep_separate", "note": "hai anh em"},
                         page=f"/duplicates/{pair.id}")
    assert response.status_code == 302
    [pair] = rows(app, DedupePair)
    assert (pair.status, pair.decision, pair.note) == ("decided", "keep_separate", "hai anh em")
    assert live(app) == {a, b}
    assert ("households.decide", str(pair.id)) in [(e.action, e.target)
                                                   for e in rows(app, AuditEntry)]
    assert f"/duplicates/{pair.id}" not in sup1.get("/duplicates").get_data(as_text=True)


def test_merge_and_unmerge_by_the_office(app, sup1, admin, add_household):
    a = add_household("Nguyễn Văn Hùng", house="5", year="1970")
    b = add_household("Nguyễn Văn Hưng", house="5", year="1970")
    [pair] = rows(app, DedupePair)
    sup1.post(f"/duplicates/{pair.id}/decide", {"decision": "merge"},
              page=f"/duplicates/{pair.id}")
    assert live(app) == {a}
    log = sup1.get("/duplicates/merges").get_data(as_text=True)
    assert "Tách ra" not in log  # a team leader cannot undo a merge
    assert sup1.post(f"/duplicates/unmerge/{b}", page="/duplicates/merges").status_code == 403
    assert "Tách ra" in admin.get("/duplicates/merges").get_data(as_text=True)
    assert admin.post(f"/duplicates/unmerge/{b}", page="/duplicates/merges").status_code == 302
    assert live(app) == {a, b}
    actions = [(m.action, m.alias_id, m.undone_at is not None) for m in rows(app, MergeLogEntry)]
    assert ("merge", b, True) in actions and ("unmerge", b, False) in actions
    assert ("households.unmerge", b) in [(e.action, e.target) for e in rows(app, AuditEntry)]


def test_cross_tdp_pairs_are_for_the_office(app, sup1, admin, add_household):
    from server.db.models import HouseholdSnapshot

    add_household("Đặng Thị Thu", house="88", year="1979", tdp="tdp01")
    add_household("Đặng Thị Thu", house="88", year="1979", tdp="tdp02")
    session = app.extensions["db"].session(write=True)
    for snap in session.query(HouseholdSnapshot):
        snap.data = {**snap.data, "pid_hmac": "a" * 64}
    session.commit()
    session.close()
    from server.domain import matching

    session = app.extensions["db"].session(write=True)
    matching.rerun(session, 1, app.extensions["matcher"])
    session.commit()
    session.close()
    [pair] = [p for p in rows(app, DedupePair) if p.status == "pending"]
    assert f"/duplicates/{pair.id}" not in sup1.get("/duplicates").get_data(as_text=True)
    assert sup1.get(f"/duplicates/{pair.id}").status_code == 403
    refused = sup1.client.post(f"/duplicates/{pair.id}/decide", data={"decision": "merge"})
    assert refused.status_code in (400, 403)
    assert f"/duplicates/{pair.id}" in admin.get("/duplicates").get_data(as_text=True)
    assert admin.post(f"/duplicates/{pair.id}/decide", {"decision": "merge"},
                      page=f"/duplicates/{pair.id}").status_code == 302
    assert len(live(app)) == 1
