"""git: destructive verbs and configuration that names commands."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

from terminal.risk.model import Cmd, Hit, Risk
from terminal.risk.paths import operands, option_values, split_options
from terminal.risk.registry import RUNS_UNSEEN, register
from terminal.risk.rules.files import contents_target
from terminal.risk.rules.options import CommandOption

if TYPE_CHECKING:
    from terminal.risk.walker import _Walker


def _git(cmd: Cmd, w: _Walker) -> Iterator[Hit]:
    _, _, i = split_options(cmd.args, "Cc", ("git-dir", "work-tree", "namespace", "exec-path", "config-env"))
    verb, rest = (cmd.args[i], cmd.args[i + 1 :]) if i < len(cmd.args) else ("", [])
    yield from _git_commands(cmd, w, cmd.args[:i], verb, rest)
    if not verb:
        return
    if verb == "clone":
        yield from _clone(rest)
    if verb == "push" and (
        {"-f", "--force", "--mirror", "--force-if-includes"} & set(rest)
        or any(a.startswith("--force-with-lease") or (a.startswith("+") and len(a) > 1) for a in rest)
        or any(re.fullmatch(r"-[a-zA-Z]*f[a-zA-Z]*", a) for a in rest)
    ):
        yield Hit(Risk.HIGH, "force push (rewrites remote history)")
    elif verb == "reset" and "--hard" in rest:
        yield Hit(Risk.MODERATE, "discards uncommitted changes (git reset --hard)")
    elif verb == "clean" and ("force" in split_options(rest, "e")[0] or "f" in split_options(rest, "e")[0]):
        yield Hit(Risk.MODERATE, "deletes untracked files (git clean -f)")


# git clone's options that take a value (so a value is not read as the URL or the folder).
_CLONE_TAKES = "obucj"
_CLONE_LONG_TAKES = (
    "origin", "branch", "upload-pack", "config", "template", "reference", "reference-if-able", "depth", "jobs",
    "filter", "shallow-since", "shallow-exclude", "separate-git-dir", "bundle-uri", "ref-format", "server-option",
)


def _clone(rest: list[str]) -> Iterator[Hit]:
    """`git clone URL [DIR]`: the repository's files land in DIR (by default the URL's last part
    without `.git`), under names the line does not show."""
    words = operands(rest, _CLONE_TAKES, _CLONE_LONG_TAKES)
    if not words:
        return
    folder = words[1] if len(words) > 1 else _clone_folder(words[0])
    if folder:
        yield from contents_target(folder, "git clone writes a repository")


def _clone_folder(url: str) -> str:
    """The folder git names after the URL: `host:dots.git` -> `dots`, `https://x/y/.ssh` -> `.ssh`."""
    path = re.sub(r"(/\.git)?/*$", "", url)
    name = re.split(r"[/:]", path)[-1]
    return name[: -len(".git")] if name.endswith(".git") and len(name) > len(".git") else name


_GIT_COMMAND_KEY = re.compile(
    r"^(core\.(pager|sshcommand|editor|askpass|fsmonitor|gitproxy)|pager\..+|sequence\.editor|diff\.external"
    r"|diff\..+\.(command|textconv)|merge\..+\.driver|filter\..+\.(clean|smudge|process)|credential(\..+)?\.helper"
    r"|gpg(\..+)?\.program|uploadpack\.packobjectshook|(merge|diff)tool\..+\.cmd|man\..+\.cmd|web\.browser"
    r"|browser\..+\.cmd|remote\..+\.(uploadpack|receivepack)|sendemail\.(sendmailcmd|tocmd|cccmd)|alias\..+)$"
)


# Keys that point git at code elsewhere (hooks, other config files, the ext:: transport).
_GIT_CODE_KEY = re.compile(r"^(core\.hookspath|include\.path|includeif\..+\.path|protocol\..*allow)$")


# Subcommand options whose value is a command git runs.
_GIT_COMMAND_SUBOPTIONS: dict[str, CommandOption] = {
    "grep": CommandOption("O", ("open-files-in-pager",), attached_only=True),
    "difftool": CommandOption("x", ("extcmd",)),
    "rebase": CommandOption("x", ("exec",), takes="sSX"),
    "fetch": CommandOption("", ("upload-pack",)),
    "pull": CommandOption("", ("upload-pack",)),
    "clone": CommandOption("u", ("upload-pack",), takes="obc"),
    "ls-remote": CommandOption("", ("upload-pack",)),
    "push": CommandOption("", ("receive-pack", "exec"), takes="o"),
    "archive": CommandOption("", ("exec",), takes="o"),
    "send-email": CommandOption("", ("sendmail-cmd", "to-cmd", "cc-cmd", "header-cmd")),
    "filter-branch": CommandOption(
        "",
        ("setup", "env-filter", "tree-filter", "index-filter", "parent-filter", "msg-filter", "commit-filter"),
    ),
}


def _git_config_value(key: str, value: str, cmd: Cmd, w: _Walker) -> Iterator[Hit]:
    """A config value git will run as a command (now with -c, later with `git config`)."""
    key = key.lower()
    if _GIT_CODE_KEY.match(key):
        yield Hit(Risk.HIGH, f"git {key} points git at code that cannot be assessed")
    elif not _GIT_COMMAND_KEY.match(key) or not value.strip():
        return
    elif key.startswith("alias."):
        if value.startswith("!"):  # a shell alias; others are git subcommands
            yield from w.run_string(value[1:], None, cmd)
    elif key.endswith(".helper") and not value.startswith("!") and "/" not in value:
        return  # `store`, `cache --timeout=60`: git runs its own git-credential-<name>
    elif key == "core.gitproxy":
        yield from w.run_string(value.split(" for ")[0].lstrip("!"), None, cmd)
    else:
        yield from w.run_string(value.lstrip("!"), None, cmd)


def _git_commands(cmd: Cmd, w: _Walker, globals_: list[str], verb: str, rest: list[str]) -> Iterator[Hit]:
    """Config given with -c/--config-env and subcommands that run a command named on the line."""
    for setting in option_values(globals_, "c", takes="C"):
        key, _, value = setting.partition("=")
        yield from _git_config_value(key, value, cmd, w)
    for setting in option_values(globals_, "", ("config-env",)):
        key = setting.split("=", 1)[0].lower()
        if _GIT_COMMAND_KEY.match(key) or _GIT_CODE_KEY.match(key):
            yield Hit(Risk.HIGH, f"git {key} is taken from an environment variable, so it cannot be assessed")
    if option_values(globals_, "", ("exec-path",), attached_only=True):
        yield Hit(Risk.HIGH, "git --exec-path runs git subcommands from another directory")
    if verb in _GIT_COMMAND_SUBOPTIONS:
        spec = _GIT_COMMAND_SUBOPTIONS[verb]
        for value in option_values(rest, spec.short, spec.long, takes=spec.takes, attached_only=spec.attached_only):
            yield from w.run_string(value, None, cmd)
    elif verb == "config":
        _, _, i = split_options(rest, "f", ("file", "blob", "type", "default", "comment", "value"))
        operands = rest[i:]
        operands = operands[1:] if operands[:1] in (["set"], ["--add"]) else operands
        if len(operands) >= 2:
            yield from _git_config_value(operands[0], operands[1], cmd, w)
    elif verb == "bisect" and rest[:1] == ["run"] and len(rest) > 1:
        yield from w.run_argv(rest[1:], cmd)
    elif verb == "submodule" and "foreach" in rest:
        tail = [a for a in rest[rest.index("foreach") + 1 :] if a not in {"--recursive", "-q", "--quiet"}]
        if tail:
            yield from w.run_string(" ".join(tail), None, cmd)


register("git", family="git", check=_git, input_args=RUNS_UNSEEN,
         summary="force push HIGH; `reset --hard`, `clean -f` MODERATE; configuration that names "
                 "commands judged as them; a clone into a home, `.ssh` or a folder above start-up files "
                 "(`git clone URL ~/.ssh`, `~/.config`) HIGH",
         benign={"git status": Risk.SAFE, "git reset --hard": Risk.MODERATE,
                 "git clone https://example.com/app.git ~/src/app": Risk.SAFE},
         harmful={"git push --force": Risk.HIGH, "git clone https://example.com/k.git ~/.ssh": Risk.HIGH,
                  "git -c core.pager='rm -rf /' log": Risk.DANGEROUS})
