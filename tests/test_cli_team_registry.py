"""The team registry from the command line: `user add --joined` and `user leave`."""

from __future__ import annotations

from sqlalchemy import select

from server.db.models import User


def _user(cli, username: str) -> User:
    session = cli.app.extensions["db"].session()
    try:
        found = session.scalar(select(User).where(User.username == username))
        session.expunge_all()
        return found
    finally:
        session.close()


def test_joined_and_left_dates_from_the_command_line(cli):
    assert cli("project", "add", "Phường Bình Thuận").exit_code == 0
    added = cli("user", "add", "thu", "--role", "volunteer", "--team", "tdp03",
                "--joined", "2026-02-01")
    assert added.exit_code == 0 and _user(cli, "thu").joined_on == "2026-02-01"
    url = cli("user", "collect-url", "thu", "--base-url", "http://ward.example").output.strip()
    path = url.removeprefix("http://ward.example")
    client = cli.app.test_client()
    assert client.get(f"{path}/formList").status_code == 200

    before = cli("user", "leave", "thu", "--on", "2026-01-31")
    assert before.exit_code == 1
    assert before.output.strip() == "error: --on 2026-01-31 is before the day thu joined"
    left = cli("user", "leave", "thu", "--on", "2026-10-31")
    assert left.exit_code == 0 and left.output.strip() == "thu left on 2026-10-31"
    thu = _user(cli, "thu")
    assert (thu.active, thu.left_on, thu.token_hash) == (False, "2026-10-31", None)
    assert client.get(f"{path}/formList").status_code == 403
    assert cli("user", "leave", "thu").output.strip() == "error: user 'thu' is not active"


def test_bad_registry_dates_store_nothing(cli):
    cli("project", "add", "Phường Bình Thuận")
    for value in ("2026-02-30", "01/02/2026", "2999-01-01"):
        result = cli("user", "add", "lan", "--role", "volunteer", "--joined", value)
        assert result.exit_code == 1 and result.output.startswith("error: --joined ")
        assert _user(cli, "lan") is None
    # without --joined a member joins today; an admin has no team, so no date
    assert cli("user", "add", "lan", "--role", "volunteer").exit_code == 0
    assert _user(cli, "lan").joined_on is not None
    assert cli("user", "add", "root", "--role", "admin", "--password-stdin",
               input="a long enough password\n").exit_code == 0
    assert _user(cli, "root").joined_on is None
