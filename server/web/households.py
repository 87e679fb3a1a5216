"""The household register (search ignores case and diacritics) and one household's page:
its people, and its surveys, support visits and merges on one timeline."""

from __future__ import annotations

from dataclasses import dataclass

from flask import abort, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import or_, select, true

from server.db.models import (
    Entity,
    HouseholdMember,
    HouseholdSnapshot,
    MergeLogEntry,
    Submission,
    SubmissionVersion,
    User,
)
from server.domain import entities, masking
from server.domain.forms import schema_of
from server.domain.normalize import clean_text, fold_ascii
from server.exports.dedupe_reports import address
from server.web import bp, scope
from server.web.inputs import SearchInput, options
from server.web.labels import form_labels
from server.web.review import project_forms
from server.web.templating import lang, tdp_choices, ward
from server.web_context import db_session

DATASET = "households"
PAGE_SIZE = 50
SV = SubmissionVersion


def street_labels() -> dict[str, str]:
    config = ward()
    if config is None:
        return {}
    return {s.name: (s.label_en if lang() == "en" else s.label_vi) for s in config.streets}


def search_key(text: str | None) -> tuple[str, str]:
    """(with marks, without marks) forms of a text, both casefolded and trimmed."""
    clean = clean_text(text)
    return clean, fold_ascii(clean)


def matches(query: str, haystack: str) -> bool:
    """Every word of the query is in the text; marks count only when the query has them."""
    q_clean, q_folded = search_key(query)
    h_clean, h_folded = search_key(haystack)
    words, text = (q_folded.split(), h_folded) if q_clean == q_folded else (
        q_clean.split(), h_clean)
    return all(w in text for w in words)


@bp.get("/households")
def households():
    db = db_session()
    pid = scope.project_id()
    inp = SearchInput(formdata=request.args)
    inp.tdp.choices = options([("", _("Tất cả"))] + tdp_choices())
    inp.validate()
    query = (inp.q.data or "").strip() if not inp.q.errors else ""
    tdp = inp.tdp.data or None
    q = select(Entity).where(Entity.project_id == pid, Entity.dataset == DATASET,
                             Entity.canonical_id.is_(None), Entity.erased.is_(False),
                             Entity.deleted_at.is_(None))
    if scope.team() is not None:
        q = q.where(Entity.tdp == scope.team())
    if tdp:
        q = q.where(Entity.tdp == tdp)
    streets = street_labels()
    found = []
    for e in db.scalars(q.order_by(Entity.created_at, Entity.id)):
        p = e.properties or {}
        text = " ".join([e.label, p.get("head_name", ""), address(p, streets)])
        if not query or matches(query, text):
            found.append(e)
    page = inp.page.data if isinstance(inp.page.data, int) and not inp.page.errors else 1
    pages = max(1, -(-len(found) // PAGE_SIZE))
    page = min(page, pages)
    rows = [{"e": e, "address": address(e.properties or {}, streets)}
            for e in found[(page - 1) * PAGE_SIZE: page * PAGE_SIZE]]
    args = {k: v for k, v in request.args.items() if k != "page" and len(v) <= 255}
    return render_template("households.html", inp=inp, rows=rows, total=len(found),
                           page=page, pages=pages, args=args)


@dataclass
class Event:
    date: str  # YYYY-MM-DD (or ISO time) for sorting
    kind: str  # survey | visit | merge | unmerge | keep_separate
    title: str
    detail: str = ""
    link: str | None = None
    who: str = ""


def load_household(hid: str) -> Entity:
    if len(hid) > 36:
        abort(404)
    db = db_session()
    e = db.get(Entity, hid)
    if e is None or e.project_id != scope.project_id() or e.dataset != DATASET:
        abort(404)
    scope.require_tdp(e.tdp)
    return e


@bp.get("/households/<hid>")
def household(hid: str):
    db = db_session()
    e = load_household(hid)
    if e.canonical_id is not None:
        canonical = entities.resolve(db, e.id)[0]
        if canonical is not None and canonical.id != e.id:
            return redirect(url_for("web.household", hid=canonical.id))
    cluster = [e.id, *db.scalars(select(Entity.id).where(Entity.canonical_id == e.id))]
    members = list(db.scalars(select(HouseholdMember).where(
        HouseholdMember.household_id == e.id).order_by(
        HouseholdMember.present.desc(), HouseholdMember.birth_year, HouseholdMember.name)))
    events = _surveys(db, cluster) + _visits(db, e.project_id, cluster) + _merges(db, cluster)
    events.sort(key=lambda ev: ev.date, reverse=True)
    phone, last4 = _contact(db, cluster)
    return render_template("household.html", e=e, p=e.properties or {}, members=members,
                           events=events, aliases=cluster[1:],
                           address=address(e.properties or {}, street_labels()),
                           phone=masking.show_phone(phone,
                                                    masking.sees_full_phone(g.actor, e.tdp)),
                           pid=masking.pid_tail(last4))


def _contact(db, cluster: list[str]) -> tuple[str, str]:
    """The phone and identity-number tail of the household's latest consented survey that
    has them (only the last four digits of an identity number exist)."""
    found = db.execute(
        select(HouseholdSnapshot.data, SV.pid_last4)
        .join(SV, SV.id == HouseholdSnapshot.submission_version_id)
        .where(HouseholdSnapshot.entity_id.in_(cluster), HouseholdSnapshot.current.is_(True),
               HouseholdSnapshot.consent.is_(True))
        .order_by(HouseholdSnapshot.survey_date.desc(), HouseholdSnapshot.id.desc())).all()
    phone = next((d.get("phone") for d, _l in found if (d or {}).get("phone")), "")
    return phone, next((last4 for _d, last4 in found if last4), "")


def _surveys(db, cluster: list[str]) -> list[Event]:
    rows = db.execute(
        select(HouseholdSnapshot, SV.submission_id, User.display_name)
        .join(SV, SV.id == HouseholdSnapshot.submission_version_id)
        .outerjoin(User, User.id == SV.submitter_id)
        .where(HouseholdSnapshot.entity_id.in_(cluster), HouseholdSnapshot.current.is_(True)))
    out = []
    for snap, sid, who in rows:
        d = snap.data or {}
        consent = _("đồng ý") if snap.consent else _("từ chối")
        out.append(Event(snap.survey_date or snap.uploaded_at.date().isoformat(), "survey",
                         _("Khảo sát hộ"), f"{d.get('head_name') or ''} · {consent} · "
                         + _("%(n)s thành viên", n=len(d.get("members") or [])),
                         url_for("web.submission", sid=sid), who or ""))
    return out


def _visits(db, project_id: int, cluster: list[str]) -> list[Event]:
    """Support visits: submissions of any form whose root `hh` answer names the household."""
    out = []
    for form in project_forms(db, project_id):
        if form.current_version_id is None:
            continue
        xml = form.current_version.xml
        schema = schema_of(xml)
        hh = [f.rel_path for f in schema.fields if f.name == "hh" and f.repeat is None]
        if not hh:
            continue
        date_path = next((f.rel_path for f in schema.fields if f.name == "visit_date"), None)
        labels = form_labels(xml, lang())
        code = next((f for f in schema.fields if f.name == "svc_code"), None)
        rows = db.execute(
            select(SV.submission_id, SV.fields, SV.received_at, User.display_name)
            .join(Submission, Submission.id == SV.submission_id)
            .outerjoin(User, User.id == SV.submitter_id)
            .where(SV.form_id == form.id, SV.current == true(),
                   or_(*(SV.fields[("root", p)].as_string().in_(cluster) for p in hh))))
        for sid, fields, received, who in rows:
            root = (fields or {}).get("root") or {}
            services = []
            if code is not None and code.repeat:
                for item in (fields or {}).get("repeats", {}).get(code.repeat.split("/", 2)[2],
                                                                   []):
                    value = (item.get("values") or {}).get(code.table_path)
                    if value:
                        services.append(labels.choice(code.path, value))
            out.append(Event((root.get(date_path) if date_path else "") or
                             received.date().isoformat(), "visit", _("Hỗ trợ tại hộ"),
                             "; ".join(services), url_for("web.submission", sid=sid), who or ""))
    return out


def _merges(db, cluster: list[str]) -> list[Event]:
    titles = {"merge": _("Gộp hộ trùng"), "unmerge": _("Tách hộ đã gộp"),
              "keep_separate": _("Xác nhận là hai hộ khác nhau")}
    rows = db.execute(select(MergeLogEntry, User.display_name)
                      .outerjoin(User, User.id == MergeLogEntry.decided_by)
                      .where(or_(MergeLogEntry.canonical_id.in_(cluster),
                                 MergeLogEntry.alias_id.in_(cluster))))
    return [Event(m.decided_at.isoformat(), m.action, titles.get(m.action, m.action),
                  f"{m.alias_id[:8]} → {m.canonical_id[:8]}"
                  + (_(" (đã hoàn tác)") if m.undone_at else ""), None,
                  who or _("tự động")) for m, who in rows]
