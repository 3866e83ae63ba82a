"""Terminal test helpers: users allowed to use the terminal, recordings under tmp, and no
shell outliving its test."""

import pytest
from asgiref.sync import sync_to_async


def _grant(user):
    from django.contrib.auth.models import Permission

    user.user_permissions.add(Permission.objects.get(codename="use_terminal", content_type__app_label="terminal"))
    # Drop Django's cached permissions so the grant is seen at once.
    for attr in ("_perm_cache", "_user_perm_cache"):
        user.__dict__.pop(attr, None)
    return user


@pytest.fixture
def grant_terminal(db):
    """grant_terminal(user) → the user, with terminal.use_terminal (works from async tests too)."""
    from tests.conftest import _call_sync

    return lambda user: _call_sync(_grant, user)


@pytest.fixture
def terminal_user(owner, grant_terminal):
    return grant_terminal(owner)


@pytest.fixture(autouse=True)
def _terminal_settings(settings, tmp_path_factory):
    settings.TERMINAL_RECORDINGS_DIR = tmp_path_factory.mktemp("recordings")


@pytest.fixture(autouse=True)
async def _end_live_sessions():
    yield
    from terminal.services import sessions_shutdown

    await sessions_shutdown()


async def agrant(user):
    return await sync_to_async(_grant)(user)
