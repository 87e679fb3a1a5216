"""`python -m server COMMAND`: thin commands over the domain functions (contract, "Command line").

Every command exits 0 on success and non-zero with a one-line message on stderr on failure.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import zlib
from contextlib import contextmanager
from pathlib import Path

import click

from server.config import REPO_ROOT
from server.domain import accounts
from server.domain import forms as forms_domain
from server.errors import PublishError

REPO_EXPORTS = REPO_ROOT / "exports"


class CommandError(click.ClickException):
    def show(self, file=None):
        click.echo(f"error: {self.message}", err=True)


@contextmanager
def app_session(*, write: bool = True):
    """The app (for configuration) and a session committed on success. Long reads (exports)
    take a read session, so that they never hold the database's write lock."""
    from server import create_app

    app = create_app()
    db = app.extensions["db"]
    session = db.session(write=write)
    try:
        yield app, session
        session.commit()
    except (accounts.AccountError, PublishError, ValueError) as exc:
        session.rollback()
        raise CommandError(_one_line(exc)) from exc
    finally:
        session.close()
        db.dispose()


def _one_line(exc: Exception) -> str:
    return " | ".join(line.strip() for line in str(exc).splitlines() if line.strip())


def _ward(app):
    from server.domain.ward import load_ward_config

    path = Path(app.config["WARD_CONFIG"])
    return load_ward_config(path) if path.exists() else None


class _Commands(click.Group):
    """Bad configuration or an unreachable database: one line on stderr, exit 1, whatever
    the command (never a traceback)."""

    def invoke(self, ctx):
        from sqlalchemy.exc import OperationalError

        from server.config import ConfigError

        try:
            return super().invoke(ctx)
        except ConfigError as exc:
            raise CommandError(f"configuration: {exc}") from exc
        except OperationalError as exc:
            raise CommandError(f"the database is unreachable ({_where()}): "
                               f"{_one_line(Exception(exc.orig or exc))[:300]}") from exc


def _where() -> str:
    """SERVER_DATABASE_URL without its password."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    url = os.environ.get("SERVER_DATABASE_URL", "")
    try:
        return make_url(url).render_as_string(hide_password=True) if url else "SQLite"
    except ArgumentError:
        return "SERVER_DATABASE_URL"


@click.group(cls=_Commands)
def main():
    """ODK-compatible field data server for community digital-technology teams."""


@main.command()
def init():
    """Create or upgrade the schema, project 1, the forms in forms/ and the first admin."""
    from server import create_app

    app = create_app()
    app.extensions["db"].upgrade()
    app.extensions["db"].dispose()
    with app_session() as (app, session):
        ward = _ward(app)
        if accounts.get_project(session, 1) is None:
            name = ward.name_vi if ward is not None else "Project 1"
            project = accounts.create_project(session, name)
            click.echo(f"created project {project.id}: {name}")
        forms_dir = Path(app.config["FORMS_DIR"])
        for path in sorted([*forms_dir.glob("*.xlsx"), *forms_dir.glob("*.xml")]):
            result = forms_domain.publish_path(
                session, app.extensions["blobs"], 1, path, ward=ward,
                validate=bool(app.config["VALIDATE_FORMS"]),
            )
            _report(result)
        if not accounts.has_admin(session):
            password = app.config["ADMIN_PASSWORD"] or None
            new = accounts.create_user(session, "admin", "admin", project_id=None,
                                       display_name="Administrator", password=password,
                                       digest=bool(app.config["DIGEST_AUTH"]))
            if password is None:
                click.echo(f"created user admin with password: {new.password}")
                click.echo("  (shown once; keep it safe)")
            else:
                click.echo("created user admin (password from SERVER_ADMIN_PASSWORD)")


def _report(result: forms_domain.PublishResult) -> None:
    for warning in result.warnings:
        click.echo(f"warning: {_one_line(Exception(warning))}", err=True)
    click.echo(f"{result.form_id} {result.version}" + ("" if result.created else " (unchanged)"))


@main.group()
def forms():
    """Publish forms and open or close them."""


@forms.command("publish")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--project", "project_id", type=int, default=1, show_default=True)
def forms_publish(paths, project_id):
    """Publish XLSForms (.xlsx) or XForms (.xml); media from the X-media/ folder beside X.xlsx."""
    with app_session() as (app, session):
        _require_project(session, project_id)
        ward = _ward(app)
        for path in paths:
            result = forms_domain.publish_path(
                session, app.extensions["blobs"], project_id, Path(path), ward=ward,
                validate=bool(app.config["VALIDATE_FORMS"]),
            )
            _report(result)


@forms.command("state")
@click.argument("form_id")
@click.argument("state", type=click.Choice(forms_domain.FORM_STATES))
@click.option("--project", "project_id", type=int, default=1, show_default=True)
def forms_state(form_id, state, project_id):
    """open: listed; closing: hidden but accepts submissions; closed: refuses them too."""
    with app_session() as (_app, session):
        forms_domain.set_state(session, project_id, form_id, state)
        click.echo(f"{form_id} {state}")


@main.group()
def project():
    """Projects (one per ward)."""


@project.command("add")
@click.argument("name")
def project_add(name):
    with app_session() as (_app, session):
        click.echo(accounts.create_project(session, name).id)


def _require_project(session, project_id: int):
    p = accounts.get_project(session, project_id)
    if p is None:
        raise CommandError(f"project {project_id} does not exist")
    return p


@main.group()
def user():
    """Accounts: admins, supervisors and volunteers."""


@user.command("add")
@click.argument("username")
@click.option("--role", type=click.Choice(accounts.ROLES), required=True)
@click.option("--project", "project_id", type=int, default=1, show_default=True)
@click.option("--team", help="tdp01…tdp20, or ward")
@click.option("--display-name")
@click.option("--password-stdin", is_flag=True, help="read the password from standard input")
@click.option("--joined", metavar="YYYY-MM-DD",
              help="the day the member joined its team (default: today)")
def user_add(username, role, project_id, team, display_name, password_stdin, joined):
    password = sys.stdin.readline().rstrip("\r\n") if password_stdin else None
    with app_session() as (app, session):
        joined_on = _local_day(app, joined, "--joined") if role != "admin" else None
        new = accounts.create_user(session, username, role, project_id=project_id, team=team,
                                   display_name=display_name, password=password,
                                   digest=bool(app.config["DIGEST_AUTH"]), joined_on=joined_on)
        accounts.audit(session, "user.create", target=username, role=role, team=team)
        click.echo(f"created {role} {username}")
        if new.password and not password_stdin:
            click.echo(f"password: {new.password}")


def _local_day(app, text: str | None, option: str) -> str:
    """A registry date: YYYY-MM-DD, not after today in SERVER_TIMEZONE (the default)."""
    import datetime as dt
    from zoneinfo import ZoneInfo

    today = dt.datetime.now(ZoneInfo(app.config["TIMEZONE"])).date()
    if text is None:
        return today.isoformat()
    try:
        day = dt.date.fromisoformat(text) if len(text) == 10 else None
    except ValueError:
        day = None
    if day is None:
        raise CommandError(f"{option} must be a date YYYY-MM-DD, not {text!r}")
    if day > today:
        raise CommandError(f"{option} cannot be after today ({today.isoformat()})")
    return day.isoformat()


def _user(session, username: str):
    u = accounts.get_user(session, username)
    if u is None:
        raise CommandError(f"user {username!r} does not exist")
    return u


def collect_url(app, session, username: str, project_id: int, base_url: str | None) -> str:
    u = _user(session, username)
    if u.role != "admin" and u.project_id != project_id:
        raise CommandError(f"user {username!r} is not in project {project_id}")
    token = accounts.collect_token(session, u, app.config["SECRET_KEY"])
    base = (base_url or app.config["BASE_URL"] or _default_base()).rstrip("/")
    return f"{base}/v1/key/{token}/projects/{project_id}"


def _default_base() -> str:
    host = os.environ.get("HOST", "127.0.0.1")
    port = os.environ.get("PORT", "8000")
    return f"http://{host}:{port}"


@user.command("collect-url")
@click.argument("username")
@click.option("--project", "project_id", type=int, default=1, show_default=True)
@click.option("--base-url")
def user_collect_url(username, project_id, base_url):
    """Print the Collect server URL that carries the user's token."""
    with app_session() as (app, session):
        click.echo(collect_url(app, session, username, project_id, base_url))


@user.command("qr")
@click.argument("username")
@click.option("--project", "project_id", type=int, default=1, show_default=True)
@click.option("--base-url")
def user_qr(username, project_id, base_url):
    """Print the text of the user's Collect QR code (zlib + base64 of the settings JSON)."""
    with app_session() as (app, session):
        url = collect_url(app, session, username, project_id, base_url)
        project_row = _require_project(session, project_id)
        u = _user(session, username)
        click.echo(qr_text(collect_settings(url, project_row.name, u.username)))


def collect_settings(server_url: str, project_name: str, username: str) -> dict:
    return {
        "general": {
            "server_url": server_url,
            "form_update_mode": "match_exactly",
            "autosend": "wifi_and_cellular",
            # Identity numbers must not stay on phones once sent (domain §3.1).
            "delete_send": True,
            "metadata_username": username,
        },
        "admin": {},
        "project": {"name": project_name, "color": "#1e6b52"},
    }


def qr_text(settings: dict) -> str:
    raw = json.dumps(settings, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return base64.b64encode(zlib.compress(raw)).decode("ascii")


@user.command("revoke")
@click.argument("username")
def user_revoke(username):
    """Revoke the user's token and web sessions at once."""
    with app_session() as (_app, session):
        accounts.revoke(session, _user(session, username))
        accounts.audit(session, "user.revoke", target=username)
        click.echo(f"revoked {username}")


@user.command("leave")
@click.argument("username")
@click.option("--on", "left_on", metavar="YYYY-MM-DD",
              help="the day the member left its team (default: today)")
def user_leave(username, left_on):
    """Record that a member left its team; its token and sessions are revoked at once."""
    from server.domain import team_registry

    with app_session() as (app, session):
        u = _user(session, username)
        if u.role == "admin":
            raise CommandError("admins are not team members")
        if not u.active:
            raise CommandError(f"user {username!r} is not active")
        day = _local_day(app, left_on, "--on")
        if day < team_registry.joined_date(u, app.config["TIMEZONE"]).isoformat():
            raise CommandError(f"--on {day} is before the day {username} joined")
        accounts.deactivate(session, u, day)
        accounts.audit(session, "user.leave", target=username, left_on=day)
        click.echo(f"{username} left on {day}")


def _matcher(app):
    return app.extensions["matcher"]


def _actor(session, username: str | None):
    """Who a command acts as: --as USERNAME, or the first admin (the operator)."""
    if username:
        return _user(session, username)
    from sqlalchemy import select

    from server.db.models import User

    admin = session.scalar(select(User).where(User.role == "admin").order_by(User.id))
    if admin is None:
        raise CommandError("no admin exists yet: run init first")
    return admin


@main.command()
@click.option("--project", "project_id", type=int, default=1, show_default=True)
def dedupe(project_id):
    """Re-run household matching over everything and print a summary."""
    from server.domain import matching

    with app_session() as (app, session):
        _require_project(session, project_id)
        s = matching.rerun(session, project_id, _matcher(app))
        accounts.audit(session, "households.dedupe", target=str(project_id))
        click.echo(f"snapshots {s.snapshots}  pairs {s.pairs}  pending review {s.review}  "
                   f"merges {s.merges}  unmerges {s.unmerges}  skipped blocks {s.skipped_blocks}")


@main.group()
def households():
    """The household register: duplicates, merges and their undo."""


@households.command("review")
@click.option("--project", "project_id", type=int, default=1, show_default=True)
def households_review(project_id):
    """Pending review pairs: PAIR_ID RULE SCORE HOUSEHOLD_A HOUSEHOLD_B."""
    from server.domain import matching

    with app_session() as (_app, session):
        for p in matching.pending_pairs(session, project_id):
            click.echo(f"{p.id} {p.rule} {p.score:.3f} {p.entity_a} {p.entity_b}")


@households.command("decide")
@click.argument("pair_id", type=int)
@click.argument("decision", type=click.Choice(("merge", "keep_separate", "defer")))
@click.option("--note")
@click.option("--as", "as_user", help="the supervisor deciding (default: the first admin)")
def households_decide(pair_id, decision, note, as_user):
    from server.domain import matching

    with app_session() as (app, session):
        actor = _actor(session, as_user)
        try:
            matching.decide(session, pair_id, decision, actor, _matcher(app), note=note)
        except matching.DecisionError as exc:
            raise CommandError(str(exc)) from exc
        accounts.audit(session, "households.decide", actor=actor, target=str(pair_id),
                       decision=decision, note=note)
        click.echo(f"{pair_id} {decision}")


@households.command("merge")
@click.argument("id_a")
@click.argument("id_b")
@click.option("--as", "as_user")
def households_merge(id_a, id_b, as_user):
    """Merge two households; the one created first stays canonical."""
    from server.domain import matching

    with app_session() as (app, session):
        actor = _actor(session, as_user)
        try:
            canonical = matching.merge(session, id_a.lower(), id_b.lower(), actor, _matcher(app))
        except matching.DecisionError as exc:
            raise CommandError(str(exc)) from exc
        accounts.audit(session, "households.merge", actor=actor, target=canonical,
                       households=[id_a, id_b])
        click.echo(canonical)


@households.command("unmerge")
@click.argument("alias_id")
@click.option("--as", "as_user")
def households_unmerge(alias_id, as_user):
    """Undo a merge: the alias becomes a household of its own again."""
    from server.domain import matching

    with app_session() as (app, session):
        actor = _actor(session, as_user)
        try:
            matching.unmerge(session, alias_id.lower(), actor, _matcher(app))
        except matching.DecisionError as exc:
            raise CommandError(str(exc)) from exc
        accounts.audit(session, "households.unmerge", actor=actor, target=alias_id)
        click.echo(f"{alias_id} unmerged")


@main.command("export")
@click.argument("kind", type=click.Choice(("submissions", "households", "indicators", "activity",
                                          "dedupe")))
@click.option("--project", "project_id", type=int, default=1, show_default=True)
@click.option("--form", "form_id", help="submissions: one form (default: every form)")
@click.option("--period", help="YYYY-MM, YYYY-Qn or YYYY")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="folder (default: exports/)")
@click.option("--xlsx", is_flag=True, help="one .xlsx workbook (a sheet per table) instead of CSVs")
@click.option("--no-bom", is_flag=True, help="CSV without the UTF-8 BOM")
@click.option("--as-of", "as_of", metavar="DATA_CUTOFF",
              help="reports only: ignore what was uploaded or decided after this moment "
                   "(an ISO date-time, e.g. an issued report's data_cutoff)")
@click.option("--awards", is_flag=True,
              help="activity only: the 10 October award tables, year to date up to the ward's "
                   "award cut-off (--period YYYY: that year)")
@click.option("--review-state", type=click.Choice(("received", "has_issues", "approved",
                                                  "rejected")),
              help="submissions: only those in this review state")
@click.option("--tdp", help="submissions: only this tổ (e.g. tdp03)")
@click.option("--submitter", metavar="USERNAME", help="submissions: only this user's")
def export(kind, project_id, form_id, period, out, xlsx, no_bom, as_of, awards, review_state,
           tdp, submitter):
    """Write an export into --out and print each file's path."""
    from server.exports import run

    out = out or REPO_EXPORTS
    with app_session(write=False) as (app, session):
        _require_project(session, project_id)
        try:
            parsed = run.Period.parse(period) if period else None
            cutoff = _moment(as_of, app.config["TIMEZONE"]) if as_of else None
            if cutoff is not None and kind not in run.REPORT_TABLES:
                raise run.ExportError(f"--as-of applies to the reports "
                                      f"({', '.join(run.REPORT_TABLES)}), not to {kind}")
            raw_filters = _raw_filters(app, session, kind, project_id, review_state, tdp,
                                       submitter)
            paths = run.export(session, app.extensions["blobs"], kind, project_id,
                               ward=app.extensions["ward"], period=parsed, form_id=form_id,
                               out=out, xlsx=xlsx, bom=not no_bom,
                               timezone=app.config["TIMEZONE"], progress=_progress(),
                               as_of=cutoff, awards=awards, raw_filters=raw_filters)
        except run.ExportError as exc:
            raise CommandError(str(exc)) from exc
    with app_session() as (app, session):
        accounts.audit(session, "export", target=kind, project=project_id, period=period,
                       form=form_id, as_of=as_of)
    for path in paths:
        click.echo(str(path))


def _raw_filters(app, session, kind, project_id, review_state, tdp, submitter) -> dict:
    from server.exports import run
    from server.exports.raw import filter_choices

    if (review_state or tdp or submitter) and kind != "submissions":
        raise run.ExportError("--review-state, --tdp and --submitter filter the submissions "
                              "export only")
    ward = app.extensions["ward"]
    try:
        return filter_choices(session, project_id, ward.tdp_codes if ward else None,
                              review_state=review_state, tdp=tdp, submitter=submitter)
    except ValueError as exc:
        raise run.ExportError(str(exc)) from exc


def _moment(text: str, timezone: str):
    """An ISO date-time; without an offset it is read in SERVER_TIMEZONE."""
    import datetime as dt
    from zoneinfo import ZoneInfo

    try:
        moment = dt.datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise CommandError(f"--as-of {text!r}: write an ISO date-time, "
                           "e.g. 2026-12-05T08:00:00+07:00") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(timezone))
    return moment.astimezone(dt.UTC)


@main.group()
def reports():
    """Issued reports: frozen as sent, downloadable unchanged later (domain §6.5)."""


@reports.command("issue")
@click.argument("kind", type=click.Choice(("indicators", "households", "activity")))
@click.option("--period", required=True, help="YYYY-MM, YYYY-Qn or YYYY")
@click.option("--project", "project_id", type=int, default=1, show_default=True)
@click.option("--team", help="one tổ's report (e.g. tdp01); default: the whole ward")
@click.option("--note", default="", help="e.g. the dispatch number it was sent under")
@click.option("--as", "as_user", help="the issuing user (default: the first admin)")
def reports_issue(kind, period, project_id, team, note, as_user):
    """Compute a report as of now and keep its files; prints its number and file names."""
    from server.exports import issued, run

    with app_session() as (app, session):
        _require_project(session, project_id)
        if team is not None and app.extensions["ward"] is not None:
            codes = app.extensions["ward"].tdp_codes
            if team not in codes:
                raise CommandError(f"unknown team {team!r} (one of {codes[0]}…{codes[-1]})")
        actor = _actor(session, as_user)
        try:
            report = issued.issue(session, app.extensions["blobs"], kind, project_id,
                                  ward=app.extensions["ward"], period=period,
                                  timezone=app.config["TIMEZONE"], team=team,
                                  issued_by=actor.id, note=note)
        except run.ExportError as exc:
            raise CommandError(str(exc)) from exc
        accounts.audit(session, "report.issue", actor=actor, target=str(report.id),
                       kind=kind, period=report.period, team=team)
        lines = [f"{report.id} {report.kind} {report.period} "
                 f"as-of {report.as_of.isoformat(timespec='seconds')}",
                 *(f"  {f.name} {f.size} {f.sha256}" for f in report.files)]
    for line in lines:
        click.echo(line)


@reports.command("list")
@click.option("--project", "project_id", type=int, default=1, show_default=True)
def reports_list(project_id):
    """One line per issued report: ID KIND PERIOD TEAM AS_OF ISSUED_BY."""
    from server.db.models import User
    from server.exports import issued

    with app_session(write=False) as (_, session):
        _require_project(session, project_id)
        lines = []
        for r in issued.reports(session, project_id):
            who = session.get(User, r.issued_by) if r.issued_by else None
            lines.append(f"{r.id} {r.kind} {r.period} {r.team or 'WARD'} "
                         f"{r.as_of.isoformat(timespec='seconds')} "
                         f"{who.username if who else '-'}")
    for line in lines:
        click.echo(line)


@reports.command("get")
@click.argument("report_id", type=int)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="folder (default: exports/issued-<ID>/)")
def reports_get(report_id, out):
    """Write an issued report's files, byte for byte as issued (save names erased since on
    request), and print their paths."""
    from server.exports import issued, run

    with app_session(write=False) as (app, session):
        try:
            report = issued.get(session, report_id)
        except run.ExportError as exc:
            raise CommandError(str(exc)) from exc
        paths = issued.write_files(session, app.extensions["blobs"], report,
                                   out or REPO_EXPORTS / f"issued-{report_id}")
    for path in paths:
        click.echo(str(path))


def _progress():
    """Rows written, on stderr, for long runs in a terminal (silent in pipes and CI)."""
    if not sys.stderr.isatty():
        return None
    state = {"rows": 0}

    def tick(rows: int) -> None:
        state["rows"] += rows
        click.echo(f"\r  {state['rows']:,} rows", nl=False, err=True)

    return tick


@main.group()
def erase():
    """Erase a person's personal data on request (Law 91/2025/QH15); admins only, audited."""


def _erase(run_erasure, yes: bool) -> None:
    from server.domain import erasure

    if not yes:
        click.confirm("Personal fields are blanked in every stored version and cannot be "
                      "restored. Continue?", abort=True, err=True)
    with app_session() as (app, session):
        try:
            result = run_erasure(app, session)
        except erasure.ErasureError as exc:
            raise CommandError(str(exc)) from exc
    try:  # after the commit: old copies leave the database files and the blob store
        erasure.release(app.extensions["db"].engine, app.extensions["blobs"], result)
    finally:
        app.extensions["db"].dispose()
    click.echo(f"erased {result.target}: {len(result.submissions)} submissions, "
               f"{result.versions} versions, {result.members} member records, "
               f"{len(result.files)} files; audit entry {result.audit_id}")


def _streets(app) -> dict[str, str]:
    ward = app.extensions["ward"]
    return {s.name: s.label_vi for s in ward.streets} if ward is not None else {}


@erase.command("household")
@click.argument("household_id")
@click.option("--member", help="only this member (the name as written; case and marks aside)")
@click.option("--member-id", help="only this member, by id (when two share a name)")
@click.option("--reason", required=True, help="why: the request's reference")
@click.option("--as", "as_user", help="the admin erasing (default: the first admin)")
@click.option("--yes", is_flag=True, help="do not ask for confirmation")
def erase_household(household_id, member, member_id, reason, as_user, yes):
    """Blank a household's (or one member's) personal fields in every submission about it."""
    from server.domain import erasure

    _erase(lambda app, session: erasure.erase_household(
        session, app.extensions["blobs"], household_id=household_id,
        actor=_actor(session, as_user), reason=reason, member=member, member_id=member_id,
        streets=_streets(app)), yes)


@erase.command("submission")
@click.argument("instance_id")
@click.option("--project", "project_id", type=int, default=1, show_default=True)
@click.option("--reason", required=True, help="why: the request's reference")
@click.option("--as", "as_user", help="the admin erasing (default: the first admin)")
@click.option("--yes", is_flag=True, help="do not ask for confirmation")
def erase_submission(instance_id, project_id, reason, as_user, yes):
    """Blank every personal field of one submission (all its versions)."""
    from server.domain import erasure

    _erase(lambda app, session: erasure.erase_submission(
        session, app.extensions["blobs"], project_id=project_id, instance_id=instance_id,
        actor=_actor(session, as_user), reason=reason, streets=_streets(app)), yes)


@main.group()
def blobs():
    """The blob store (attachments, form media, issued reports)."""


@blobs.command("sweep")
@click.option("--older-than-hours", type=float, default=24.0, show_default=True,
              help="leave younger files alone (uploads in progress)")
@click.option("--dry-run", is_flag=True, help="count, delete nothing")
def blobs_sweep(older_than_hours, dry_run):
    """Delete blob files no row refers to (left by refused uploads or by crashes)."""
    from sqlalchemy import select

    from server.db.models import Blob
    from server.storage import FileBlobStore

    with app_session(write=False) as (app, session):
        store = app.extensions["blobs"]
        if not isinstance(store, FileBlobStore):
            click.echo("the blobs are in the database (SERVER_BLOB_STORE=database): "
                       "nothing to sweep")
            return
        engine = app.extensions["db"].engine

        def referenced(names: list[str]) -> set[str]:
            with engine.connect() as conn:  # committed rows as they are now
                return set(conn.scalars(select(Blob.sha256).where(Blob.sha256.in_(names))))

        done = store.sweep(referenced, older_than_s=older_than_hours * 3600, dry_run=dry_run)
    verb = "would delete" if dry_run else "deleted"
    click.echo(f"{done.files} files looked at: {verb} {done.orphans} without a row and "
               f"{done.temp} temporary ({done.bytes:,} bytes); {done.young} younger than "
               f"{older_than_hours:g} h left alone")


@main.command("backup")
@click.argument("dest", type=click.Path(file_okay=False, path_type=Path))
def backup_command(dest):
    """A consistent copy of the database and blobs, also while the server runs."""
    from server import create_app
    from server.backup import BackupError, backup

    app = create_app()
    try:
        for path in backup(app.config["DATABASE_URL"], app.config["DATA_DIR"], dest):
            click.echo(str(path))
    except BackupError as exc:
        raise CommandError(str(exc)) from exc
    finally:
        app.extensions["db"].dispose()


@main.command("restore")
@click.argument("src", type=click.Path(exists=True, file_okay=False, path_type=Path))
def restore_command(src):
    """Restore a backup into an empty database and a fresh data dir (SERVER_DATABASE_URL,
    SERVER_DATA_DIR), checking every blob; then `serve` as usual."""
    from flask import Flask

    from server.config import load_config
    from server.restore import RestoreError, restore

    config = Flask("server")
    load_config(config, keys=False)  # the backup brings the keys
    cfg = config.config
    try:
        done = restore(src, cfg["DATABASE_URL"], Path(cfg["DATA_DIR"]),
                       blob_store=cfg["BLOB_STORE"],
                       configured_keys={"secret_key": cfg["SECRET_KEY"],
                                        "pid_key": cfg["PID_KEY"]})
    except RestoreError as exc:
        raise CommandError(str(exc)) from exc
    for warning in done.warnings:
        click.echo(f"warning: {warning}", err=True)
    click.echo(f"restored {done.submissions} submissions, {done.attachments} attachments; "
               f"{done.blobs} blobs checked ({done.blob_files} files, "
               f"{done.blobs_in_database} in the database); keys: "
               f"{', '.join(done.keys) or 'none'}")


@main.command()
@click.option("--host", default=lambda: os.environ.get("HOST", "127.0.0.1"), show_default="HOST")
@click.option("--port", default=lambda: int(os.environ.get("PORT", "8000")), type=int)
@click.option("--workers", type=int, default=None, help="default: one per core, at least 2")
def serve(host, port, workers):
    """Serve the app with gunicorn."""
    _ready_to_serve()
    workers = workers or max(2, os.cpu_count() or 1)
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host  # noqa: S104
    click.echo(f"Serving on http://{shown}:{port}/ ({workers} workers)")
    click.echo(f"  Web UI, log in at:  http://{shown}:{port}/login")
    click.echo(f"  Collect (password): http://{shown}:{port}/v1/projects/1")
    click.echo("  A volunteer's Collect URL and QR text:")
    click.echo("    .venv/bin/python -m server user add NAME --role volunteer --team tdp01")
    click.echo(f"    .venv/bin/python -m server user collect-url NAME --base-url http://{shown}:{port}")
    click.echo(f"    .venv/bin/python -m server user qr NAME --base-url http://{shown}:{port}")
    sys.stdout.flush()
    args = [sys.executable, "-m", "gunicorn", "--bind", f"{host}:{port}",
            "--workers", str(workers), "--timeout", "120", "--graceful-timeout", "30",
            # threads: a phone uploading slowly over 3G must not hold a whole worker
            "--worker-class", "gthread", "--threads", "8",
            # gunicorn's control socket (add workers, reload, stop) is not used here: off, and
            # two servers on one host would otherwise share ~/.gunicorn/gunicorn.ctl
            "--no-control-socket",
            "server.wsgi:app"]  # no access log: token URLs must not reach logs
    os.execv(sys.executable, args)  # noqa: S606 (replaces this process with gunicorn)


def _ready_to_serve() -> None:
    """Configuration, database and schema checked here, where a problem is one line, not a
    worker's traceback in gunicorn's log."""
    from sqlalchemy import inspect

    from server import create_app

    app = create_app()
    db = app.extensions["db"]
    try:
        db.ping()
        if not inspect(db.engine).has_table("alembic_version"):
            raise CommandError("the database has no schema yet: run `python -m server init`")
    finally:
        db.dispose()
