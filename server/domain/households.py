"""The household register: what each survey says (snapshots), the people in each household,
and the link between both and the households entity list.

Snapshots are recorded at ingest, in the submission's transaction; matching them against each
other (de-duplication) lives in server/domain/matching.py.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.db.models import Entity, HouseholdMember, HouseholdSnapshot, SubmissionVersion

SURVEY_FORM = "household_survey"
DATASET = "households"


def _year(value: str) -> int | None:
    value = (value or "").strip()
    return int(value) if value.isdigit() and 1880 <= int(value) <= 2100 else None


def snapshot_data(fields: dict, version: SubmissionVersion) -> dict | None:
    """The matching-relevant content of one household survey, or None when nobody was met."""
    root = fields.get("root", {})
    if root.get("g_intro/contact_result") != "met":
        return None
    members = [
        {"name": m["values"].get("m_name_eff", ""),
         "birth_year": _year(m["values"].get("m_birth_year_eff", "")),
         "sex": m["values"].get("m_sex_eff", "")}
        for m in fields.get("repeats", {}).get("g_members/members", [])
    ]
    lat = lon = accuracy = None
    parts = (root.get("g_end/location") or "").split()
    if len(parts) >= 2:
        try:
            lat, lon = float(parts[0]), float(parts[1])
            accuracy = float(parts[3]) if len(parts) >= 4 else None
        except ValueError:
            lat = lon = accuracy = None
    return {
        "tdp": root.get("g_intro/tdp", ""),
        "hh_mode": root.get("g_intro/hh_mode", ""),
        "consent": root.get("g_intro/consent", "") == "yes",
        "street": root.get("g_addr/street", ""),
        "street_other": root.get("g_addr/street_other", ""),
        "alley": root.get("g_addr/alley", ""),
        "house_no": root.get("g_addr/house_no", ""),
        "landmark": root.get("g_addr/landmark", ""),
        "head_name": root.get("g_head/head_name", ""),
        "head_birth_year": _year(root.get("g_head/head_birth_year", "")),
        "head_sex": root.get("g_head/head_sex", ""),
        "phone": root.get("g_head/phone", ""),
        "phone_owner": root.get("g_head/phone_owner", ""),
        "pid_hmac": version.pid_hmac,
        "members": members,
        "lat": lat, "lon": lon, "accuracy": accuracy,
        "survey_date": root.get("survey_date", ""),
    }


def record_snapshot(session: Session, project_id: int, version: SubmissionVersion,
                    entity_id: str, now: datetime) -> HouseholdSnapshot | None:
    data = snapshot_data(version.fields or {}, version)
    if data is None or not entity_id:
        return None
    snap = HouseholdSnapshot(
        project_id=project_id, submission_version_id=version.id, entity_id=entity_id,
        tdp=data["tdp"] or None, survey_date=data["survey_date"] or None,
        consent=data["consent"], updated_entity=data["hh_mode"] == "existing", data=data,
        uploaded_at=now, current=True)
    session.add(snap)
    session.flush()
    return snap


def snapshot_of(session: Session, version: SubmissionVersion) -> HouseholdSnapshot | None:
    return session.scalar(select(HouseholdSnapshot).where(
        HouseholdSnapshot.submission_version_id == version.id))


def member_rows(session: Session, project_id: int, scope: str | None):
    """members.csv rows: the people of the latest consented snapshot of each listed household."""
    q = (select(HouseholdMember, Entity.id)
         .join(Entity, Entity.id == HouseholdMember.household_id)
         .where(HouseholdMember.project_id == project_id, HouseholdMember.present.is_(True),
                Entity.canonical_id.is_(None), Entity.erased.is_(False),
                Entity.deleted_at.is_(None))
         .order_by(Entity.created_at, Entity.id, HouseholdMember.name, HouseholdMember.id))
    if scope is not None:
        q = q.where(Entity.tdp == scope)
    for member, household_id in session.execute(q):
        year = member.birth_year if member.birth_year is not None else ""
        label = f"{member.name} – {year}" if year != "" else member.name
        yield member.id, label, household_id, year, member.sex or ""
