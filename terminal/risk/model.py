"""The values the rules and the walker pass around: risks, traits, hits, commands, assessments."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from typing import TYPE_CHECKING, NamedTuple

from terminal.risk.paths import canonical

if TYPE_CHECKING:
    from terminal.risk.walker import _Walker


MAX_LINE_CHARS = 64 * 1024


MAX_DEPTH = 8  # nested `bash -c "bash -c '...'"` levels before we give up (HIGH)
# The cost bound of one line: rating is pure Python on the server's event loop path, so a line
# past any of these is rated unassessable (HIGH, not parsed: RESTRICTED blocks it) instead.
MAX_PARTS = 512  # pipes, separators and substitutions in the text
MAX_NESTING = 48  # depth of brackets, braces and substitutions in the text
MAX_WORDS = 2048  # words in the text (bashlex takes about 0.25 ms a word)
MAX_NODES = 10000  # words parsed plus syntax nodes visited, strings run by wrappers included
BUDGET_SECONDS = 1.0  # CPU time (of this thread: load from others does not count) per line


class Unassessable(Exception):  # noqa: N818 - it is a verdict, not an error
    """The line is over the cost bound; the message says which."""


class Risk(IntEnum):
    SAFE = 0
    MODERATE = 1
    HIGH = 2
    DANGEROUS = 3


class Trait(StrEnum):
    """What a command does that matters to the policy beyond its risk (see policy.py)."""

    NESTED_SHELL = "nested_shell"  # an interactive shell or REPL the command hook cannot see into
    SCRIPT_FILE = "script_file"  # runs code from a file, a pipe or a script (python x.py, source)
    INLINE_CODE = "inline_code"  # runs code given on the command line (python -c, perl -e)
    # makes other programs, or later plain commands, load code from files the line does not show
    # (PATH=., PYTHONPATH, LD_PRELOAD, vim -S, gdb -x): a kind of script file
    LOADS_CODE = "loads_code"


_IMPLIED = {Trait.LOADS_CODE: Trait.SCRIPT_FILE}


@dataclass(frozen=True)
class CommandFact:
    """One simple command found in the line (wrappers already peeled off in `name`)."""

    text: str
    name: str
    risk: Risk
    traits: frozenset[Trait] = frozenset()


@dataclass(frozen=True)
class Assessment:
    risk: Risk
    reasons: tuple[str, ...]
    commands: tuple[str, ...]
    facts: tuple[CommandFact, ...] = ()
    parsed: bool = True  # False when bashlex could not parse the line (risk is then >= HIGH)

    @property
    def traits(self) -> frozenset[Trait]:
        traits = frozenset().union(*(f.traits for f in self.facts))
        return traits | {_IMPLIED[t] for t in traits if t in _IMPLIED}

    def to_dict(self) -> dict:
        return {
            "risk": self.risk.name,
            "reasons": list(self.reasons),
            "commands": list(self.commands),
        }


class Hit(NamedTuple):
    risk: Risk
    why: str
    trait: Trait | None = None


class Redirect(NamedTuple):
    """One redirection of a simple command, as bash applies it."""

    fd: int  # the descriptor it changes (bash's default when the line names none: 0 for `<`, 1 for `>`)
    op: str  # `<`, `>&`, `<<<`, …
    target: str  # what follows the operator, quotes removed (`3` for `<&3`, '' for a here-document)


@dataclass
class Cmd:
    """A simple command as the rules see it."""

    argv: list[str]
    text: str
    words: list = field(default_factory=list)  # bashlex word nodes aligned with argv, or []
    stdin: str | None = None  # None (terminal), "pipe", "file", "here"
    stdin_text: str | None = None  # here-string / heredoc body
    stdin_path: str | None = None  # `< path`
    top: bool = True  # runs in the monitored shell itself (not inside bash -c / a subshell string)
    # xargs and parallel give the command arguments from their input, which the rules never see:
    # appended (marker "") or replacing a marker such as `{}` inside its words.
    input_args: bool = False
    input_marker: str = ""
    redirects: tuple[Redirect, ...] = ()

    @property
    def name(self) -> str:
        return canonical(self.argv[0]) if self.argv else ""

    @property
    def args(self) -> list[str]:
        return self.argv[1:]

    def sub(self, start: int, text: str | None = None) -> Cmd:
        """The command that starts at argv[start] (a wrapper's payload)."""
        return Cmd(
            argv=self.argv[start:],
            text=text if text is not None else " ".join(self.argv[start:]),
            words=self.words[start:] if self.words else [],
            stdin=self.stdin,
            stdin_text=self.stdin_text,
            stdin_path=self.stdin_path,
            top=self.top,
            input_args=self.input_args,
            input_marker=self.input_marker,
            redirects=self.redirects,
        )


Rule = Callable[[Cmd, "_Walker"], Iterable[Hit]]
