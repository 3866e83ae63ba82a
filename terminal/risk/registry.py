"""The rule registry: every rule says which commands it covers, what it is about and how it rates
lines of its own (its examples). The walker asks the registry, never a command name.

A rule is added in one place, a family module under `rules/`:

    register("userdel", "deluser", family="users", check=_userdel,
             summary="deletes user accounts",
             benign={"userdel --help": Risk.SAFE}, harmful={"userdel alice": Risk.HIGH})

`tests/terminal/test_risk_registry.py` rates every example and fails on a rule without them;
`python -m terminal.risk.table` writes the table of docs/terminal-risk.md from here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from terminal.risk.model import Cmd, Hit, Risk, Rule

# How a command is rated when xargs/parallel give it arguments the rules never see: a fixed Hit,
# or a function of the command.
InputArgs = Hit | Callable[[Cmd], Iterator[Hit]] | None
# A wrapper (sudo, nice, xargs…) says where in argv the command it runs starts (None: nothing).
Start = Callable[[list[str]], int | None]


@dataclass(frozen=True)
class RuleSpec:
    family: str
    names: tuple[str, ...]
    check: Rule
    summary: str
    benign: Mapping[str, Risk]
    harmful: Mapping[str, Risk]
    input_args: InputArgs = None
    start: Start | None = None  # set for wrappers
    alone: Rule | None = None  # a wrapper left with nothing to run (`sudo -i`)
    tags: frozenset[str] = field(default_factory=frozenset)


SPECS: list[RuleSpec] = []
RULES: dict[str, list[RuleSpec]] = {}


def register(
    *names: str,
    family: str,
    check: Rule,
    summary: str,
    benign: Mapping[str, Risk],
    harmful: Mapping[str, Risk],
    input_args: InputArgs = None,
    start: Start | None = None,
    alone: Rule | None = None,
    tags: Iterable[str] = (),
) -> RuleSpec:
    if not names or not benign or not harmful:
        raise ValueError(f"rule {names or family!r} needs command names and benign and harmful examples")
    spec = RuleSpec(family, tuple(names), check, summary, dict(benign), dict(harmful), input_args, start, alone,
                    frozenset(tags))
    SPECS.append(spec)
    for name in names:
        RULES.setdefault(name, []).append(spec)
    return spec


def rules_for(name: str) -> list[RuleSpec]:
    return RULES.get(name, [])


def wrapper_for(name: str) -> RuleSpec | None:
    return next((s for s in RULES.get(name, []) if s.start is not None), None)


def has_tag(name: str, tag: str) -> bool:
    return any(tag in spec.tags for spec in RULES.get(name, []))


def tagged(tag: str) -> frozenset[str]:
    """Command names whose rules carry `tag` (e.g. "shell", "allowed")."""
    return frozenset(n for s in SPECS if tag in s.tags for n in s.names)


def _input_args_hits(cmd: Cmd, specs: list[RuleSpec]) -> Iterator[Hit]:
    if cmd.input_marker and cmd.input_marker in cmd.argv[0]:
        yield Hit(Risk.HIGH, "the command name comes from its input, so it cannot be judged")
        return
    for spec in specs:
        if isinstance(spec.input_args, Hit):
            yield spec.input_args
        elif spec.input_args is not None:
            yield from spec.input_args(cmd)


# Shared ratings for commands given arguments from input (xargs, parallel).
WRITES_UNSEEN = Hit(Risk.HIGH, "writes, moves or deletes files named by its input")
CONTROLS_UNSEEN = Hit(Risk.HIGH, "changes services, the firewall or cron as its input says")
RUNS_UNSEEN = Hit(Risk.HIGH, "with arguments from its input it can run any command or change the command hook")
