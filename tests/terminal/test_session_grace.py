"""The session list tells the truth: a detached session says when it ends unless reattached."""

from datetime import UTC, datetime, timedelta

import pytest

from terminal import services
from tests.terminal.test_consumers import attach

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]


async def test_a_detached_session_reports_when_its_grace_ends(ws_connect, terminal_user, settings):
    settings.TERMINAL_RECONNECT_SECONDS = 900
    session = await services.session_open(user=terminal_user)
    comm, hello = await attach(ws_connect, terminal_user, session)
    assert hello["grace_ends"] is None  # attached: no grace running
    await comm.disconnect()

    info = services.session_info(await services.session_get(user=terminal_user, session_id=session.pk))
    left = datetime.fromisoformat(info["grace_ends"]) - datetime.now(UTC)
    assert timedelta(minutes=14) < left <= timedelta(minutes=15)

    comm, hello = await attach(ws_connect, terminal_user, session)
    assert hello["grace_ends"] is None  # reattached: the grace is off again
    await comm.disconnect()
    await services.session_close(user=terminal_user, session_id=session.pk)
