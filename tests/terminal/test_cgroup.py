"""Each sandboxed session's cgroup (terminal/cgroup.py), with real shells in real sandboxes:
nothing of it is left once sessions end."""

import asyncio

import pytest

from terminal import services
from terminal.services import confine
from tests.terminal.sandbox_helpers import Term

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]


@pytest.fixture(autouse=True)
def _room_for_sessions(settings):
    settings.TERMINAL_MAX_SESSIONS_PER_USER = 50


async def test_closed_sessions_leave_no_cgroup_folders(terminal_user):
    paths = []
    for _round in range(4):
        terms = await asyncio.gather(*(Term.open(terminal_user) for _ in range(5)))
        for term in terms:
            term.type("sleep 300 &\r")  # still running when the session closes
            assert term.live.launch.cgroup is not None, "the sandbox got no cgroup"
            paths.append(term.live.launch.cgroup.path)
        await asyncio.gather(*(services.session_close(user=terminal_user, session_id=t.session.pk) for t in terms))
    assert [p for p in paths if p.exists()] == []


async def test_commands_run_through_execute_leave_no_cgroup_folders(terminal_user, monkeypatch):
    made = []
    create = confine.PidsCgroup.create

    def create_and_note(*args, **kwargs):  # the real cgroups, noted down
        cgroup = create(*args, **kwargs)
        made.append(cgroup)
        return cgroup

    monkeypatch.setattr(confine.PidsCgroup, "create", create_and_note)
    results = await asyncio.gather(*(
        services.command_run(user=terminal_user, command="sleep 30 & echo started") for _ in range(8)
    ))
    assert [r["output"].strip() for r in results] == ["started"] * 8
    assert len(made) == 8 and None not in made, "the sandboxes got no cgroup"
    assert [p for cgroup in made for p in [cgroup.path] if p.exists()] == []
