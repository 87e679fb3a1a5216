"""The dashboard shows the ward's figures as the exports compute them, fresh after every
upload, without loading every submission again when nothing changed."""

from __future__ import annotations

import re

from server.exports import facts_cache


def ward_counts(html: str) -> list[str]:
    """The "n/m" under each headline indicator in the ward's row."""
    row = html.split("Toàn phường", 1)[1].split("</tr>", 1)[0]
    return re.findall(r'<span class="small muted">([^<]*)</span>', row)


def test_dashboard_is_fresh_after_an_upload_and_reuses_unchanged_facts(
        admin, add_household, monkeypatch):
    loads = []
    real_load = facts_cache.load_facts
    monkeypatch.setattr(facts_cache, "load_facts",
                        lambda *a, **kw: loads.append(1) or real_load(*a, **kw))
    add_household("Nguyễn Văn Hùng", tdp="tdp01")
    first = ward_counts(admin.get("/?period=2026").get_data(as_text=True))
    assert admin.get("/?period=2026").status_code == 200
    assert len(loads) == 1  # the second view found the facts unchanged

    add_household("Lê Thị Lan", tdp="tdp02", house="40", year="1980")
    second = ward_counts(admin.get("/?period=2026").get_data(as_text=True))
    assert len(loads) == 2
    assert second != first  # the new household counts at once
    assert second[0].split("/")[0].strip() != first[0].split("/")[0].strip()
