"""The household register: search without diacritics, scope, the household's timeline."""

from __future__ import annotations

import re


def test_search_ignores_case_and_diacritics(sup1, add_household):
    add_household("Nguyễn Văn Hùng", house="5")
    add_household("Trần Thị Bình", house="7", year="1960")
    html = sup1.get("/households?q=nguyen+van+hung").get_data(as_text=True)
    assert "Nguyễn Văn Hùng" in html and "Trần Thị Bình" not in html
    assert "Nguyễn Văn Hùng" in sup1.get("/households?q=NGUYỄN").get_data(as_text=True)
    assert "Nguyễn Văn Hùng" in sup1.get("/households?q=hung").get_data(as_text=True)
    # typed with marks, the marks count
    assert "Nguyễn Văn Hùng" not in sup1.get("/households?q=Hưng").get_data(as_text=True)
    assert "Trần Thị Bình" in sup1.get("/households?q=tran+binh").get_data(as_text=True)


def test_leader_sees_only_its_tdp(sup1, admin, add_household):
    mine = add_household("Nguyễn Văn Hùng", tdp="tdp01")
    other = add_household("Lê Thị Lan", tdp="tdp02")
    html = sup1.get("/households").get_data(as_text=True)
    assert "Nguyễn Văn Hùng" in html and "Lê Thị Lan" not in html
    assert sup1.get(f"/households/{other}").status_code == 403
    assert sup1.get(f"/households/{mine}").status_code == 200
    everything = admin.get("/households").get_data(as_text=True)
    assert "Nguyễn Văn Hùng" in everything and "Lê Thị Lan" in everything
    assert admin.get(f"/households/{other}").status_code == 200


def test_household_page_has_members_surveys_and_visits(app, sup1, add_household, collect,
                                                       xforms):
    from tests.support import instances

    hid = add_household("Nguyễn Văn Hùng")
    visit = instances.build(xforms["support_visit"], {
        "g_hh/tdp": "tdp01", "g_hh/hh": hid, "g_hh/visit_date": "2026-11-22",
        "g_close/update_status": "yes", "e_last_visit": "2026-11-22"},
        repeats={"g_svc/svc": [{"svc_code": "vneid_l2", "svc_outcome": "done"}]},
        entity={"id": hid, "update": "1", "baseVersion": "1"})
    assert collect.submit(visit)[0].status == 201
    html = sup1.get(f"/households/{hid}").get_data(as_text=True)
    assert "Thành viên" in html and "1971" in html
    timeline = html[html.index('class="timeline"'):]
    assert "Khảo sát hộ" in timeline and "Hỗ trợ tại hộ" in timeline
    assert "VNeID: hướng dẫn định danh mức 2" in timeline
    assert timeline.index("22/11/2026") < timeline.index("20/11/2026")  # newest first
    assert len(re.findall(r'href="/submissions/\d+"', timeline)) == 2
