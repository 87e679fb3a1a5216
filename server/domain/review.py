"""Reviewing submissions: whose tổ a submission belongs to, review states, the review thread.

The web review page and the API share these rules, so a team leader sees and reviews the same
submissions through either.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import and_, false, or_, select
from sqlalchemy.orm import Session

from server.db.models import Form, FormVersion, ReviewComment, Submission, SubmissionVersion, User
from server.domain import accounts
from server.domain.forms import schema_of

SV = SubmissionVersion
REVIEW_STATES = ("received", "has_issues", "approved", "rejected")
# Central's words for the stored states; Central's "edited" is derived (edits, no review yet).
CENTRAL_WORDS = {"received": None, "has_issues": "hasIssues", "approved": "approved",
                 "rejected": "rejected"}
FROM_CENTRAL = {"hasIssues": "has_issues", "approved": "approved", "rejected": "rejected"}


class NotAReviewState(ValueError):
    """A review state that cannot be set on this submission."""


def tdp_paths(db: Session, form: Form, cache: dict | None = None) -> list[str]:
    """Root paths of the form's `tdp` field over all its versions (groups may have moved).
    `cache` keeps them for the rest of a request, which may ask once per listed row."""
    cache = {} if cache is None else cache
    if form.id not in cache:
        xmls = db.scalars(select(FormVersion.xml).where(FormVersion.form_id == form.id))
        cache[form.id] = sorted({f.rel_path for xml in xmls for f in schema_of(xml).fields
                                 if f.kind == "field" and f.repeat is None and f.name == "tdp"})
    return cache[form.id]


def tdp_condition(db: Session, forms: list[Form], tdp: str, cache: dict | None = None):
    """Submissions (joined to their current version) whose `tdp` answer is `tdp`."""
    return or_(false(), *(
        and_(Submission.form_id == f.id,
             or_(false(), *(SV.fields[("root", p)].as_string() == tdp
                            for p in tdp_paths(db, f, cache))))
        for f in forms))


def tdp_of_fields(db: Session, form: Form, fields: dict | None,
                  cache: dict | None = None) -> str | None:
    """The tổ that parsed answers name (None: none, or encrypted)."""
    root = (fields or {}).get("root") or {}
    return next((root[p] for p in tdp_paths(db, form, cache) if root.get(p)), None)


def tdp_of(db: Session, form: Form, version: SubmissionVersion,
           cache: dict | None = None) -> str | None:
    return tdp_of_fields(db, form, version.fields, cache)


def central_state(stored: str, edits: int) -> str | None:
    """The review state as Central names it: null until reviewed, "edited" after an edit."""
    if stored == "received":
        return "edited" if edits else None
    return CENTRAL_WORDS.get(stored, stored)


def state_from_central(word: str | None, edits: int) -> str:
    """The stored state for Central's word; "edited" only for an edited submission, where it
    means "back to unreviewed" (which is how an edit without review reads)."""
    if word is None:
        return "received"
    if word == "edited":
        if not edits:
            raise NotAReviewState("only an edited submission can be marked edited")
        return "received"
    if word not in FROM_CENTRAL:
        raise NotAReviewState(f"reviewState must be one of hasIssues, approved, rejected, "
                              f"edited or null, not {word[:30]!r}")
    return FROM_CENTRAL[word]


def record_review(db: Session, sub: Submission, actor: User, state: str | None,
                  body: str = "") -> ReviewComment | None:
    """A review step: a new state and/or a comment, kept in the thread and audited.
    None when it changes nothing (the same state and no comment)."""
    if state is not None and state not in REVIEW_STATES:
        raise NotAReviewState(state)
    body = body.strip()
    if state == sub.review_state:
        state = None
    if state is None and not body:
        return None
    before = sub.review_state
    if state is not None:
        sub.review_state = state
    comment = ReviewComment(submission_id=sub.id, author_id=actor.id, body=body,
                            review_state=state, at=dt.datetime.now(dt.UTC))
    db.add(comment)
    db.flush()
    accounts.audit(db, "submission.review", actor=actor, target=str(sub.id),
                   instance_id=sub.instance_id, from_state=before,
                   to_state=state or before, comment_id=comment.id)
    return comment
