"""The /agents/ page and the admin screens."""

import pytest
from django.test import Client

from agents.models import Agent, AgentMessage

pytestmark = pytest.mark.django_db


def test_the_page_needs_a_login(client):
    response = client.get("/agents/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_the_page_renders_for_a_user(owner):
    browser = Client()
    browser.force_login(owner)
    response = browser.get("/agents/")
    assert response.status_code == 200
    assert b'id="send-form"' in response.content and b"agents/agents.js" in response.content


def test_the_admin_lists_agents_and_a_read_only_log(staff):
    Agent.objects.create(id="echo", name="Echo", owner=staff)
    AgentMessage.objects.create(message_id="6f1c0f57-8d5e-4b59-9a57-2a4f4b0f3a11", message_type="REQUEST",
                                sender_id="user:staffer", recipient_id="echo", action="echo", status="answered")
    browser = Client()
    browser.force_login(staff)
    assert browser.get("/admin/agents/agent/").status_code == 200
    assert browser.get("/admin/agents/agent/echo/change/").status_code == 200
    assert browser.get("/admin/agents/agentmessage/").status_code == 200
    assert browser.get("/admin/agents/agentmessage/add/").status_code == 403
