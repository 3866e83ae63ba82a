"""The per-user terminal cap holds when opens arrive together: counted and created under one
lock (autobot/caps.py), each open a task on the lanes with its own thread and connection."""

import asyncio

import pytest

from autobot.errors import RateLimited
from autobot.lanes import spawn
from terminal import services
from terminal.models import TerminalSession

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]


async def test_four_concurrent_opens_with_a_cap_of_two_open_exactly_two(terminal_user, settings):
    settings.TERMINAL_MAX_SESSIONS_PER_USER = 2

    async def open_one():
        try:
            return await services.session_open(user=terminal_user)
        except RateLimited as exc:
            return exc

    results = await asyncio.gather(*(spawn(open_one()) for _ in range(4)))
    refused = [r for r in results if isinstance(r, RateLimited)]
    assert len(refused) == 2 and {r.code for r in refused} == {"session_limit"}
    assert await TerminalSession.objects.filter(owner=terminal_user).acount() == 2
