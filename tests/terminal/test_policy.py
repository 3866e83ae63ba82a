"""terminal/policy.py: the level table, RESTRICTED's extra rules, who may change a level."""

import pytest

from terminal.policy import LEVEL_POLICY, Level, Verdict, can_set_level, decide, describe_levels, max_level_for
from terminal.risk import assess

STANDARD, ELEVATED, RESTRICTED = Level.STANDARD, Level.ELEVATED, Level.RESTRICTED

# (line, level, blocked, warn)
TABLE = [
    ("echo test", STANDARD, False, False),
    ("echo test", ELEVATED, False, False),
    ("echo test", RESTRICTED, False, False),
    ("sudo apt-get install nginx", STANDARD, False, False),
    ("sudo apt-get install nginx", ELEVATED, False, False),
    ("sudo apt-get install nginx", RESTRICTED, False, False),
    ("rm -rf ./build", STANDARD, False, True),
    ("rm -rf ./build", ELEVATED, False, True),
    ("rm -rf ./build", RESTRICTED, True, False),
    ("mkfs.ext4 /dev/autobot-test-none", STANDARD, False, True),
    ("mkfs.ext4 /dev/autobot-test-none", ELEVATED, True, False),
    ("mkfs.ext4 /dev/autobot-test-none", RESTRICTED, True, False),
    ("trap - DEBUG", ELEVATED, True, False),
]


@pytest.mark.parametrize(("line", "level", "blocked", "warn"), TABLE)
def test_level_table(line, level, blocked, warn):
    verdict = decide(level, assess(line))
    assert (verdict.blocked, verdict.warn) == (blocked, warn)


def test_allowed_safe_command_has_no_reason():
    assert decide(RESTRICTED, assess("ls")) == Verdict(blocked=False, warn=False, reason=None)


def test_blocked_verdict_names_the_risk_and_the_reason():
    verdict = decide(RESTRICTED, assess("rm -rf /"))
    assert verdict.blocked
    assert verdict.reason.startswith("DANGEROUS at RESTRICTED: rm -rf /:")


def test_warning_carries_the_reason():
    verdict = decide(STANDARD, assess("reboot"))
    assert verdict.warn and not verdict.blocked
    assert "reboot: shuts down or reboots the machine" in verdict.reason


def test_level_accepts_plain_strings():
    assert decide("ELEVATED", assess("reboot")).blocked


def test_unknown_level_is_rejected():
    with pytest.raises(ValueError):
        decide("LAX", assess("ls"))


@pytest.mark.parametrize(
    "line",
    [
        "bash",
        "python3",
        "python -c 'print(1)'",
        "perl -e 1",
        "node",
    ],
)
def test_restricted_blocks_nested_shells_interpreters_and_inline_code(line):
    assessment = assess(line)
    assert decide(RESTRICTED, assessment).blocked
    assert not decide(ELEVATED, assessment).blocked


@pytest.mark.parametrize(
    "line", ["python x.py", "python3 script.py", "bash script.sh", "source env.sh", ". ./env.sh", "./run.sh"]
)
def test_restricted_allows_scripts_from_files_which_the_sandbox_contains(line):
    assert not decide(RESTRICTED, assess(line)).blocked


def test_restricted_blocks_unparseable_lines():
    assessment = assess("case $x in a) ls;; esac")
    assert not assessment.parsed
    verdict = decide(RESTRICTED, assessment)
    assert verdict.blocked
    assert not decide(ELEVATED, assessment).blocked


def test_restricted_allows_ordinary_work():
    for line in ["ls -la", "cat file | grep x", "git status", "make test", "pip install requests", "rm old.txt"]:
        assert not decide(RESTRICTED, assess(line)).blocked, line


def test_describe_levels():
    levels = describe_levels()
    assert [lv["name"] for lv in levels] == ["STANDARD", "ELEVATED", "RESTRICTED"]
    by_name = {lv["name"]: lv for lv in levels}
    assert by_name["STANDARD"]["blocks"] == [] and by_name["STANDARD"]["warns"] == ["HIGH", "DANGEROUS"]
    assert by_name["ELEVATED"]["blocks"] == ["DANGEROUS"] and by_name["ELEVATED"]["warns"] == ["HIGH"]
    assert by_name["RESTRICTED"]["blocks"] == ["HIGH", "DANGEROUS"]
    assert by_name["RESTRICTED"]["blocks_unparsed"] is True
    assert all(lv["description"] for lv in levels)


def test_every_level_has_a_policy():
    assert set(LEVEL_POLICY) == set(Level)


def test_strictness_order():
    assert STANDARD.strictness < ELEVATED.strictness < RESTRICTED.strictness


def test_max_level():
    assert max_level_for(True) is STANDARD
    assert max_level_for(False) is RESTRICTED


@pytest.mark.parametrize(
    ("current", "requested", "is_staff", "allowed"),
    [
        (None, RESTRICTED, False, True),
        (None, STANDARD, False, False),
        (None, ELEVATED, False, False),
        (None, STANDARD, True, True),
        (RESTRICTED, RESTRICTED, False, True),
        (RESTRICTED, ELEVATED, False, False),
        (RESTRICTED, STANDARD, True, True),
        (STANDARD, ELEVATED, False, False),  # stricter, but still below a non-staff user's cap
        (STANDARD, RESTRICTED, False, True),
        (ELEVATED, RESTRICTED, False, True),
        (STANDARD, ELEVATED, True, True),
        (ELEVATED, STANDARD, True, True),
        ("RESTRICTED", "ELEVATED", True, True),
    ],
)
def test_level_changes(current, requested, is_staff, allowed):
    assert can_set_level(current=current, requested=requested, is_staff=is_staff) is allowed
