"""Programs that run a command named in one of their options."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from terminal.risk.model import Cmd, Hit, Risk, Trait
from terminal.risk.paths import option_values, split_options
from terminal.risk.registry import RUNS_UNSEEN, register

if TYPE_CHECKING:
    from terminal.risk.walker import _Walker


@dataclass(frozen=True)
class CommandOption:
    """Options of a program whose value is a command it runs."""

    short: str = ""
    long: tuple[str, ...] = ()
    takes: str = ""  # the program's other short options that take a value
    attached_only: bool = False  # the value is optional: only `-Xcmd` / `--opt=cmd` name one


_COMMAND_OPTIONS: dict[str, CommandOption] = {
    "tar": CommandOption(
        "IF",
        ("to-command", "use-compress-program", "info-script", "new-volume-script", "rsh-command", "rmt-command"),
        takes="bCfgHKLNTVX",
    ),
    "rsync": CommandOption("e", ("rsh",), takes="BfMT"),
    "scp": CommandOption("S", takes="cDFiJlmoOPX"),
    "sftp": CommandOption("SD", takes="BbcFiJlopRs"),
    "script": CommandOption("c", ("command",), takes="IOBTmEo"),
    "split": CommandOption("", ("filter",), takes="abCln"),
    "sort": CommandOption("", ("compress-program",), takes="kotST"),
    "man": CommandOption("P", ("pager",), takes="CMmSsLpRe"),
    "tcpdump": CommandOption("z", takes="ABcCDEFGiIjmMrsTVwWy"),
    "flock": CommandOption("c", ("command",), takes="wE"),
    "runuser": CommandOption("c", ("command", "session-command"), takes="gGuw"),
    "parallel": CommandOption("", ("ssh", "compress-program", "decompress-program")),
    "dpkg": CommandOption("", ("pre-invoke", "post-invoke", "status-logger"), takes="ORD"),
    "zip": CommandOption("", ("unzip-command",), takes="bnPtxi"),
    "mysql": CommandOption("", ("pager",), attached_only=True),
    "mariadb": CommandOption("", ("pager",), attached_only=True),
}


def _command_options(cmd: Cmd, w: _Walker) -> Iterator[Hit]:
    spec = _COMMAND_OPTIONS[cmd.name]
    for value in option_values(cmd.args, spec.short, spec.long, takes=spec.takes, attached_only=spec.attached_only):
        yield from w.run_string(value, None, cmd)


def _script(cmd: Cmd, w: _Walker) -> Iterator[Hit]:
    opts, _, _ = split_options(cmd.args, "IOBTmEo", ("log-in", "log-out", "log-io", "log-timing", "echo"))
    if opts & {"c", "command", "V", "version", "h", "help"}:
        yield from _command_options(cmd, w)
        return
    yield Hit(Risk.HIGH, "starts a shell the command hook cannot see into", Trait.NESTED_SHELL)


def _make(cmd: Cmd, _w: _Walker) -> Iterator[Hit]:
    opts, _, _ = split_options(cmd.args, "CEfIjlowW", ("file", "makefile", "eval", "directory", "include-dir"))
    if opts & {"E", "eval"}:
        yield Hit(Risk.MODERATE, "runs make code given on the command line", Trait.INLINE_CODE)
    elif opts & {"f", "file", "makefile"}:
        yield Hit(Risk.MODERATE, "runs the recipes of a makefile", Trait.SCRIPT_FILE)


register(*sorted(set(_COMMAND_OPTIONS) - {"tar", "flock", "runuser"}), family="options", check=_command_options,
         input_args=RUNS_UNSEEN,
         summary="a command named in an option is judged as that command (`script -c`, `split --filter`, "
                 "`sort --compress-program`, `man -P`, `tcpdump -z`, `rsync -e`, `dpkg --pre-invoke`, "
                 "`mysql --pager`…)",
         benign={"sort -u names.txt": Risk.SAFE}, harmful={"man -P 'rm -rf /' ls": Risk.DANGEROUS})
register("script", family="options", check=_script, input_args=RUNS_UNSEEN,
         summary="`script` without `-c` starts an unhooked shell (HIGH)", benign={"script -c ls log.txt": Risk.SAFE},
         harmful={"script log.txt": Risk.HIGH})
register("make", "gmake", family="options", check=_make,
         input_args=Hit(Risk.MODERATE, "make with arguments from its input can run any makefile", Trait.SCRIPT_FILE),
         summary="`make -f FILE`, `--eval` MODERATE; plain `make`, `make test` SAFE",
         benign={"make test": Risk.SAFE}, harmful={"make -f other.mk": Risk.MODERATE})
