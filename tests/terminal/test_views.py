"""The terminal pages and the read-only admin."""

import pytest
from asgiref.sync import async_to_sync
from django.test import Client

from terminal import services
from terminal.models import TerminalSession

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_page_loads_xterm_for_a_permitted_user(terminal_user):
    response = logged_in(terminal_user).get("/terminal/")
    assert response.status_code == 200
    body = response.content.decode()
    assert "terminal/terminal.js" in body and "xterm.css" in body


def test_the_page_refuses_a_user_without_the_permission(stranger):
    response = logged_in(stranger).get("/terminal/")
    assert response.status_code == 403
    assert "terminal/terminal.js" not in response.content.decode()


def test_anonymous_is_sent_to_login():
    response = Client().get("/terminal/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_replay_page_for_the_owner_and_not_for_others(terminal_user, colleague, grant_terminal):
    row = TerminalSession.objects.create(owner=terminal_user, title="old", status="ended")
    ok = logged_in(terminal_user).get(f"/terminal/sessions/{row.pk}/replay/")
    assert ok.status_code == 200 and "asciinema-player.min.js" in ok.content.decode()
    grant_terminal(colleague)
    assert logged_in(colleague).get(f"/terminal/sessions/{row.pk}/replay/").status_code == 404


def test_admin_lists_sessions_and_commands_read_only(staff, terminal_user):
    row = TerminalSession.objects.create(owner=terminal_user, title="audited", status="ended")
    async_to_sync(services.command_run)(user=terminal_user, command="echo admin-check")
    client = logged_in(staff)
    sessions = client.get("/admin/terminal/terminalsession/")
    assert sessions.status_code == 200 and f"/terminal/sessions/{row.pk}/replay/" in sessions.content.decode()
    commands = client.get("/admin/terminal/commandrecord/?risk__exact=SAFE")
    assert commands.status_code == 200 and "echo admin-check" in commands.content.decode()
    assert client.get("/admin/terminal/commandrecord/add/").status_code == 403
