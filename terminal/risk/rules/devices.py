"""Disks and block devices: formatting, partitioning, dd."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from terminal.risk.model import Cmd, Hit, Risk
from terminal.risk.paths import _dynamic, is_device, norm_path, split_options
from terminal.risk.registry import register
from terminal.risk.rules.files import write_target

if TYPE_CHECKING:
    from terminal.risk.walker import _Walker


_DISK_LISTING = {
    "fdisk": {"l", "list"},
    "sfdisk": {"l", "list", "d", "dump", "s", "show-size"},
    "parted": {"l", "list"},
    "gdisk": {"l"},
    "sgdisk": {"p", "print"},
}


def _disk_tool(cmd: Cmd, _w: _Walker) -> Iterator[Hit]:
    opts, _, _ = split_options(cmd.args, "bcCEgHiLmNOoSTtUu")
    if opts & (_DISK_LISTING.get(cmd.name, set()) | {"V", "version", "h", "help"}):
        return  # listing partitions or printing a version
    if cmd.name == "wipefs" and not opts & {"a", "all", "o", "offset"}:
        return  # without -a wipefs only lists signatures
    if cmd.name == "parted" and cmd.args[-1:] == ["print"]:
        return
    operands = [a for a in cmd.args if not a.startswith("-")]
    if any(is_device(norm_path(a)[0]) for a in operands):
        yield Hit(Risk.DANGEROUS, "formats, partitions or wipes a block device")
    elif any(_dynamic(a) for a in operands):
        yield Hit(Risk.HIGH, "formats, partitions or wipes a target chosen at run time")
    elif operands:
        yield Hit(Risk.MODERATE, "formats or partitions an image file")


def _dd(cmd: Cmd, _w: _Walker) -> Iterator[Hit]:
    for a in cmd.args:
        if a.startswith("of=") and _dynamic(a):
            yield Hit(Risk.HIGH, "dd writes to a target chosen at run time")
        elif a.startswith("of="):
            yield from write_target(norm_path(a[3:])[0], "dd writes")


register("dd", family="devices", check=_dd,
         input_args=Hit(Risk.DANGEROUS, "dd with operands from its input can overwrite a device"),
         summary="`dd of=` a block device or account file DANGEROUS, a system file or a target chosen at run time HIGH",
         benign={"dd if=/dev/zero of=disk.img bs=1M count=1": Risk.SAFE},
         harmful={"dd if=x of=$(pick-disk)": Risk.HIGH, "dd if=x of=/dev/sda": Risk.DANGEROUS})
register("mkfs", "mke2fs", "mkswap", "fdisk", "sfdisk", "cfdisk", "gdisk", "sgdisk", "parted", "wipefs", "blkdiscard",
         "mkdosfs", "mkntfs", family="devices", check=_disk_tool,
         input_args=Hit(Risk.DANGEROUS, "formats, partitions or wipes a device named by its input"),
         summary="formatting, partitioning, wiping a device DANGEROUS; an image file MODERATE; listing SAFE",
         benign={"fdisk -l": Risk.SAFE, "mkfs.ext4 disk.img": Risk.MODERATE},
         harmful={"mkfs.ext4 /dev/sda1": Risk.DANGEROUS})
