"""Risk assessment of bash command lines. Pure: no I/O, no Django.

`assess(line)` parses the line as bash would (bashlex, `parse.py`), walks every simple command in it
(`walker.py`) — through pipelines, lists, subshells, groups, loops, functions, `$(...)`, backticks,
process substitutions, wrappers such as `sudo`/`env`/`xargs`, and the strings given to `bash -c`/
`eval` — and rates each one with the rules registered for its name (`registry.py`, `rules/`). The
line's risk is the highest risk found; every reason reads "<part>: <rule>".

Quoted arguments are data: only the command word of a simple command, and the strings a wrapper is
known to execute, are ever treated as commands.
"""

from terminal.risk import rules  # noqa: F401 - registers every rule
from terminal.risk.assess import assess
from terminal.risk.model import (
    MAX_DEPTH,
    MAX_LINE_CHARS,
    MAX_NESTING,
    MAX_PARTS,
    Assessment,
    CommandFact,
    Risk,
    Trait,
)

__all__ = [
    "MAX_DEPTH", "MAX_LINE_CHARS", "MAX_NESTING", "MAX_PARTS", "Assessment", "CommandFact", "Risk", "Trait", "assess",
]
