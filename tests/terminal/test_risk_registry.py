"""The rule registry: every rule has examples, and they are rated as declared."""

import pytest

from terminal.risk import Risk, assess
from terminal.risk.registry import SPECS
from terminal.risk.rules import expansions, hookvars

EXAMPLES = [(spec.family, line, risk) for spec in SPECS for line, risk in {**spec.benign, **spec.harmful}.items()]


def test_a_rule_without_examples_cannot_be_registered():
    from terminal.risk.registry import register

    before = len(SPECS)
    with pytest.raises(ValueError, match="benign and harmful examples"):
        register("newtool", family="misc", check=lambda cmd, w: iter(()), summary="x", benign={}, harmful={})
    with pytest.raises(ValueError):
        register("newtool", family="misc", check=lambda cmd, w: iter(()), summary="x",
                 benign={"newtool --help": Risk.SAFE}, harmful={})
    assert len(SPECS) == before


def test_every_registered_rule_has_a_benign_and_a_harmful_example():
    missing = [spec.names for spec in SPECS if not spec.benign or not spec.harmful]
    assert missing == []


def test_a_harmful_example_is_rated_above_every_benign_one():
    inverted = [spec.names for spec in SPECS if max(spec.harmful.values()) <= min(spec.benign.values())]
    assert inverted == []


@pytest.mark.parametrize(("family", "line", "risk"), EXAMPLES, ids=[f"{f}:{line}" for f, line, _ in EXAMPLES])
def test_each_example_is_rated_as_its_rule_declares(family, line, risk):
    assert assess(line).risk == risk, assess(line).reasons


def test_the_documented_rules_table_is_the_registry():
    from terminal.risk.table import DOC, documented, render

    assert documented(DOC.read_text(encoding="utf-8")) == render(), "run: python -m terminal.risk.table --write"


def test_every_family_module_registers_rules_with_its_commands():
    assert {spec.family for spec in SPECS} >= {"files", "devices", "users", "services", "containers", "firewall",
                                               "kernel", "mounts", "boot", "packages", "interpreters", "editors",
                                               "variables", "databases", "shells", "wrappers", "common"}
    assert all(spec.names and spec.summary for spec in SPECS)


def test_the_walker_names_no_command():
    """Commands are known to the rules, not to the walker, the parser or the entry point."""
    import re
    from pathlib import Path

    # bashlex node kinds, stdin kinds and the neutral `true` parse.py rewrites `[[ … ]]` to: not rules
    syntax = {"command", "file", "pipe", "here", "time", "true"}
    names = {name for spec in SPECS for name in spec.names if re.fullmatch(r"[a-z][\w.-]+", name)} - syntax
    package = Path(__file__).resolve().parents[2] / "terminal" / "risk"
    for module in ("walker.py", "walkhelpers.py", "parse.py", "assess.py"):
        quoted = set(re.findall(r"\"([a-z][\w.-]+)\"", (package / module).read_text(encoding="utf-8")))
        assert not quoted & names, (module, sorted(quoted & names))


def test_no_module_of_the_package_is_over_600_lines():
    from pathlib import Path

    package = Path(__file__).resolve().parents[2] / "terminal" / "risk"
    sizes = {p.name: len(p.read_text(encoding="utf-8").splitlines()) for p in package.rglob("*.py")}
    assert max(sizes.values()) <= 600, sizes


WALKER_EXAMPLES = [*expansions.BENIGN.items(), *expansions.HARMFUL.items(), *hookvars.BENIGN.items(),
                   *hookvars.HARMFUL.items()]


@pytest.mark.parametrize(("line", "risk"), WALKER_EXAMPLES, ids=[line for line, _ in WALKER_EXAMPLES])
def test_the_walkers_own_rules_rate_their_examples_as_declared(line, risk):
    """Rules of the walker (not of a command name) keep examples beside them too."""
    assert assess(line).risk == risk, assess(line).reasons


def test_the_walkers_own_rules_have_examples_both_ways():
    for module in (expansions, hookvars):
        assert module.BENIGN and module.HARMFUL
        assert max(module.HARMFUL.values()) > min(module.BENIGN.values())
