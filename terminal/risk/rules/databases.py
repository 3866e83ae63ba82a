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


_SQL_DESTROYS = re.compile(r"\b(drop|truncate)\s+(table|database|schema|index|view)\b", re.I)
_SQL_WRITES = re.compile(r"\b(update|insert\s+into|delete\s+from|replace\s+into|alter|create|grant|revoke|attach)\b",
                         re.I)
# The application's own accounts and sessions (Django's tables): writing them is how a shell user
# became staff in issue 12's red-team pass.
_SQL_ACCOUNTS = re.compile(r"\b(auth_\w+|django_session|\w*_user\w*)\b", re.I)


def _sql_hits(statements: list[str]) -> Iterator[Hit]:
    text = "\n".join(statements)
    if _SQL_DESTROYS.search(text):
        yield Hit(Risk.HIGH, "drops or empties database tables")
    elif _SQL_WRITES.search(text) and _SQL_ACCOUNTS.search(text):
        yield Hit(Risk.HIGH, "changes user accounts, permissions or sessions in a database")
    elif _SQL_WRITES.search(text):
        yield Hit(Risk.MODERATE, "changes a database")


def _client_statements(statements: Iterable[str], cmd: Cmd, w: _Walker) -> Iterator[Hit]:
    statements = [*statements, *([cmd.stdin_text] if cmd.stdin == "here" and cmd.stdin_text else [])]
    yield from _sql_hits(statements)
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
         summary="SQL given on the command line or in a here-document: dropping tables, or writing accounts, "
                 "permissions or sessions HIGH, other writes MODERATE; `-e 'system CMD'`, `\\! CMD` judged as CMD",
         benign={"mysql -e 'select 1'": Risk.SAFE, "mysql -e 'insert into notes values (1)' app": Risk.MODERATE},
         harmful={"mysql -e 'drop table notes' app": Risk.HIGH, "mysql -e 'system rm -rf /'": Risk.DANGEROUS})
register("psql", family="databases", check=_psql,
         summary="SQL as for mysql; `psql -c '\\! CMD'`, `\\o |CMD`, `COPY … PROGRAM` judged as CMD",
         benign={"psql -c 'select 1'": Risk.SAFE},
         harmful={"psql -c 'truncate table notes'": Risk.HIGH, "psql -c '\\! rm -rf /'": Risk.DANGEROUS})
register("sqlite3", family="databases", check=_sqlite3,
         summary="SQL as for mysql; `.shell`/`.system`/`.output |CMD` judged as CMD",
         benign={"sqlite3 db.sqlite .tables": Risk.SAFE},
         harmful={"sqlite3 db.sqlite3 'update auth_user set is_staff=1'": Risk.HIGH,
                  "sqlite3 db.sqlite '.shell rm -rf /'": Risk.DANGEROUS})
