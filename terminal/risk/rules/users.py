"""Users and groups: accounts, passwords, group membership, sudoers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from terminal.risk.model import Cmd, Hit, Risk
from terminal.risk.paths import split_options
from terminal.risk.registry import register

if TYPE_CHECKING:
    from terminal.risk.walker import _Walker


# Membership of these groups is root, or as good as root.
_ADMIN_GROUPS = {"root", "sudo", "wheel", "admin", "adm", "docker", "lxd", "disk", "shadow", "kvm", "libvirt"}
_INFO = {"h", "help", "V", "version"}


def _admin_group(values: list[str]) -> bool:
    return any(set(v.split(",")) & _ADMIN_GROUPS for v in values)


def _account(cmd: Cmd, _w: _Walker) -> Iterator[Hit]:
    """useradd/usermod/userdel and the group tools."""
    opts, vals, _ = split_options(cmd.args, "bcdefgGkKlLpsuUZRP", ("groups", "gid", "home", "shell", "root", "prefix"))
    if opts & _INFO:
        return
    if cmd.name in {"usermod", "useradd", "adduser", "gpasswd"} and (
        _admin_group(vals) or _admin_group([a for a in cmd.args if not a.startswith("-")][-1:])
    ):
        yield Hit(Risk.DANGEROUS, "adds a user to an administrators' group (root access)")
    elif "o" in opts or any(v in {"0"} for v in vals):
        yield Hit(Risk.DANGEROUS, "gives an account uid or gid 0 (root)")
    else:
        yield Hit(Risk.HIGH, "creates, changes or deletes user accounts or groups")


def _passwd(cmd: Cmd, _w: _Walker) -> Iterator[Hit]:
    opts, _, i = split_options(cmd.args, "nxwiA", ("mindays", "maxdays", "warndays", "inactive", "root"))
    if opts & {"S", "status", "h", "help"}:
        return
    if opts & {"d", "delete", "u", "unlock", "l", "lock", "e", "expire"} or i < len(cmd.args):
        yield Hit(Risk.HIGH, "changes another account's password or locks, unlocks or empties it")
    else:
        yield Hit(Risk.MODERATE, "changes your password")


def _password_tools(cmd: Cmd, _w: _Walker) -> Iterator[Hit]:
    if cmd.name == "visudo" and {"-c", "--check", "-h", "--help", "-V", "--version"} & set(cmd.args):
        return
    yield Hit(Risk.HIGH, "edits account, password or sudoers databases")


def _shell_info(cmd: Cmd, _w: _Walker) -> Iterator[Hit]:
    if cmd.name == "chage" and {"-l", "--list"} & set(cmd.args):
        return
    yield Hit(Risk.MODERATE, "changes account details (shell, name, password ageing)")


register("useradd", "adduser", "usermod", "userdel", "deluser", "groupadd", "addgroup", "groupmod", "groupdel",
         "delgroup", "gpasswd", "newusers", family="users", check=_account,
         input_args=Hit(Risk.HIGH, "changes user accounts named by its input"),
         summary="creating, changing or deleting accounts and groups HIGH; adding to sudo/wheel/docker/… or uid 0 "
                 "DANGEROUS",
         benign={"useradd --help": Risk.SAFE},
         harmful={"userdel bob": Risk.HIGH, "usermod -aG sudo bob": Risk.DANGEROUS})
register("passwd", family="users", check=_passwd,
         summary="`passwd -d`/`-l`/`-u` or another user's password HIGH; your own MODERATE",
         benign={"passwd -S": Risk.SAFE, "passwd": Risk.MODERATE}, harmful={"passwd -d root": Risk.HIGH})
register("chpasswd", "visudo", "vipw", "vigr", "pwconv", "pwunconv", "grpconv", family="users", check=_password_tools,
         summary="editing password, group or sudoers databases HIGH (`visudo -c` checks only)",
         benign={"visudo -c": Risk.SAFE}, harmful={"chpasswd": Risk.HIGH})
register("chsh", "chfn", "chage", family="users", check=_shell_info,
         summary="changing a login shell, account details or password ageing MODERATE",
         benign={"chage -l bob": Risk.SAFE}, harmful={"chsh -s /bin/sh bob": Risk.MODERATE})
