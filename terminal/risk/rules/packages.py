"""Package managers."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

from terminal.risk.model import Cmd, Hit, Risk, Trait
from terminal.risk.paths import _first_operand, option_values
from terminal.risk.registry import register

if TYPE_CHECKING:
    from terminal.risk.walker import _Walker


# name -> (verbs that install or upgrade, verbs that remove)
_PACKAGE_VERBS: dict[str, tuple[set[str], set[str]]] = {
    "apt": (
        {"install", "reinstall", "upgrade", "full-upgrade", "dist-upgrade", "build-dep"},
        {"remove", "purge", "autoremove", "autopurge"},
    ),
    "yum": (
        {"install", "in", "reinstall", "update", "upgrade", "up", "localinstall", "groupinstall", "dup", "distro-sync"},
        {"remove", "rm", "erase", "autoremove", "groupremove"},
    ),
    "apk": ({"add", "upgrade", "fix"}, {"del"}),
    "brew": ({"install", "reinstall", "upgrade", "tap"}, {"uninstall", "remove", "rm", "untap"}),
    "snap": ({"install", "refresh"}, {"remove"}),
    "pip": ({"install", "download"}, {"uninstall"}),
    "npm": (
        {"install", "i", "add", "ci", "update", "upgrade", "up", "link"},
        {"uninstall", "remove", "rm", "un", "r", "unlink"},
    ),
    "gem": ({"install", "update"}, {"uninstall"}),
    "cargo": ({"install"}, {"uninstall"}),
    "go": ({"install", "get"}, set()),
    "conda": ({"install", "update", "create", "upgrade"}, {"remove", "uninstall"}),
}


_PACKAGE_ALIASES = {
    "apt-get": "apt",
    "aptitude": "apt",
    "dnf": "yum",
    "microdnf": "yum",
    "zypper": "yum",
    "flatpak": "snap",
    "pip3": "pip",
    "pipx": "pip",
    "yarn": "npm",
    "pnpm": "npm",
    "mamba": "conda",
}


def _package_manager(cmd: Cmd, w: _Walker) -> Iterator[Hit]:
    family = _PACKAGE_ALIASES.get(cmd.name, cmd.name)
    installs, removes = _PACKAGE_VERBS[family]
    verb = _first_operand(cmd.args, "otcC")
    if verb in removes:
        yield Hit(Risk.HIGH, "removes packages")
    elif verb in installs:
        yield Hit(Risk.MODERATE, "installs or upgrades packages")
    if family == "apt":
        yield from _apt_options(cmd, w)


# apt configuration keys whose values apt or dpkg run as shell commands.
_APT_COMMAND_KEY = re.compile(r"(?i)(pre|post)-invoke(-success)?(::|$)|pre-install-pkgs(::|$)"
                              r"|::proxy-?auto-?detect$|^dpkg::tools::|^apt::update::.*invoke")


# Keys that name programs apt runs, or where its configuration and helpers come from.
_APT_CODE_KEY = re.compile(r"(?i)^(dir(::(etc|bin)(::.*)?)?|dpkg::path|apt::key::gpgvcommand|apt::(solver|planner)"
                           r"|dir::(bin|etc|lib|libexec)::.*)$")


def _apt_options(cmd: Cmd, w: _Walker) -> Iterator[Hit]:
    """`apt-get -o APT::Update::Pre-Invoke::=CMD` runs CMD; `-c FILE` reads a configuration that can."""
    for value in option_values(cmd.args, "o", ("option",), takes="tcaP"):
        key, _, command = value.partition("=")
        key = re.sub(r"(?i)^binary::[^:]+::", "", key.strip())
        if _APT_COMMAND_KEY.search(key) and command.strip():
            yield from w.run_string(command, None, cmd)
        elif _APT_CODE_KEY.match(key):
            yield Hit(Risk.HIGH, f"apt option {key} points apt at programs or configuration that cannot be assessed",
                      Trait.SCRIPT_FILE)
    if option_values(cmd.args, "c", ("config-file",), takes="otaP"):
        yield Hit(Risk.HIGH, "reads apt configuration from a file, which can name commands apt runs", Trait.SCRIPT_FILE)


def _package_by_option(cmd: Cmd, _w: _Walker) -> Iterator[Hit]:
    """dpkg, rpm and pacman choose the operation with an option, not a verb."""
    flags = [a for a in cmd.args if a.startswith("-")]
    removes = {"dpkg": r"^-(r|P)$|^--(remove|purge)$", "rpm": r"^-e\w*$|^--erase$", "pacman": r"^-R\w*$|^--remove$"}
    installs = {
        "dpkg": r"^-i$|^--(install|unpack)$",
        "rpm": r"^-[iUF]\w*$|^--(install|upgrade|freshen)$",
        "pacman": r"^-[SU]\w*$|^--(sync|upgrade)$",
    }
    if any(re.match(removes[cmd.name], f) for f in flags):
        yield Hit(Risk.HIGH, "removes packages")
    elif any(re.match(installs[cmd.name], f) for f in flags):
        yield Hit(Risk.MODERATE, "installs or upgrades packages")


register(*_PACKAGE_VERBS, *_PACKAGE_ALIASES, family="packages", check=_package_manager,
         input_args=Hit(Risk.MODERATE, "installs or removes packages named by its input"),
         summary="installing or upgrading packages MODERATE; removing or purging HIGH; apt `-o` hooks as commands",
         benign={"apt list --installed": Risk.SAFE, "pip install requests": Risk.MODERATE},
         harmful={"apt-get purge openssh-server": Risk.HIGH})
register("dpkg", "rpm", "pacman", family="packages", check=_package_by_option,
         input_args=Hit(Risk.MODERATE, "installs or removes packages named by its input"),
         summary="`dpkg -i`, `rpm -i`, `pacman -S` MODERATE; `dpkg -r`/`-P`, `rpm -e`, `pacman -R` HIGH",
         benign={"dpkg -l": Risk.SAFE}, harmful={"dpkg -P openssh-server": Risk.HIGH})
register("apt-cache", "apt-mark", "apt-cdrom", "apt-config", "apt-helper", "apt-ftparchive", "apt-key",
         family="packages", check=_apt_options,
         summary="apt `-o …Pre-Invoke=CMD` judged as CMD; `-c FILE` and program keys HIGH",
         benign={"apt-cache policy bash": Risk.SAFE},
         harmful={"apt-cache -c x.conf policy": Risk.HIGH})
