"""The kernel, mounts and boot: modules, sysctl, mount/umount, swap, boot loaders, volumes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from terminal.risk.model import Cmd, Hit, Risk
from terminal.risk.paths import split_options
from terminal.risk.registry import CONTROLS_UNSEEN, register

if TYPE_CHECKING:
    from terminal.risk.walker import _Walker


_INFO = {"h", "help", "V", "version"}


def _modules(cmd: Cmd, _w: _Walker) -> Iterator[Hit]:
    opts, _, i = split_options(cmd.args, "CdS", ("config", "dirname", "set-version"))
    if opts & (_INFO | {"n", "dry-run", "show-depends", "c", "showconfig", "D"}) or i >= len(cmd.args):
        return
    yield Hit(Risk.HIGH, "loads or unloads kernel modules")


def _sysctl(cmd: Cmd, _w: _Walker) -> Iterator[Hit]:
    opts, _, i = split_options(cmd.args)
    if opts & {"w", "write", "p", "load", "system"} or any("=" in a for a in cmd.args[i:]):
        yield Hit(Risk.HIGH, "changes kernel parameters")


def _mount(cmd: Cmd, _w: _Walker) -> Iterator[Hit]:
    opts, _, i = split_options(cmd.args, "tOoLUTNBX", ("types", "options", "label", "uuid", "target", "source"))
    if opts & _INFO or (cmd.name == "mount" and i >= len(cmd.args) and not opts & {"a", "all", "B", "bind", "M",
                                                                                  "move", "o", "options"}):
        return  # listing mounts
    yield Hit(Risk.HIGH, "mounts or unmounts file systems")


def _swap(cmd: Cmd, _w: _Walker) -> Iterator[Hit]:
    opts, _, i = split_options(cmd.args, "p", ("priority",))
    if opts & (_INFO | {"s", "summary", "show"}):
        return
    yield Hit(Risk.HIGH, "turns swap on or off")


def _boot(cmd: Cmd, _w: _Walker) -> Iterator[Hit]:
    opts, _, i = split_options(cmd.args)
    if opts & _INFO or (cmd.name == "efibootmgr" and not cmd.args):
        return
    yield Hit(Risk.DANGEROUS if cmd.name in {"kexec", "grub-install"} else Risk.HIGH,
              "changes how the machine boots")


_DESTROYS = {"erase", "luksErase", "luksFormat", "--zero-superblock"}


def _volumes(cmd: Cmd, _w: _Walker) -> Iterator[Hit]:
    if set(cmd.args) & {"-h", "--help", "--version"} or cmd.name.endswith(("s", "display", "scan")) and not any(
        a for a in cmd.args if not a.startswith("-")
    ):
        return
    if cmd.name.endswith("remove") or set(cmd.args) & _DESTROYS:
        yield Hit(Risk.DANGEROUS, "destroys volumes, arrays or encrypted containers")
    else:
        yield Hit(Risk.HIGH, "changes volumes, arrays, loop devices or encrypted containers")


def _security(cmd: Cmd, _w: _Walker) -> Iterator[Hit]:
    if cmd.name == "setenforce" or (cmd.name == "chattr" and any(a[:1] in "+-=" and "i" in a or "a" in a[1:]
                                                                 for a in cmd.args[:1])):
        yield Hit(Risk.HIGH, "changes the kernel's security settings or immutable file flags")
    elif cmd.name == "chattr":
        yield Hit(Risk.MODERATE, "changes file attributes")
    elif cmd.name in {"hostnamectl", "timedatectl", "localectl"} and any(a.startswith("set-") for a in cmd.args):
        yield Hit(Risk.HIGH, "changes the machine's identity, clock or locale")


register("modprobe", "insmod", "rmmod", "depmod", family="kernel", check=_modules, input_args=CONTROLS_UNSEEN,
         summary="loading or unloading kernel modules HIGH", benign={"modprobe --show-depends ext4": Risk.SAFE},
         harmful={"modprobe evil": Risk.HIGH})
register("sysctl", family="kernel", check=_sysctl, input_args=CONTROLS_UNSEEN,
         summary="`sysctl -w`, `-p`, `KEY=VALUE` HIGH; reading SAFE", benign={"sysctl -a": Risk.SAFE},
         harmful={"sysctl -w kernel.panic=1": Risk.HIGH})
register("mount", "umount", "fusermount", family="mounts", check=_mount, input_args=CONTROLS_UNSEEN,
         summary="mounting or unmounting HIGH; listing mounts SAFE", benign={"mount": Risk.SAFE},
         harmful={"mount /dev/sdb1 /mnt": Risk.HIGH})
register("swapon", "swapoff", family="mounts", check=_swap, summary="turning swap on or off HIGH",
         benign={"swapon --show": Risk.SAFE}, harmful={"swapoff -a": Risk.HIGH})
register("kexec", "grub-install", "update-grub", "grub-mkconfig", "grub2-mkconfig", "efibootmgr", "bootctl",
         "update-initramfs", "dracut", "mkinitcpio", family="boot", check=_boot, input_args=CONTROLS_UNSEEN,
         summary="boot loaders and initramfs HIGH; `kexec`, `grub-install` DANGEROUS; `efibootmgr` alone lists",
         benign={"efibootmgr": Risk.SAFE}, harmful={"update-grub": Risk.HIGH, "kexec -e": Risk.DANGEROUS})
register("lvremove", "vgremove", "pvremove", "lvcreate", "lvextend", "lvreduce", "lvresize", "vgcreate", "vgextend",
         "pvcreate", "lvs", "vgs", "pvs", "lvdisplay", "vgdisplay", "pvdisplay", "mdadm", "cryptsetup", "losetup",
         family="mounts", check=_volumes, input_args=CONTROLS_UNSEEN,
         summary="removing volumes, erasing arrays or LUKS headers DANGEROUS; other volume changes HIGH; listing SAFE",
         benign={"lvs": Risk.SAFE}, harmful={"lvcreate -L 1G vg": Risk.HIGH, "lvremove vg/data": Risk.DANGEROUS})
register("setenforce", "chattr", "hostnamectl", "timedatectl", "localectl", family="kernel", check=_security,
         summary="`setenforce`, `chattr +i` HIGH; `hostnamectl`/`timedatectl set-*` HIGH; other `chattr` MODERATE",
         benign={"hostnamectl": Risk.SAFE}, harmful={"setenforce 0": Risk.HIGH})
