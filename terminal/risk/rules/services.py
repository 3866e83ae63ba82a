"""Power and services: shutdown, init, systemctl, service."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from terminal.risk.model import Cmd, Hit, Risk
from terminal.risk.paths import _first_operand, split_options
from terminal.risk.registry import CONTROLS_UNSEEN, register

if TYPE_CHECKING:
    from terminal.risk.walker import _Walker


def _power(cmd: Cmd, _w: _Walker) -> Iterator[Hit]:
    if cmd.name == "shutdown" and {"-c", "--help"} & set(cmd.args):
        return
    if {"--help", "--version"} & set(cmd.args):
        return
    yield Hit(Risk.DANGEROUS, "shuts down or reboots the machine")


def _init(cmd: Cmd, _w: _Walker) -> Iterator[Hit]:
    level = _first_operand(cmd.args)
    if level in {"0", "6"}:
        yield Hit(Risk.DANGEROUS, "shuts down or reboots the machine")
    elif level:
        yield Hit(Risk.HIGH, "changes the runlevel")


_SYSTEMCTL_POWER = {"poweroff", "reboot", "halt", "kexec", "soft-reboot", "emergency", "rescue"}


_SYSTEMCTL_STOP = {"stop", "disable", "mask", "kill", "suspend", "hibernate", "hybrid-sleep", "isolate"}


_SYSTEMCTL_CHANGE = {
    "start",
    "restart",
    "try-restart",
    "reload",
    "reload-or-restart",
    "try-reload-or-restart",
    "enable",
    "reenable",
    "unmask",
    "daemon-reload",
    "edit",
    "set-property",
    "preset",
    "revert",
    "link",
    "set-default",
}


def _systemctl(cmd: Cmd, _w: _Walker) -> Iterator[Hit]:
    _, _, i = split_options(
        cmd.args, "tpHMsno", ("type", "property", "host", "machine", "signal", "state", "lines", "output", "root")
    )
    verb = cmd.args[i] if i < len(cmd.args) else ""
    units = cmd.args[i + 1 :]
    if verb in _SYSTEMCTL_POWER or (
        verb == "isolate"
        and any(u.split(".")[0] in _SYSTEMCTL_POWER | {"poweroff", "runlevel0", "runlevel6"} for u in units)
    ):
        yield Hit(Risk.DANGEROUS, "shuts down, reboots or isolates the machine")
    elif verb in _SYSTEMCTL_STOP:
        yield Hit(Risk.HIGH, f"service control: {verb}")
    elif verb in _SYSTEMCTL_CHANGE:
        yield Hit(Risk.MODERATE, f"service control: {verb}")


def _service(cmd: Cmd, _w: _Walker) -> Iterator[Hit]:
    if len(cmd.args) < 2:
        return
    action = cmd.args[1]
    if action == "stop":
        yield Hit(Risk.HIGH, "service control: stop")
    elif action in {"start", "restart", "reload", "force-reload", "try-restart"}:
        yield Hit(Risk.MODERATE, f"service control: {action}")


register("shutdown", "reboot", "halt", "poweroff", family="services", check=_power,
         summary="shutting down or rebooting the machine", benign={"shutdown -c": Risk.SAFE},
         harmful={"shutdown -h now": Risk.DANGEROUS})
register("init", "telinit", family="services", check=_init,
         input_args=Hit(Risk.DANGEROUS, "changes the runlevel (possibly to shut down) as its input says"),
         summary="`init 0`/`6` DANGEROUS; other runlevels HIGH", benign={"init --help": Risk.SAFE},
         harmful={"init 0": Risk.DANGEROUS})
register("systemctl", family="services", check=_systemctl, input_args=CONTROLS_UNSEEN,
         summary="power verbs DANGEROUS; stop/disable/mask/kill/isolate HIGH; start/restart/enable/edit MODERATE",
         benign={"systemctl status nginx": Risk.SAFE},
         harmful={"systemctl stop nginx": Risk.HIGH, "systemctl reboot": Risk.DANGEROUS})
register("service", family="services", check=_service, input_args=CONTROLS_UNSEEN,
         summary="`service X stop` HIGH; start/restart/reload MODERATE", benign={"service nginx status": Risk.SAFE},
         harmful={"service nginx stop": Risk.HIGH})
