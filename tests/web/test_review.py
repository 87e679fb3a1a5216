"""Submissions: list, filters, scope, the answers with the form's labels, review and thread."""

from __future__ import annotations

import re

from sqlalchemy import select

from server.db.models import AuditEntry, ReviewComment, Submission
from tests.openrosa.conftest import rows


def _ids(app) -> dict[str, int]:
    """Submission id by the tdp answer."""
    session = app.extensions["db"].session()
    try:
        out = {}
        for sub in session.scalars(select(Submission)):
            version = sub.versions[-1]
            out[version.fields["root"]["g_intro/tdp"]] = sub.id
        return out
    finally:
        session.close()


def test_list_shows_only_the_leaders_tdp(app, sup1, admin, add_household):
    add_household("Nguyễn Văn Hùng", tdp="tdp01")
    add_household("Lê Thị Lan", tdp="tdp02")
    ids = _ids(app)
    mine = sup1.get("/submissions").get_data(as_text=True)
    assert "Nguyễn Văn Hùng" in mine and "Lê Thị Lan" not in mine
    everything = admin.get("/submissions").get_data(as_text=True)
    assert "Nguyễn Văn Hùng" in everything and "Lê Thị Lan" in everything
    assert sup1.get(f"/submissions/{ids['tdp02']}").status_code == 403
    assert admin.get(f"/submissions/{ids['tdp02']}").status_code == 200
    # a filter cannot widen the scope
    assert "Lê Thị Lan" not in sup1.get("/submissions?tdp=tdp02").get_data(as_text=True)


def test_filters(app, admin, add_household):
    add_household("Nguyễn Văn Hùng", tdp="tdp01")
    add_household("Lê Thị Lan", tdp="tdp02")
    html = admin.get("/submissions?tdp=tdp02").get_data(as_text=True)
    assert "Lê Thị Lan" in html and "Nguyễn Văn Hùng" not in html
    assert "Lê Thị Lan" not in admin.get("/submissions?form=support_visit").get_data(as_text=True)
    assert "Lê Thị Lan" in admin.get("/submissions?state=received").get_data(as_text=True)
    assert "Lê Thị Lan" not in admin.get("/submissions?state=approved").get_data(as_text=True)
    assert "Lê Thị Lan" not in admin.get("/submissions?date_to=2000-01-01").get_data(as_text=True)
    assert "Lê Thị Lan" in admin.get("/submissions?date_from=2000-01-01").get_data(as_text=True)


def test_detail_shows_vietnamese_labels_and_choice_labels(app, sup1, add_household):
    add_household("Nguyễn Văn Hùng", tdp="tdp01", **{"g_head/head_sex": "male"})
    html = sup1.get(f"/submissions/{_ids(app)['tdp01']}").get_data(as_text=True)
    assert "Họ và tên chủ hộ" in html and "Nguyễn Văn Hùng" in html
    assert "Tổ dân phố 1" in html  # the choice label, not "tdp01"
    assert re.search(r"<dt>Giới tính của chủ hộ</dt><dd>\s*Nam", html)


def test_photo_is_shown_inline_through_an_authorised_route(app, sup1, admin, add_household):
    jpeg = b"\xff\xd8\xff\xe0 a tiny jpeg"
    add_household("Nguyễn Văn Hùng", tdp="tdp02", attachments={"house.jpg": jpeg},
                  **{"g_end/house_photo": "house.jpg"})
    sid = _ids(app)["tdp02"]
    html = admin.get(f"/submissions/{sid}").get_data(as_text=True)
    src = re.search(r'<img class="photo" src="([^"]+)"', html).group(1)
    photo = admin.get(src)
    assert photo.status_code == 200 and photo.data == jpeg
    assert photo.headers["Content-Type"] == "image/jpeg"
    assert "sandbox" in photo.headers["Content-Security-Policy"]
    photo.close()
    assert sup1.get(src).status_code == 403  # tdp02 is not sup1's


def test_review_state_and_comment_are_audited(app, sup1, add_household):
    add_household("Nguyễn Văn Hùng", tdp="tdp01")
    sid = _ids(app)["tdp01"]
    response = sup1.post(f"/submissions/{sid}/review",
                         {"state": "has_issues", "comment": "Thiếu số nhà, kiểm tra lại."},
                         page=f"/submissions/{sid}")
    assert response.status_code == 302
    [sub] = rows(app, Submission)
    assert sub.review_state == "has_issues"
    [comment] = rows(app, ReviewComment)
    assert comment.body == "Thiếu số nhà, kiểm tra lại." and comment.review_state == "has_issues"
    [entry] = [e for e in rows(app, AuditEntry) if e.action == "submission.review"]
    assert entry.target == str(sid)
    assert entry.details["from_state"] == "received" and entry.details["to_state"] == "has_issues"
    html = sup1.get(f"/submissions/{sid}").get_data(as_text=True)
    assert "Thiếu số nhà, kiểm tra lại." in html and "Có vấn đề" in html
    # a comment alone keeps the state
    sup1.post(f"/submissions/{sid}/review", {"comment": "Đã gọi lại cho hộ."},
              page=f"/submissions/{sid}")
    assert rows(app, Submission)[0].review_state == "has_issues"
    assert len(rows(app, ReviewComment)) == 2


def test_review_without_csrf_token_changes_nothing(app, sup1, add_household):
    add_household("Nguyễn Văn Hùng", tdp="tdp01")
    sid = _ids(app)["tdp01"]
    refused = sup1.client.post(f"/submissions/{sid}/review", data={"state": "approved"})
    assert refused.status_code == 400
    assert rows(app, Submission)[0].review_state == "received"


def test_bad_review_input_is_a_readable_400(app, sup1, add_household):
    add_household("Nguyễn Văn Hùng", tdp="tdp01")
    sid = _ids(app)["tdp01"]
    response = sup1.post(f"/submissions/{sid}/review", {"state": "burnt"},
                         page=f"/submissions/{sid}")
    assert response.status_code == 400 and "<h1>" in response.get_data(as_text=True)


def test_bad_query_input_never_gives_a_server_error(app, sup1, add_household):
    add_household("Nguyễn Văn Hùng", tdp="tdp01")
    for path in ("/submissions?page=-3", "/submissions?page=abc", "/submissions?page=99999999999",
                 "/submissions?date_from=31/12/2026", "/submissions?volunteer=99999999999999",
                 "/submissions?state=%00", "/submissions?form=" + "x" * 5000,
                 "/submissions/999999999", "/submissions/99999999999999999999",
                 "/submissions/1?version=abc", "/households?page=0&q=%ff",
                 "/households/" + "a" * 300, "/duplicates/0", "/?period=2026-13",
                 "/?period=garbage", "/exports?period=x", "/exports/dedupe/nothing.csv",
                 "/exports/indicators/indicators_long.csv?period=2026-99",
                 "/exports/submissions/nope.zip", "/setup/99999"):
        response = sup1.get(path)
        assert response.status_code < 500, (path, response.status_code)
        assert "<html" in response.get_data(as_text=True), path
