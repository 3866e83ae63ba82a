"""The replay window must cover a frame's whole freshness: at least twice the clock skew
(security review, issue agents3-4)."""

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError


def test_the_defaults_pass_the_check(settings):
    assert settings.AGENTS_REPLAY_WINDOW_SECONDS >= 2 * settings.AGENTS_CLOCK_SKEW_SECONDS
    call_command("check", "--tag", "security")


def test_a_replay_window_shorter_than_twice_the_skew_is_refused(settings):
    settings.AGENTS_CLOCK_SKEW_SECONDS = 300.0
    settings.AGENTS_REPLAY_WINDOW_SECONDS = 599.0
    with pytest.raises(SystemCheckError) as refused:
        call_command("check", "--tag", "security")
    message = str(refused.value)
    assert "agents.E001" in message
    assert "AUTOBOT_AGENTS_REPLAY_WINDOW_SECONDS (599) is less than twice AUTOBOT_AGENTS_CLOCK_SKEW_SECONDS (300)" \
        in message
    assert "at least 600" in message


def test_exactly_twice_the_skew_is_enough(settings):
    settings.AGENTS_CLOCK_SKEW_SECONDS = 30.0
    settings.AGENTS_REPLAY_WINDOW_SECONDS = 60.0
    call_command("check", "--tag", "security")
