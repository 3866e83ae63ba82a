"""GNU parallel."""

from __future__ import annotations

import shlex
from collections.abc import Iterator
from typing import TYPE_CHECKING

from terminal.risk.model import Cmd, Hit, Risk
from terminal.risk.paths import split_options
from terminal.risk.registry import RUNS_UNSEEN, register
from terminal.risk.rules.options import _command_options

if TYPE_CHECKING:
    from terminal.risk.walker import _Walker


_PARALLEL_SEPARATORS = {":::", "::::", ":::+", "::::+"}


_PARALLEL_VALUE_OPTIONS = tuple(
    "arg-file colsep delimiter jobs joblog results tmpdir workdir wd sshlogin sshloginfile timeout delay retries"
    " halt env replace max-args max-lines block memfree load nice tagstring header basefile return transfer-file"
    " ssh compress-program decompress-program shebang eof max-chars termseq limit".split()
)


def _parallel_command(args: list[str]) -> tuple[list[str], int]:
    """(the command words of a GNU parallel line, index of its first ::: / :::: separator)."""
    sep = next((k for k, a in enumerate(args) if a in _PARALLEL_SEPARATORS), len(args))
    _, _, i = split_options(args[:sep], "aCdEIjlLnNPsSW", _PARALLEL_VALUE_OPTIONS)
    return args[i:sep], sep


_GIVEN_LIMIT = 16


def _parallel(cmd: Cmd, w: _Walker) -> Iterator[Hit]:
    """GNU parallel runs `COMMAND ARG` through a shell for each input argument; with no command,
    each argument is itself a command."""
    yield from _command_options(cmd, w)
    args = cmd.args
    command, sep = _parallel_command(args)
    given = [a for a in args[sep + 1 :] if a not in _PARALLEL_SEPARATORS]
    if command:
        text = " ".join(command)  # parallel runs the words joined, through a shell
        yield from w.run_string(text, None, cmd, input_marker="{" if "{" in text else "")
        if args[sep : sep + 1] == [":::"]:  # the arguments are on the line too: judge it with each (quoted)
            for a in given[:_GIVEN_LIMIT]:
                quoted = shlex.quote(a)
                yield from w.run_string(text.replace("{}", quoted) if "{}" in text else f"{text} {quoted}", None, cmd)
    elif args[sep : sep + 1] == [":::"]:
        for a in args[sep + 1 :]:
            if a not in _PARALLEL_SEPARATORS:
                yield from w.run_string(a, None, cmd)
    elif cmd.stdin == "here" and cmd.stdin_text is not None:
        yield from w.run_string(cmd.stdin_text, None, cmd)
    elif cmd.stdin != "pipe":  # a pipe is judged with the rest of the pipeline
        yield Hit(Risk.HIGH, "runs commands read from its input, which cannot be assessed")


register("parallel", family="parallel", check=_parallel, input_args=RUNS_UNSEEN,
         summary="GNU parallel: the command gets arguments from input; with no command its arguments run as commands",
         benign={"parallel gzip ::: a b": Risk.SAFE}, harmful={"parallel ::: 'rm -rf /'": Risk.DANGEROUS})
