"""Scheduled commands: cron and at."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from terminal.risk.model import Cmd, Hit, Risk
from terminal.risk.paths import split_options
from terminal.risk.registry import CONTROLS_UNSEEN, RUNS_UNSEEN, register

if TYPE_CHECKING:
    from terminal.risk.walker import _Walker


def _crontab(cmd: Cmd, _w: _Walker) -> Iterator[Hit]:
    opts, _, i = split_options(cmd.args, "u")
    if "r" in opts:
        yield Hit(Risk.HIGH, "removes the crontab")
    elif "e" in opts or i < len(cmd.args):
        yield Hit(Risk.MODERATE, "replaces or edits the crontab")


def _at(cmd: Cmd, w: _Walker) -> Iterator[Hit]:
    """at/batch read the commands to schedule from stdin (or -f FILE); atd runs them later."""
    opts, _, _ = split_options(cmd.args, "qfMmt")
    if opts & {"l", "c", "d", "r", "V", "h", "help", "version"}:
        return  # list, show or remove jobs
    if "f" in opts:
        yield Hit(Risk.HIGH, "schedules the commands of a file, which cannot be assessed")
        return
    yield Hit(Risk.HIGH, "schedules commands read from its input, which cannot be assessed")
    if cmd.stdin == "here" and cmd.stdin_text is not None:
        yield from w.run_string(cmd.stdin_text, None, cmd)


register("crontab", family="scheduling", check=_crontab, input_args=CONTROLS_UNSEEN,
         summary="`crontab -r` HIGH; editing or replacing the crontab MODERATE", benign={"crontab -l": Risk.SAFE},
         harmful={"crontab -r": Risk.HIGH})
register("at", "batch", family="scheduling", check=_at, input_args=RUNS_UNSEEN,
         summary="`at`/`batch` schedule commands from input or `-f FILE`: at least HIGH; listing/removing SAFE",
         benign={"at -l": Risk.SAFE}, harmful={"at now": Risk.HIGH, "echo 'rm -rf /' | at now": Risk.DANGEROUS})
