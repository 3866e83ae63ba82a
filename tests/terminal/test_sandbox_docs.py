"""docs/security.md shows the sandbox profiles exactly as terminal/sandbox.py defines them."""

from pathlib import Path

from django.conf import settings

from terminal.policy import Level
from terminal.sandbox import PROFILES, profile_table


def test_the_security_page_has_the_modules_profile_table():
    page = (Path(settings.BASE_DIR) / "docs" / "security.md").read_text()
    assert profile_table() in page, "docs/security.md: paste terminal.sandbox.profile_table() over the old table"


def test_every_level_has_a_profile_and_only_standard_runs_on_the_host():
    assert set(PROFILES) == set(Level)
    assert [level for level, p in PROFILES.items() if not p.sandboxed] == [Level.STANDARD]
    assert PROFILES[Level.RESTRICTED].network == "none"
