"""Database clients given statements that run shell commands."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from terminal.risk.model import Cmd, Hit, Risk
from terminal.risk.paths import option_values
from terminal.risk.registry import register
from terminal.risk.rules.options import _command_options

if TYPE_CHECKING:
    from terminal.risk.walker import _Walker


# mysql/mariadb `system CMD` / `\! CMD`; psql `\! CMD`, `\o |CMD`, `\g |CMD`, `\copy … program 'CMD'`;
# sqlite3 `.shell CMD`, `.system CMD`, `.output |CMD`, `.once |CMD`.
_CLIENT_SHELL = re.compile(r"(?:^|[;\n])\s*(?:system|\\!|\.(?:shell|system))[ \t]+(?P<command>[^;\n]*)", re.I)


_CLIENT_PIPE = re.compile(r"(?:\\[og]|\.(?:output|once))\s*\|\s*(?P<command>[^;\n]*)")


_CLIENT_PROGRAM = re.compile(r"\bprogram\s+'(?P<command>(?:[^']|'')*)'", re.I)


def _client_statements(statements: Iterable[str], cmd: Cmd, w: _Walker) -> Iterator[Hit]:
    for text in statements:
        for pattern in (_CLIENT_SHELL, _CLIENT_PIPE, _CLIENT_PROGRAM):
            for m in pattern.finditer(text):
                command = m.group("command").strip().replace("''", "'")
                if command:
                    yield from w.run_string(command, None, cmd)


def _mysql(cmd: Cmd, w: _Walker) -> Iterator[Hit]:
    yield from _client_statements(option_values(cmd.args, "e", ("execute",), takes="uhPpSDA"), cmd, w)
    yield from _command_options(cmd, w)  # --pager=CMD


def _psql(cmd: Cmd, w: _Walker) -> Iterator[Hit]:
    yield from _client_statements(option_values(cmd.args, "c", ("command",), takes="dfhLopPTUvFRU"), cmd, w)


def _sqlite3(cmd: Cmd, w: _Walker) -> Iterator[Hit]:
    """sqlite3 [OPTIONS] DB [SQL...]: the SQL operands and -cmd values are dot commands or SQL."""
    values = option_values([("-" + a if re.match(r"^-[a-z]{2,}", a) else a) for a in cmd.args], "",
                           ("cmd", "init"))
    operands = [a for a in cmd.args if not a.startswith("-")][1:]
    yield from _client_statements([*values, *operands], cmd, w)


register("mysql", "mariadb", family="databases", check=_mysql,
         summary="statements on the command line that run shell commands (`-e 'system CMD'`, `\\! CMD`)",
         benign={"mysql -e 'select 1'": Risk.SAFE}, harmful={"mysql -e 'system rm -rf /'": Risk.DANGEROUS})
register("psql", family="databases", check=_psql,
         summary="`psql -c '\\! CMD'`, `\\o |CMD`, `COPY … PROGRAM` judged as CMD",
         benign={"psql -c 'select 1'": Risk.SAFE}, harmful={"psql -c '\\! rm -rf /'": Risk.DANGEROUS})
register("sqlite3", family="databases", check=_sqlite3,
         summary="`.shell`/`.system`/`.output |CMD` judged as CMD", benign={"sqlite3 db.sqlite .tables": Risk.SAFE},
         harmful={"sqlite3 db.sqlite '.shell rm -rf /'": Risk.DANGEROUS})
