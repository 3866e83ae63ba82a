"""Firewalls: iptables, nft, ufw."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from terminal.risk.model import Cmd, Hit, Risk
from terminal.risk.paths import _first_operand, split_options
from terminal.risk.registry import CONTROLS_UNSEEN, register

if TYPE_CHECKING:
    from terminal.risk.walker import _Walker


def _iptables(cmd: Cmd, _w: _Walker) -> Iterator[Hit]:
    args = cmd.args
    if cmd.name.endswith("-restore"):
        yield Hit(Risk.HIGH, "replaces the firewall rules")
        return
    for n, a in enumerate(args):
        if a in {"-P", "--policy"} and n + 2 < len(args) and args[n + 2].upper() in {"DROP", "REJECT"}:
            yield Hit(Risk.DANGEROUS, "sets a DROP firewall policy (can lock everyone out)")
            return
    opts, _, _ = split_options([a for a in args if a.startswith("-")])
    if opts & {"F", "flush", "X", "delete-chain", "P", "policy"}:
        yield Hit(Risk.HIGH, "flushes the firewall or changes its policy")
    elif opts & {"A", "I", "D", "R", "N", "E", "append", "insert", "delete", "replace"}:
        yield Hit(Risk.MODERATE, "changes the firewall rules")


def _nft(cmd: Cmd, _w: _Walker) -> Iterator[Hit]:
    words = [a for a in cmd.args if not a.startswith("-")]
    verb = words[0] if words else ""
    if verb in {"flush", "delete", "destroy"}:
        yield Hit(Risk.HIGH, "flushes or deletes firewall rules")
    elif verb in {"add", "insert", "replace", "create"} or "-f" in cmd.args:
        yield Hit(Risk.MODERATE, "changes the firewall rules")


def _ufw(cmd: Cmd, _w: _Walker) -> Iterator[Hit]:
    verb = _first_operand(cmd.args)
    if verb in {"disable", "reset"}:
        yield Hit(Risk.HIGH, f"firewall {verb}")
    elif verb and verb not in {"status", "show", "version", "app"}:
        yield Hit(Risk.MODERATE, "changes the firewall rules")


register("iptables", "ip6tables", "iptables-legacy", "iptables-nft", "iptables-restore", "ip6tables-restore",
         family="firewall", check=_iptables, input_args=CONTROLS_UNSEEN,
         summary="a DROP policy DANGEROUS; flush, delete chains, restore HIGH; other rule changes MODERATE",
         benign={"iptables -L": Risk.SAFE}, harmful={"iptables -F": Risk.HIGH,
                  "iptables -P INPUT DROP": Risk.DANGEROUS})
register("nft", family="firewall", check=_nft, input_args=CONTROLS_UNSEEN,
         summary="`nft flush`/`delete` HIGH; other changes MODERATE", benign={"nft list ruleset": Risk.SAFE},
         harmful={"nft flush ruleset": Risk.HIGH})
register("ufw", family="firewall", check=_ufw, input_args=CONTROLS_UNSEEN,
         summary="`ufw disable`/`reset` HIGH; other changes MODERATE", benign={"ufw status": Risk.SAFE},
         harmful={"ufw disable": Risk.HIGH})
