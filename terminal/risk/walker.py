"""The walker: visits every simple command bash would run in a parsed line and asks the registry."""

from __future__ import annotations

import posixpath
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from terminal.risk.expand import _BRACE_LIMIT, _ELEMENT_ASSIGNMENT, _ansi_c_dequote, brace_expand
from terminal.risk.model import (
    BUDGET_SECONDS,
    MAX_DEPTH,
    MAX_NODES,
    Cmd,
    CommandFact,
    Hit,
    Redirect,
    Risk,
    Unassessable,
)
from terminal.risk.parse import _parse
from terminal.risk.paths import _HOOK_BUILTINS, _HOOK_NAME, _NET_DEVICE, CWD, _short, norm_path
from terminal.risk.registry import _input_args_hits, has_tag, rules_for, wrapper_for
from terminal.risk.rules.common import glob_command, unknown_command
from terminal.risk.rules.expansions import INDIRECT, redirect_hits, word_hits
from terminal.risk.rules.files import write_target
from terminal.risk.rules.hookvars import arithmetic_hits, indirect_hits, rough_hits, subscript_hits
from terminal.risk.rules.hookvars import word_hits as hook_word_hits
from terminal.risk.rules.network import fetched_code, producer_name
from terminal.risk.rules.pipelines import pipeline_hits
from terminal.risk.rules.variables import _assignment_hits, _base_name, _element_hits, _variables_from_input
from terminal.risk.rules.wrappers import peel, replace_shell_hit
from terminal.risk.walkhelpers import _default_words, _has_expansion, _self_calls_in_background, _substitutions


@dataclass
class _Finding:
    risk: Risk
    part: str
    why: str


class _Walker:
    """Walks bashlex trees, collecting findings, the commands seen and their facts."""

    def __init__(self) -> None:
        self.findings: list[_Finding] = []
        self.commands: list[str] = []
        self.facts: list[CommandFact] = []
        self.depth = 0
        self.source = ""
        self.quoted_heredocs: set[str] = set()
        self.nodes = 0
        self.deadline = time.thread_time() + BUDGET_SECONDS
        self.functions: set[str] = set()  # defined on the line: their bodies are judged where defined
        self.variables: dict[str, str] = {}  # plain values assigned earlier on the line
        self.input_marker: str | None = None  # set while walking a string that xargs/parallel complete

    def spend(self, cost: int = 1) -> None:
        """Count work against the line's cost bound (see model.py)."""
        self.nodes += cost
        if self.nodes > MAX_NODES:
            raise Unassessable(f"more than {MAX_NODES} words and syntax nodes to walk")
        if (cost > 1 or self.nodes % 32 == 0) and time.thread_time() > self.deadline:
            raise Unassessable(f"took more than {BUDGET_SECONDS:g} s")

    def resolve(self, cmd: Cmd) -> Cmd:
        """The command as bash would find it: `..` in a program path normalised, a name relative to a
        known directory made absolute."""
        raw = cmd.argv[0] if cmd.argv else ""
        if "/" not in raw or "$" in raw or "`" in raw:
            return cmd
        path = norm_path(raw)[0]
        if path != raw:
            cmd = cmd.sub(0, text=cmd.text)
            cmd.argv[0] = path
        return cmd

    # ---- entry points

    def line(self, text: str) -> bool:
        """Assess a whole line; False when it could not be parsed."""
        return self.walk_text(text, top=True, quoted_heredocs=self.quoted_heredocs)

    def walk_text(self, text: str, *, top: bool, quoted_heredocs: set[str] | None = None) -> bool:
        self.spend(len(text.split()))  # parsing costs by the word: charge it before bashlex runs
        parsed = _parse(text, set() if quoted_heredocs is None else quoted_heredocs)
        if parsed is None:  # what the hook rules would find, from the raw text (fail closed)
            for hit in rough_hits(text):
                self.add(hit.risk, text, hit.why)
            return False
        trees, source = parsed
        saved, self.source = self.source, source
        try:
            for tree in trees:
                self.node(tree, top)
        finally:
            self.source = saved
        return True

    def run_string(self, text: str, word, cmd: Cmd, input_marker: str | None = None) -> Iterator[Hit]:
        """A string that a shell will parse and run (bash -c, eval, su -c, watch). `input_marker`:
        its commands get arguments from input at run time (see Cmd.input_args)."""
        alternative = _default_words(text)
        if alternative != text:  # `${X:-mkfs.ext4 /dev/sda}` runs the default when X is unset
            yield from self.run_string(alternative, None, cmd, input_marker)
        words = word if isinstance(word, list) else [word]
        names = set().union(*(self.substitution_names(x) for x in words))
        fetched = fetched_code(names)
        if fetched:
            yield fetched
            return
        if names or (_has_expansion(word) and re.fullmatch(r"\s*(\$\w+|\$\{[^}]*\}|\$[@*])\s*", text)):
            yield Hit(Risk.HIGH, "runs a command string built at run time, which cannot be assessed")
            return
        if self.depth >= MAX_DEPTH:
            yield Hit(Risk.HIGH, "commands nested too deeply to assess")
            return
        self.depth += 1
        saved, self.input_marker = self.input_marker, input_marker if input_marker is not None else self.input_marker
        try:
            parsed = self.walk_text(text, top=False)
        finally:
            self.depth -= 1
            self.input_marker = saved
        if not parsed:
            yield Hit(Risk.HIGH, "runs a command string that cannot be parsed")

    def run_argv(self, argv: list[str], parent: Cmd) -> Iterator[Hit]:
        """A command given as words (find -exec); findings are recorded directly."""
        yield from self.run_cmd(Cmd(argv=list(argv), text=" ".join(argv), top=False))

    def run_cmd(self, cmd: Cmd) -> Iterator[Hit]:
        if self.depth >= MAX_DEPTH:
            yield Hit(Risk.HIGH, "commands nested too deeply to assess")
            return
        self.depth += 1
        try:
            self.simple(cmd)
        finally:
            self.depth -= 1

    # ---- tree walking

    def node(self, n, top: bool = True) -> None:
        self.spend()
        kind = n.kind
        if kind == "command":
            self.command_node(n, top)
        elif kind == "pipeline":
            self.pipeline(n, top)
        elif kind in {"list", "if", "for", "while", "until"}:
            if kind == "for":
                self.loop_variable(n, top)
            for part in n.parts:
                self.node(part, top)
        elif kind == "compound":
            if self.text_of(n).startswith("(("):  # bashlex reads `(( … ))` as two subshells
                for hit in arithmetic_hits(self.text_of(n), self.variables):
                    self.add(hit.risk, self.text_of(n), hit.why)
            for part in n.list:
                self.node(part, top)
            for r in getattr(n, "redirects", []) or []:
                self.redirect(r, None, self.text_of(n))
        elif kind == "function":
            self.function(n, top)
        elif kind in {"word", "assignment"}:
            for part in getattr(n, "parts", []) or []:
                self.node(part, top)
            hits = [*word_hits(self.text_of(n)), *hook_word_hits(self.text_of(n))]
            if INDIRECT in hits:
                hits.extend(indirect_hits(self.text_of(n), self.variables))
            for hit in hits:
                self.add(hit.risk, self.text_of(n), hit.why)
            self.parameter_substitutions(n, top)
            self.parameter_assignments(n, top)
        elif kind in {"commandsubstitution", "processsubstitution"}:
            self.node(n.command, top)

    def loop_variable(self, n, top: bool) -> None:
        """`for NAME in WORDS` (and `select`) assigns NAME each word in turn; without `in`, the
        positional parameters."""
        parts = n.parts
        if len(parts) < 2 or parts[1].kind != "word":
            return
        name, text = parts[1].word, self.text_of(n).split("\n", 1)[0]
        context = Cmd(argv=[], text=text, top=top)
        if len(parts) < 3 or getattr(parts[2], "word", "") != "in":
            self.record(_variables_from_input([name]), text, name)
            return
        for part in parts[3:]:
            if part.kind != "word":
                break
            value = self.word_value(part)
            if _HOOK_NAME.match(name):
                self.add(Risk.DANGEROUS, text, "assigns a variable of the terminal's command hook")
                return
            self.record(_assignment_hits(name, value, part, context, self), text, name)

    def parameter_assignments(self, word, top: bool) -> None:
        """`${NAME:=word}` and `${NAME=word}` assign NAME when it is empty or unset."""
        for part in getattr(word, "parts", []) or []:
            m = part.kind == "parameter" and re.match(r"^([A-Za-z_]\w*)(\[[^\]]*\])?:?=(.*)$", part.value, re.S)
            if not m:
                continue
            name, value, text = m.group(1), _ansi_c_dequote(m.group(3)), self.text_of(word)
            if _HOOK_NAME.match(name):
                self.add(Risk.DANGEROUS, text, "assigns a variable of the terminal's command hook")
            elif not m.group(2):
                self.record(_assignment_hits(name, value, None, Cmd(argv=[], text=text, top=top), self), text, name)

    def parameter_substitutions(self, word, top: bool) -> None:
        """bashlex keeps `$(...)` and backticks inside `${x:-...}`, `${x/a/...}`, `${a[...]}` as
        plain text; bash runs them. Find and walk them (those bashlex did see are skipped)."""
        params = [p for p in getattr(word, "parts", []) or [] if p.kind == "parameter"]
        if not any("$(" in p.value or "`" in p.value or "<(" in p.value or ">(" in p.value for p in params):
            return
        seen = {p.pos[0] for p in word.parts if p.kind in {"commandsubstitution", "processsubstitution"}}
        text = self.text_of(word)
        found = _substitutions(text)
        if found is None:
            self.add(Risk.HIGH, text, "parameter expansion with substitutions that cannot be parsed")
            return
        for offset, body in found:
            if word.pos[0] + offset in seen:
                continue
            if self.depth >= MAX_DEPTH:
                self.add(Risk.HIGH, text, "commands nested too deeply to assess")
                return
            self.depth += 1
            try:
                if not self.walk_text(body, top=top):
                    self.add(Risk.HIGH, text, "parameter expansion with substitutions that cannot be parsed")
            finally:
                self.depth -= 1

    def text_of(self, n) -> str:
        return self.source[n.pos[0] : n.pos[1]]

    def command_node(self, n, top: bool, stdin: str | None = None) -> Cmd | None:
        words, argv = [], []
        redirects = []
        assigned: dict[str, str] = {}
        for part in n.parts:
            if part.kind == "assignment":
                name = part.word.split("=", 1)[0].split("[", 1)[0].rstrip("+")
                if _HOOK_NAME.match(name):
                    self.add(Risk.DANGEROUS, part.word, "assigns a variable of the terminal's command hook")
                else:
                    for hit in subscript_hits(self.word_value(part)):
                        self.add(hit.risk, part.word, hit.why)
                    value = self.word_value(part).partition("=")[2]
                    assigned[name] = value if "[" not in part.word.split("=", 1)[0] else "$"
                    context = Cmd(argv=[], text=part.word, top=top)
                    self.record(_assignment_hits(name, value, part, context, self), part.word, name)
                self.node(part, top)
            elif part.kind == "word" and not words and _ELEMENT_ASSIGNMENT.match(part.word):
                # `NAME[KEY]=value`: bashlex takes it for a command word; bash assigns an element
                name, _, value = part.word.partition("=")
                context = Cmd(argv=[], text=part.word, top=top)
                self.record(_element_hits(_base_name(name), value, part, context, self), part.word, name)
                self.record(subscript_hits(self.word_value(part)), part.word, name)
                self.node(part, top)
            elif part.kind == "word":
                expanded = brace_expand(self.text_of(part)) if "{" in part.word else None
                if expanded is None:
                    words.append(part)
                    argv.append(self.word_value(part))
                else:  # `{mkfs.ext4,/dev/sda}` is two words to bash
                    if len(expanded) > _BRACE_LIMIT:
                        self.add(Risk.HIGH, self.text_of(part), "brace expansion too large to assess")
                        expanded = expanded[:_BRACE_LIMIT]
                    expanded = [x for x in expanded if x]  # bash drops empty words: `{,exec} <f` is `exec <f`
                    words.extend([part] * len(expanded))
                    argv.extend(_ansi_c_dequote(x) for x in expanded)
                self.node(part, top)
            elif part.kind == "redirect":
                redirects.append(part)
        if not words:
            self.remember(assigned)
            for r in redirects:
                self.redirect(r, None, self.text_of(n))
            return None
        cmd = Cmd(argv=argv, text=self.source[words[0].pos[0] : n.pos[1]], words=words, stdin=stdin, top=top,
                  redirects=tuple(self.redirection(r) for r in redirects))
        for r in redirects:
            self.redirect(r, cmd, cmd.text)
        self.simple(cmd)
        return cmd

    def word_value(self, w) -> str:
        raw = self.source[w.pos[0] : w.pos[1]]
        # bashlex mangles ANSI-C quoting, and keeps the quotes of `"NAME"='value'`: dequote ourselves
        if "$'" in raw or (("'" in raw or '"' in raw) and "$(" not in raw and "`" not in raw):
            return _ansi_c_dequote(raw)
        value = getattr(w, "word", "") or ""
        if self.variables and "$" in value and "'" not in raw:
            value = _VARIABLE.sub(lambda m: self.variables.get(m.group(1) or m.group(2), m.group(0)), value)
        return value

    def remember(self, assigned: dict[str, str]) -> None:
        """`x=/dev/sda` on its own: later `$x` on the line is that text (when it is plain text)."""
        for name, value in assigned.items():
            if "$" in value or "`" in value:
                self.variables.pop(name, None)
            else:
                self.variables[name] = value

    def change_directory(self, path: str | None) -> None:
        """`cd DIR`: later relative paths on the line are under DIR (None: no longer known). A
        folder relative to the home or to an unknown cwd is kept as written (`~/.ssh`, `.ssh`):
        `cd .ssh; echo k >> authorized_keys` still writes under `.ssh`."""
        current = CWD.get()
        home = path is not None and _HOME_PREFIX.match(path)
        if path is None or "`" in path or path == "-" or ("$" in path and not home):
            CWD.set(None)
        elif path.startswith("/"):
            CWD.set(posixpath.normpath(path))
        elif home:
            CWD.set(path.rstrip("/") or path)
        elif not path.startswith("~"):  # `~user`: someone else's home, not known
            CWD.set(posixpath.normpath(posixpath.join(current or "", path)))
        else:
            CWD.set(None)

    def redirection(self, r) -> Redirect:
        fd = r.input if isinstance(r.input, int) else (0 if r.type.startswith("<") else 1)
        out = r.output
        target = self.word_value(out) if getattr(out, "kind", None) == "word" else str(out)
        return Redirect(fd, r.type, "" if r.type in {"<<", "<<-"} else target)

    def redirect(self, r, cmd: Cmd | None, part: str) -> None:
        out = r.output
        if hasattr(out, "kind") and out.kind == "word":
            self.node(out)
            target = self.word_value(out)
        else:
            return
        rtype = r.type
        for hit in redirect_hits(rtype, self.text_of(out), target, _has_expansion(out)):
            self.add(hit.risk, part, hit.why)
        if rtype in {">", ">>", ">|", "&>", "&>>", "<>", ">&"}:
            path = norm_path(target)[0]
            for hit in write_target(path, "redirects output"):
                self.add(hit.risk, part, hit.why)
        if _NET_DEVICE.match(target):
            if cmd is not None and has_tag(cmd.name, "shell"):
                self.add(Risk.DANGEROUS, part, "connects a shell to the network (reverse shell)")
            else:
                self.add(Risk.HIGH, part, "opens a network connection through /dev/tcp or /dev/udp")
        if cmd is None:
            return
        if rtype == "<":
            cmd.stdin, cmd.stdin_path = "file", target
            if _NET_DEVICE.match(target):
                cmd.stdin = "pipe"
        elif rtype == "<<<":
            cmd.stdin, cmd.stdin_text = "here", target
        elif rtype in {"<<", "<<-"} and getattr(r, "heredoc", None) is not None:
            body = r.heredoc.value.rsplit("\n", 1)[0] if "\n" in r.heredoc.value else ""
            cmd.stdin, cmd.stdin_text = "here", body
            if target not in self.quoted_heredocs and ("$" in body or "`" in body):
                self.heredoc_substitutions(body, part)

    def heredoc_substitutions(self, body: str, part: str) -> None:
        """An unquoted heredoc expands $(...), backticks, ${...}, $name and $((...)): walked as a
        double-quoted word."""
        quoted = '"' + _HEREDOC_QUOTING.sub(lambda m: _HEREDOC_AS_DOUBLE.get(m.group(0), m.group(0)), body) + '"'
        if not self.walk_text("echo " + quoted, top=True):
            self.add(Risk.HIGH, part, "here-document with substitutions that cannot be parsed")

    def function(self, n, top: bool) -> None:
        name = next((p.word for p in n.parts if p.kind == "word"), "")
        body = next((p for p in n.parts if p.kind == "compound"), None)
        text = self.text_of(n)
        if body is None:
            return
        self.functions.add(name)
        if _HOOK_NAME.match(name) or name in _HOOK_BUILTINS:
            self.add(Risk.DANGEROUS, text, f"redefines {name}, which the terminal's command hook relies on")
        if _self_calls_in_background(body, name):
            self.add(Risk.DANGEROUS, text, "fork bomb: a function that pipes or backgrounds itself")
        self.node(body, top)  # the body runs when the function is called: judge it now

    def pipeline(self, n, top: bool) -> None:
        cmds: list[Cmd] = []
        position = 0
        for part in n.parts:
            if part.kind == "command":
                cmd = self.command_node(part, top, stdin="pipe" if position else None)
                if cmd is not None:
                    cmds.append(self.effective(cmd))
                position += 1
            elif part.kind not in {"pipe", "reservedword"}:
                self.node(part, top)
                position += 1
        for k, cmd in enumerate(cmds[1:], 1):
            upstream = cmds[:k]
            for hit in pipeline_hits(cmd, upstream, self):
                self.add(hit.risk, self.text_of(n), hit.why)
                if hit.trait:  # let the policy see e.g. `cat x.sh | bash` as running a script
                    self.facts.append(CommandFact(self.text_of(n), cmd.name, hit.risk, frozenset({hit.trait})))

    # ---- simple commands

    @staticmethod
    def effective(cmd: Cmd) -> Cmd:
        """Peel wrappers off: `sudo env X=1 nice rm -rf /` -> `rm -rf /`."""
        for _ in range(16):
            spec = wrapper_for(cmd.name)
            start = spec.start(cmd.argv) if spec else None
            if start is None:
                return cmd
            cmd = peel(cmd, start, spec)
        return cmd

    def simple(self, cmd: Cmd) -> None:
        self.spend()
        hits: list[tuple[Hit, str]] = []  # each with the text of the command it is about
        marker = self.input_marker
        if marker is not None and not cmd.input_args and (not marker or any(marker in a for a in cmd.argv)):
            cmd.input_args, cmd.input_marker = True, marker
        cmd = self.resolve(cmd)
        inner = cmd
        replaces_shell = False
        for _ in range(16):
            spec = wrapper_for(inner.name)
            if spec is None:
                break
            hits.extend((h, inner.text) for h in spec.check(inner, self))
            start = spec.start(inner.argv)
            if start is None:
                if spec.alone is not None:
                    hits.extend((h, inner.text) for h in spec.alone(inner, self))
                break
            replaces_shell |= "replaces_shell" in spec.tags
            inner = self.resolve(peel(inner, start, spec))
        name = inner.name
        wrapped = wrapper_for(name) is not None
        if replaces_shell and cmd.top and self.depth == 0 and not wrapped:
            hits.append((replace_shell_hit(name), cmd.text))
        if inner.argv and not wrapped:
            specs = rules_for(name)
            hits.extend((h, inner.text) for h in self.rule_hits(inner, specs))
            if inner.input_args:
                hits.extend((h, inner.text) for h in _input_args_hits(inner, specs))
        for hit, text in hits:
            if hit.risk > Risk.SAFE:
                self.add(hit.risk, text, hit.why)
        self.commands.append(cmd.text)
        risk = max((h.risk for h, _ in hits), default=Risk.SAFE)
        traits = frozenset(h.trait for h, _ in hits if h.trait)
        self.facts.append(CommandFact(text=cmd.text, name=name, risk=risk, traits=traits))

    def rule_hits(self, cmd: Cmd, specs: list) -> list[Hit]:
        first = cmd.words[0] if cmd.words else None
        if first is not None and not _has_expansion(first) and _is_pattern(cmd.argv[0]) and not _quoted(
            self.text_of(first)
        ):
            return list(glob_command(cmd, self))
        resolved = not re.search(r"[$`]", cmd.argv[0])  # every variable in the name was set on the line
        if first is not None and _has_expansion(first) and "$'" not in self.text_of(first) and not resolved:
            if self.substitution_names(first):
                return [Hit(Risk.HIGH, "the command name is computed by a command substitution")]
            alternative = _default_words(cmd.text)
            defaults = list(self.run_string(alternative, None, cmd)) if alternative != cmd.text else []
            return [Hit(Risk.HIGH, "the command name is computed at run time, so it cannot be judged"), *defaults]
        if _HOOK_FUNCTION.match(cmd.name):  # its requests carry the secret: forged, from the shell
            return [Hit(Risk.DANGEROUS, "calls the terminal command hook's own functions")]
        if not specs and cmd.name not in self.functions:
            return list(unknown_command(cmd))
        return [hit for spec in specs for hit in spec.check(cmd, self)]

    def substitution_names(self, word) -> set[str]:
        """Command names (wrappers peeled, decoders recognised) inside a word's $(...)/<(...)."""
        names: set[str] = set()
        if word is None:
            return names
        stack = list(getattr(word, "parts", []) or [])
        while stack:
            n = stack.pop()
            if n.kind == "command":
                words = [p for p in n.parts if p.kind == "word"]
                if words:
                    cmd = self.effective(Cmd(argv=[getattr(w, "word", "") for w in words], text=""))
                    names.add(producer_name(cmd))
            for attr in ("parts", "list"):
                stack.extend(getattr(n, attr, []) or [])
            if getattr(n, "command", None) is not None:
                stack.append(n.command)
        return names

    def add(self, risk: Risk, part: str, why: str) -> None:
        self.findings.append(_Finding(risk, _short(part), why))

    def record(self, hits: Iterable[Hit], part: str, name: str) -> None:
        """Hits about something that is not a command (an assignment), with their traits."""
        hits = list(hits)
        for hit in hits:
            if hit.risk > Risk.SAFE:
                self.add(hit.risk, part, hit.why)
        traits = frozenset(h.trait for h in hits if h.trait)
        if traits:
            risk = max(h.risk for h in hits)
            self.facts.append(CommandFact(text=part, name=name, risk=risk, traits=traits))


# A here-document's body quotes as a double-quoted word does, except that `"` is plain text and so
# is a backslash before it (`\"` stays two characters): `\"'${!x}'\"` must not close the quotes.
_HEREDOC_QUOTING = re.compile(r'\\[$`\\\n]|\\|"')
_HEREDOC_AS_DOUBLE = {"\\": "\\\\", '"': '\\"'}
_HOME_PREFIX = re.compile(r"^(~|\$HOME|\$\{HOME\})(/[^$`]*)?$")
_VARIABLE = re.compile(r"\$(?:([A-Za-z_]\w*)|\{([A-Za-z_]\w*)\})")
_HOOK_FUNCTION = re.compile(r"(__autobot_|__AUTOBOT_)")
_PATTERN = re.compile(r"[*?]|\[.*\]")  # a `[` matches only with a `]` after it: `[` alone is test


def _is_pattern(word: str) -> bool:
    return bool(_PATTERN.search(word))


def _quoted(text: str) -> bool:
    return any(q in text for q in "'\"\\")
