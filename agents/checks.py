"""System checks for the agents' settings."""

from django.conf import settings
from django.core.checks import Error, Tags, register


@register(Tags.security)
def replay_window_check(app_configs, **kwargs):
    """A frame stays fresh for up to twice the clock skew after it is first seen (its timestamp
    may be that far ahead of server time), and its id is remembered for the replay window: a
    shorter window forgets the id while a copy of the frame is still fresh, so the copy is
    accepted (docs/security.md, "Agents: replays when Redis fails")."""
    window, skew = settings.AGENTS_REPLAY_WINDOW_SECONDS, settings.AGENTS_CLOCK_SKEW_SECONDS
    if window >= 2 * skew:
        return []
    return [Error(
        f"AUTOBOT_AGENTS_REPLAY_WINDOW_SECONDS ({window:g}) is less than twice "
        f"AUTOBOT_AGENTS_CLOCK_SKEW_SECONDS ({skew:g}): a replayed agent frame could still be fresh "
        "after its id is forgotten, and would be accepted",
        hint=f"Set AUTOBOT_AGENTS_REPLAY_WINDOW_SECONDS to at least {2 * skew:g}, or lower the clock skew.",
        id="agents.E001",
    )]
