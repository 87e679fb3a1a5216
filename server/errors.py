"""The error catalogue. Each problem has a stable code whose integer part is the HTTP status.

Messages that Collect shows a volunteer are Vietnamese first, English after.
"""

from __future__ import annotations


class DomainError(Exception):
    code: float = 400.0
    vi: str = "Yêu cầu không hợp lệ."
    en: str = "Invalid request."

    def __init__(self, detail: str | None = None, *, vi: str | None = None, en: str | None = None):
        self.detail = detail
        if vi:
            self.vi = vi
        if en:
            self.en = en
        super().__init__(self.message)

    @property
    def status(self) -> int:
        return int(self.code)

    @property
    def message(self) -> str:
        text = f"{self.vi} / {self.en}"
        return f"{text} ({self.detail})" if self.detail else text


def problem(code: float, vi: str, en: str, name: str) -> type[DomainError]:
    return type(name, (DomainError,), {"code": code, "vi": vi, "en": en})


InvalidSubmission = problem(
    400.2, "Phiếu gửi lên không hợp lệ.", "The submission is not valid.", "InvalidSubmission"
)
MissingXmlPart = problem(
    400.7,
    "Thiếu tệp phiếu (xml_submission_file).",
    "Required multipart field xml_submission_file is missing.",
    "MissingXmlPart",
)
MalformedMultipart = problem(
    400.39, "Dữ liệu gửi lên bị hỏng.", "The multipart body is malformed.", "MalformedMultipart"
)
MalformedXml = problem(
    400.8, "Tệp phiếu không phải XML hợp lệ.", "The submission XML is malformed.", "MalformedXml"
)
Unauthorized = problem(
    401.2, "Cần đăng nhập.", "Could not authenticate with the provided credentials.", "Unauthorized"
)
Forbidden = problem(
    403.1,
    "Tài khoản không có quyền hoặc đã bị thu hồi.",
    "The credentials are unknown, revoked, or not allowed to do this.",
    "Forbidden",
)
FormNotFound = problem(
    404.1, "Không tìm thấy biểu mẫu.", "Could not find the form.", "FormNotFound"
)
NotFound = problem(404.1, "Không tìm thấy.", "Could not find the resource.", "NotFound")
DeprecatedNotFound = problem(
    404.5,
    "Không tìm thấy phiếu gốc cần sửa.",
    "The submission being edited (deprecatedID) was not found.",
    "DeprecatedNotFound",
)
FormVersionNotFound = problem(
    404.6,
    "Phiên bản biểu mẫu không có trên máy chủ.",
    "The form version of this submission does not exist on the server.",
    "FormVersionNotFound",
)
XmlConflict = problem(
    409.1,
    "Đã có phiếu với mã này nhưng nội dung khác. Gửi lại tệp đính kèm phải kèm đúng phiếu cũ.",
    "A submission already exists with this ID, but with different XML. Resubmissions to "
    "attach additional multimedia must resubmit an identical xml_submission_file.",
    "XmlConflict",
)
FormClosed = problem(
    409.2,
    "Biểu mẫu đã đóng, không nhận phiếu mới.",
    "The form is closed and does not accept submissions.",
    "FormClosed",
)
EditConflict = problem(
    409.9,
    "Phiếu này đã được sửa bởi một bản khác; hãy tải bản mới nhất.",
    "The submission being edited has already been superseded by another edit.",
    "EditConflict",
)
TooLarge = problem(
    413.1,
    "Dữ liệu gửi lên quá lớn.",
    "The request body is larger than the server accepts.",
    "TooLarge",
)


class PublishError(Exception):
    """A form cannot be published; the message is shown to the operator as it is."""
