"""E3 `households_register`, E4 `members_register` and E5 `service_events` (domain §6.4).

Why they reuse the indicator code: a register row must say exactly what the report counted,
so households and members are read through the same facts and the same effective status at
`period_end` (§6.2); identity and address come from the cluster's survivorship (§7.6), the same
rule the entity list uses, so a merged household shows one head and one address.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from server.db.models import utcnow
from server.domain import dedupe
from server.domain.masking import mask_phone
from server.domain.ward import WardConfig
from server.exports.facts import (
    DEFAULT_TIMEZONE,
    Facts,
    HouseholdFact,
    SnapshotFact,
    facts_for_ward,
)
from server.exports.indicators import (
    HouseholdAt,
    MemberAt,
    Report,
    Tri,
    period_span,
    tri,
)
from server.exports.tables import Table

__all__ = ["E3_COLUMNS", "E4_COLUMNS", "E5_COLUMNS", "address_display", "register_tables"]

E3_COLUMNS = (
    "household_id,tdp_code,street_code,street_name,alley,house_no,landmark,address_display,"
    "head_name,head_birth_year,head_sex,phone_norm,phone_owner,has_pid,pid_last4,n_members,"
    "n_adults,consent,informed,informed_channels,internet,has_smartphone_member,"
    "has_basic_member,has_vneid_member,has_dvc_member,is_capable,assigned_helper,has_pupils,"
    "school_app,business,biz_registered,biz_type,biz_cashless,biz_pay_methods,ocop,ocop_name,"
    "online_channels,online_supported,lat,lon,gps_accuracy_m,first_survey_date,"
    "last_survey_date,n_surveys,n_source_entities,n_visits,last_visit_date,needs_followup,"
    "followup_date,dedupe_status,status"
).split(",")
E4_COLUMNS = (
    "member_id,household_id,tdp_code,full_name,birth_year,sex,age,relation,is_head,is_adult,"
    "smartphone,basic_skill,skills,vneid,dvc,cashless,digisig,vssid,ehealth,bdhvs,thpt_student,"
    "thpt_trained,is_capable,needs,snapshot_date,last_upgrade_visit_date"
).split(",")
E5_COLUMNS = (
    "instance_id,submitted_at,visit_date,volunteer_id,volunteer_tdp,household_id,"
    "entity_id_submitted,tdp_code,visit_mode,service_code,service_level,member_id,"
    "member_name_other,outcome,member_done,fail_reason,dvc_dossier,minutes_share,followup_date,"
    "satisfaction,has_photo,is_unique_completion,verified"
).split(",")


def flag(value: Tri) -> int | str:
    """1 / 0, and an empty cell for unknown (§2.4)."""
    return "" if value is None else int(value)


def _iso(day: dt.date | None) -> str:
    return "" if day is None else day.isoformat()


def address_display(street_name: str, alley: str, house_no: str, landmark: str) -> str:
    """The address as the entity label shows it on the phones (`Số 12 ngõ 5 Đường …`)."""
    parts = []
    if house_no:
        parts.append(f"Số {house_no}")
    elif landmark:
        parts.append(f"{landmark},")
    if alley:
        parts.append(f"ngõ {alley}")
    if street_name:
        parts.append(street_name)
    return " ".join(parts)


def _to_dedupe(s: SnapshotFact) -> dedupe.Snapshot:
    return dedupe.Snapshot(
        snapshot_id=str(s.submission_id), entity_id=s.entity_id, tdp=s.tdp,
        uploaded_at=s.uploaded_at, street=s.street, street_other=s.street_other, alley=s.alley,
        house_no=s.house_no, landmark=s.landmark, head_name=s.head_name,
        head_birth_year=s.head_birth_year, head_sex=s.head_sex, phone=s.phone,
        phone_owner=s.phone_owner, pid_hmac=s.pid_hmac, pid_last4=s.pid_last4,
        members=tuple(dedupe.Member(m.name, m.birth_year, m.sex) for m in s.members),
        lat=s.lat, lon=s.lon, accuracy=s.accuracy, updated_entity=not s.new_household,
        consent=s.consent, survey_date=s.survey_date)


def _dedupe_status(h: HouseholdFact) -> str:
    if h.pending_review:
        return "pending_review"
    if len(h.entity_ids) > 1:
        return "reviewed_merged" if h.merged_by_review else "auto_merged"
    return "single"


class _Registers:
    def __init__(self, facts: Facts, ward: WardConfig, start: dt.date | None,
                 end: dt.date, mask_phones: bool = False) -> None:
        self.facts, self.ward, self.start, self.end = facts, ward, start, end
        self.phone = mask_phone if mask_phones else (lambda value: value)
        self.report = Report(facts, ward)
        self.streets = {s.name: s.label_vi for s in ward.streets}
        self._households: list[HouseholdAt] | None = None

    def households(self) -> list[HouseholdAt]:
        """Households at `end`, by tổ then first survey; computed once for E3 and E4."""
        if self._households is None:
            self._households = sorted(
                self.report.households_at(self.end),
                key=lambda at: (at.tdp, at.household.snapshots[0].survey_date,
                                at.household.household_id))
        return self._households

    # E3 -------------------------------------------------------------------------------------

    def household_rows(self) -> Iterator[list]:
        adult = self.ward.adult_min_age
        for at in self.households():
            h, snap, day = at.household, at.snapshot, self.end
            snaps = h.snapshots_until(day)
            merged = dedupe.survivorship([_to_dedupe(s) for s in snaps])
            street = merged.get("street") or ""
            street_name = (merged.get("street_other") or "" if street == "other"
                           else self.streets.get(street, street))
            alley, house_no = merged.get("alley") or "", merged.get("house_no") or ""
            landmark = merged.get("landmark") or ""
            visits = [v for v in h.visits if v.visit_date <= day]
            last = max(visits, key=lambda v: v.order_key()) if visits else None
            consented = at.consented
            smartphone, basic, vneid, dvc, capable = at.member_flags()

            def when(value: Tri, consented: bool = consented) -> int | str:
                return flag(value) if consented else ""

            yield [
                h.household_id, at.tdp, street, street_name, alley, house_no, landmark,
                address_display(street_name, alley, house_no, landmark),
                merged.get("head_name") or "", merged.get("head_birth_year") or "",
                merged.get("head_sex") or "", self.phone(merged.get("phone") or ""),
                merged.get("phone_owner") or "", int(bool(merged.get("pid_hmac"))),
                merged.get("pid_last4") or "",
                len(at.members) if consented else "",
                sum(1 for m in at.members if m.aged(adult)) if consented else "",
                int(snap.consent), flag(at.informed), snap.channels, snap.internet,
                when(smartphone), when(basic), when(vneid), when(dvc), when(capable), snap.helper,
                flag(tri(snap.pupils)), when(at.school_app), flag(tri(snap.business)),
                flag(tri(snap.biz_registered)), snap.biz_type, when(at.biz_cashless),
                snap.biz_pay_methods, flag(tri(snap.ocop)), snap.ocop_name, snap.biz_online,
                int(at.online_supported) if consented else "",
                _num(merged.get("lat")), _num(merged.get("lon")), _num(merged.get("accuracy")),
                _iso(snaps[0].survey_date), _iso(snaps[-1].survey_date), len(snaps),
                len(h.entity_ids), len({(v.volunteer_id, v.visit_date) for v in visits}),
                _iso(last.visit_date if last else None),
                "" if last is None else int(last.needs_followup),
                _iso(last.followup_date if last else None), _dedupe_status(h), at.status,
            ]

    # E4 -------------------------------------------------------------------------------------

    def member_rows(self) -> Iterator[list]:
        adult = self.ward.adult_min_age
        for at in self.households():
            if not at.consented:
                continue
            for m in at.members:
                yield self._member(at, m, adult)

    def _member(self, at: HouseholdAt, m: MemberAt, adult: int) -> list:
        r = m.record
        return [
            r.member_id, at.household.household_id, at.tdp, r.name,
            "" if r.birth_year is None else r.birth_year, r.sex, "" if m.age is None else m.age,
            r.relation, int(r.index == 0), "" if m.age is None else int(m.age >= adult),
            flag(m.smartphone), flag(m.basic), r.skills, m.vneid, flag(m.dvc),
            flag(m.cashless), flag(m.digisig), flag(m.vssid), flag(m.ehealth), flag(m.bdhvs),
            flag(m.student), flag(m.trained), flag(m.capable), r.needs,
            _iso(at.snapshot.survey_date), _iso(m.last_upgrade),
        ]

    # E5 -------------------------------------------------------------------------------------

    def event_rows(self) -> Iterator[list]:
        facts, households = self.facts, self.facts.households
        for e in facts.events:
            v = e.visit
            if v.visit_date > self.end or (self.start is not None and v.visit_date < self.start):
                continue
            h = households.get(v.household_id)
            yield [
                v.instance_id, facts.local(v.submitted_at).isoformat(timespec="seconds"),
                v.visit_date.isoformat(), v.volunteer_id, v.volunteer_tdp, v.household_id,
                v.entity_id_submitted,
                h.tdp_at(v.visit_date) if h is not None else v.tdp_submitted, v.visit_mode,
                e.service_code, e.service_level, e.member_id, e.member_name_other, e.outcome,
                int(e.member_done), e.fail_reason, e.dossier,
                "" if e.minutes_share is None else str(e.minutes_share),
                _iso(v.followup_date), v.satisfaction, int(v.has_photo),
                int(e.is_unique_completion), flag(e.verified),
            ]


def _num(value: float | None) -> float | str:
    return "" if value is None else value


def register_tables(
    session: Session,
    project_id: int,
    ward: WardConfig,
    *,
    period: str | None = None,
    as_of: dt.datetime | None = None,
    timezone: str = DEFAULT_TIMEZONE,
    now: dt.datetime | None = None,
    facts: Facts | None = None,
    mask_phones: bool = False,
) -> list[Table]:
    """E3 and E4 as of the period's last day (no period: today), and E5 for the visits dated
    in the period (no period: up to today), from the data uploaded by `as_of`. `mask_phones`:
    for a reader who may not see full phone numbers (server/domain/masking.py)."""
    now = now or utcnow()
    start, end = period_span(period, now.astimezone(ZoneInfo(timezone)).date())
    facts = facts_for_ward(session, project_id, ward, as_of=as_of, timezone=timezone,
                           facts=facts)
    registers = _Registers(facts, ward, start, end, mask_phones)
    return [
        Table("households_register", list(E3_COLUMNS), registers.household_rows),
        Table("members_register", list(E4_COLUMNS), registers.member_rows),
        Table("service_events", list(E5_COLUMNS), registers.event_rows),
    ]
