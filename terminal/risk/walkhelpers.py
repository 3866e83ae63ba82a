"""Helpers of the walker that need no walker state: substitutions, fork bombs, expansions."""

from __future__ import annotations

import re


def _default_words(text: str) -> str:
    """The text with each `${NAME:-word}` (also `-`, `=`, `:=`, `+`, `:+`) replaced by its word:
    what runs when NAME is unset (or set, for `+`)."""
    return re.sub(r"\$\{[A-Za-z_]\w*:?[-=+]([^{}$`]*)\}", lambda m: m.group(1), text)


def _substitutions(text: str) -> list[tuple[int, str]] | None:
    """(offset, body) of each `$(...)`, `<(...)`, `>(...)` and backtick substitution in a word's
    text, outermost only; None when they are unbalanced. Single-quoted text is skipped."""
    found: list[tuple[int, str]] = []
    i, n, in_double = 0, len(text), False
    while i < n:
        ch = text[i]
        if ch == "\\":
            i += 2
        elif ch == "'" and not in_double:
            end = text.find("'", i + 1)
            i = n if end < 0 else end + 1
        elif ch == '"':
            in_double = not in_double
            i += 1
        elif text.startswith(("$(", "<(", ">("), i):
            depth, j = 1, i + 2
            while j < n and depth:
                c = text[j]
                if c == "\\":
                    j += 1
                elif c == "'":
                    end = text.find("'", j + 1)
                    j = n if end < 0 else end
                elif c == "(":
                    depth += 1
                elif c == ")":
                    depth -= 1
                j += 1
            if depth:
                return None
            found.append((i, text[i + 2 : j - 1]))
            i = j
        elif ch == "`":
            end = i + 1
            while end < n and text[end] != "`":
                end += 2 if text[end] == "\\" else 1
            if end >= n:
                return None
            found.append((i, text[i + 1 : end]))
            i = end + 1
        else:
            i += 1
    return found


def _self_calls_in_background(body, name: str) -> bool:
    """Does the function body call itself inside a pipeline or with `&`?"""
    stack = [(body, False)]
    while stack:
        n, risky = stack.pop()
        if n.kind == "command":
            first = next((p for p in n.parts if p.kind == "word"), None)
            if first is not None and first.word == name and risky:
                return True
            continue
        if n.kind == "pipeline":
            risky = True
        parts = list(getattr(n, "parts", []) or []) + list(getattr(n, "list", []) or [])
        background = any(p.kind == "operator" and p.op == "&" for p in parts)
        stack.extend((p, risky or background) for p in parts)
    return False


def _has_expansion(word) -> bool:
    if word is None:
        return False
    if isinstance(word, list):
        return any(_has_expansion(w) for w in word)
    return any(
        p.kind in {"parameter", "commandsubstitution", "processsubstitution"} for p in getattr(word, "parts", []) or []
    )
