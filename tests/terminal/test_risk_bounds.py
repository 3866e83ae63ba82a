"""The rating's cost bound: lines too big or too deep to rate are unassessable (HIGH, not parsed),
which RESTRICTED blocks, and the reason says so. (Speed itself is measured in bench/, not here.)"""

import pytest

from terminal.policy import Level, decide
from terminal.risk import MAX_PARTS, Risk, assess

NINE_THOUSAND_PIPES = " | ".join(["cat"] * 9000)  # about 54 KB: under the length limit


@pytest.mark.parametrize(
    ("line", "why"),
    [
        (NINE_THOUSAND_PIPES, "more than 512 pipes, separators and substitutions"),
        ("$(" * 60 + "ls" + ")" * 60, "nested more than 48 levels deep"),
        ("(" * 60 + "ls" + ")" * 60, "nested more than 48 levels deep"),
        ("{ " * 60 + "ls;" + " }" * 60, "nested more than 48 levels deep"),
        ("echo " + "word " * 3000, "more than 2048 words"),
    ],
)
def test_a_line_over_the_bound_is_unassessable_and_blocked_at_restricted(line, why):
    result = assess(line)
    assert result.risk is Risk.HIGH and not result.parsed
    assert any(f"too complex to assess: {why}" in reason for reason in result.reasons)
    verdict = decide(Level.RESTRICTED, result)
    assert verdict.blocked and "too complex to assess" in verdict.reason
    assert not decide(Level.ELEVATED, result).blocked


def test_a_dangerous_command_in_front_of_an_unassessable_tail_is_still_dangerous():
    result = assess("mkfs.ext4 /dev/autobot-test-none; " + NINE_THOUSAND_PIPES)
    assert result.risk is Risk.DANGEROUS and not result.parsed


def test_a_long_ordinary_pipeline_under_the_bound_is_still_rated():
    result = assess(" | ".join(["cat"] * (MAX_PARTS // 2)))
    assert result.risk is Risk.SAFE and result.parsed
