"""The dashboard tells staff when the server runs as root or cannot sandbox shells."""

import os

import pytest

pytestmark = pytest.mark.django_db


def test_staff_are_warned_when_the_server_runs_as_root(client, staff):
    client.force_login(staff)
    page = client.get("/").content.decode()
    if os.geteuid() == 0:
        assert "The server runs as root" in page
    else:
        assert "The server runs as root" not in page


def test_staff_are_warned_when_sandboxes_cannot_start(client, staff, settings):
    settings.TERMINAL_BWRAP = "/nonexistent/bwrap"
    client.force_login(staff)
    page = client.get("/").content.decode()
    assert "Terminal sandboxes cannot start" in page and "apt-get install bubblewrap" in page


def test_non_staff_get_no_operator_warnings(client, owner, settings):
    settings.TERMINAL_BWRAP = "/nonexistent/bwrap"
    client.force_login(owner)
    page = client.get("/").content.decode()
    assert "operator-warning" not in page
