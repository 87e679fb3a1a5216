"""Who sees a phone number in full, and how everybody else sees it (Law 91/2025/QH15).

The rule, in one place: an admin, and a team leader for the households of its own tổ (it phones
them for follow-ups), see full phone numbers. Everyone else, in pages and in exports, sees
`09xx xxx 123`: the first two digits (mobile or landline) and the last three, which every
volunteer's phone already carries as `phone_tail`. The ward office reads reports and decides
duplicates; it does not need to call anyone.

Identity numbers are never stored (domain §3.1): only their last four digits exist, and they
are shown to nobody in a longer form than `•••• 1234`.
"""

from __future__ import annotations

from typing import Protocol

#: Field names (in any form) that hold a full phone number.
PHONE_FIELDS = frozenset({"phone"})


class Viewer(Protocol):
    role: str
    team: str | None


def sees_full_phone(viewer: Viewer | None, tdp: str | None) -> bool:
    """Whether `viewer` may read the full phone numbers of a household of tổ `tdp` (None: a
    page or an export that spans the whole ward). No viewer means the server's operator."""
    if viewer is None or viewer.role == "admin":
        return True
    leads = viewer.role == "supervisor" and bool(viewer.team) and viewer.team != "ward"
    return leads and tdp is not None and tdp == viewer.team


def mask_phone(value: str | None) -> str:
    """`0912345678` → `09xx xxx 678`; `02073812345` → `02xx xxxx 345`; blank stays blank."""
    digits = "".join(c for c in str(value or "") if c.isdigit())
    if not digits:
        return ""
    if len(digits) <= 6:  # not a phone number: nothing of it is shown
        return "x" * len(digits)
    middle = "x" * (len(digits) - 7)
    return " ".join(part for part in (f"{digits[:2]}xx", middle, digits[-3:]) if part)


def show_phone(value: str | None, full: bool) -> str:
    return (value or "") if full else mask_phone(value)


def pid_tail(last4: str | None) -> str:
    """The only form an identity number is ever shown in."""
    return f"•••• {last4}" if last4 else ""
