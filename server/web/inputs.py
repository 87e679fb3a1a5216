"""WTForms classes of the web UI ("inputs": in this codebase "form" means an ODK form).

Labels are lazy gettext strings, so each page shows them in the reader's language.
"""

from __future__ import annotations

import datetime as dt

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    DateField,
    HiddenField,
    IntegerField,
    PasswordField,
    RadioField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional

try:
    from wtforms import SelectChoice
except ImportError:  # WTForms before 3.3 takes (value, label) tuples
    SelectChoice = None

REVIEW_STATES = ("received", "has_issues", "approved", "rejected")


def options(pairs) -> list:
    """Choices for a SelectField or RadioField, in the shape this WTForms wants."""
    return [SelectChoice(v, label) if SelectChoice else (v, label) for v, label in pairs]


def review_state_label(state: str) -> str:
    return str({
        "received": _l("Đã nhận"),
        "has_issues": _l("Có vấn đề"),
        "approved": _l("Đã duyệt"),
        "rejected": _l("Bị từ chối"),
        "edited": _l("Đã sửa"),
    }.get(state, state))


class LoginInput(FlaskForm):
    username = StringField(_l("Tên đăng nhập"), validators=[DataRequired(), Length(max=100)])
    password = PasswordField(_l("Mật khẩu"), validators=[DataRequired(), Length(max=200)])
    next = HiddenField()


class ReviewInput(FlaskForm):
    state = SelectField(_l("Trạng thái duyệt"), validators=[Optional()],
                        choices=options([("", "—")] + [(s, s) for s in REVIEW_STATES]))
    comment = TextAreaField(_l("Ý kiến"), validators=[Optional(), Length(max=4000)])

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.state.choices = options([("", _l("— giữ nguyên —"))] + [
            (s, review_state_label(s)) for s in REVIEW_STATES])


class DecisionInput(FlaskForm):
    decision = RadioField(_l("Quyết định"), validators=[InputRequired()], choices=options([
        ("merge", _l("Gộp làm một hộ")),
        ("keep_separate", _l("Là hai hộ khác nhau")),
        ("defer", _l("Để sau")),
    ]))
    note = StringField(_l("Ghi chú"), validators=[Optional(), Length(max=1000)])


class ActionInput(FlaskForm):
    """A button that changes something: only its CSRF token is checked."""


class SubmissionFilter(FlaskForm):
    class Meta:
        csrf = False

    form = SelectField(_l("Biểu mẫu"), validators=[Optional()], validate_choice=False)
    tdp = SelectField(_l("Tổ dân phố"), validators=[Optional()], validate_choice=False)
    volunteer = SelectField(_l("Người gửi"), validators=[Optional()], validate_choice=False)
    state = SelectField(_l("Trạng thái duyệt"), validators=[Optional()], validate_choice=False)
    date_from = DateField(_l("Từ ngày"), validators=[Optional()])
    date_to = DateField(_l("Đến ngày"), validators=[Optional()])
    page = IntegerField(validators=[Optional(), NumberRange(min=1, max=100_000)])

    def clean(self) -> dict:
        """The filters that validated; a bad one is dropped, never an error page."""
        self.validate()
        out = {}
        for name in ("form", "tdp", "volunteer", "state"):
            value = self[name].data
            if value and not self[name].errors and len(value) <= 255:
                out[name] = value
        for name in ("date_from", "date_to"):
            if isinstance(self[name].data, dt.date) and not self[name].errors:
                out[name] = self[name].data
        page = self.page.data if not self.page.errors else None
        out["page"] = page if isinstance(page, int) else 1
        return out


class SearchInput(FlaskForm):
    class Meta:
        csrf = False

    q = StringField(_l("Tìm theo tên chủ hộ, địa chỉ"), validators=[Optional(), Length(max=200)])
    tdp = SelectField(_l("Tổ dân phố"), validators=[Optional()], validate_choice=False)
    page = IntegerField(validators=[Optional(), NumberRange(min=1, max=100_000)])


class IssueInput(FlaskForm):
    """Issue (freeze) a report for a period, as the office sends it."""

    kind = SelectField(_l("Báo cáo"), validators=[InputRequired()], choices=options([
        ("indicators", _l("Chỉ tiêu (E1, E2)")),
        ("households", _l("Sổ hộ, sổ thành viên, lượt hỗ trợ (E3–E5)")),
        ("activity", _l("Hoạt động của tình nguyện viên và của tổ")),
    ]))
    period = StringField(_l("Kỳ báo cáo"), validators=[DataRequired(), Length(max=20)])
    note = StringField(_l("Ghi chú (số công văn…)"), validators=[Optional(), Length(max=500)])
