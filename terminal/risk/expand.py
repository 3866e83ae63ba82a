"""Brace expansion and ANSI-C quoting, as bash does them (bashlex does not)."""

from __future__ import annotations

import codecs
import itertools
import re

_BRACE_LIMIT = 256


_ELEMENT_ASSIGNMENT = re.compile(r"^[A-Za-z_]\w*\[[^\]]*\]\+?=", re.S)


_SEQUENCE = re.compile(r"^(-?\d+|[A-Za-z])\.\.(-?\d+|[A-Za-z])(?:\.\.(-?\d+))?$")


def _past_backtick(text: str, i: int) -> int:
    """Index just past the backtick that closes the one at text[i] (escapes skipped)."""
    j = i + 1
    while j < len(text) and text[j] != "`":
        j += 2 if text[j] == "\\" else 1
    return j + 1


def _skip_quoted(text: str, i: int) -> int:
    """Index just past the quoted part, escape or `${...}`/`$(...)` starting at text[i], or i."""
    ch = text[i]
    if ch == "\\":
        return i + 2
    if ch == "'" or text.startswith("$'", i):
        start = i + (2 if ch == "$" else 1)
        j = start
        while j < len(text) and text[j] != "'":
            j += 2 if text[j] == "\\" and ch == "$" else 1
        return j + 1
    if ch == '"':
        j = i + 1
        while j < len(text) and text[j] != '"':
            j += 2 if text[j] == "\\" else 1
        return j + 1
    if text.startswith(("${", "$("), i):
        close = "}" if text[i + 1] == "{" else ")"
        depth, j = 1, i + 2
        while j < len(text) and depth:
            if text[j] in "\\'\"":
                j = _skip_quoted(text, j)
                continue
            depth += (text[j] == text[i + 1]) - (text[j] == close)
            j += 1
        return j
    return i


def _brace_group(text: str) -> tuple[int, int, list[str]] | None:
    """(start, end, alternatives) of the first brace expansion in a word's source text."""
    i = 0
    while i < len(text):
        skipped = _skip_quoted(text, i)
        if skipped != i:
            i = skipped
            continue
        if text[i] != "{":
            i += 1
            continue
        depth, j, commas = 1, i + 1, []
        while j < len(text) and depth:
            skipped = _skip_quoted(text, j)
            if skipped != j:
                j = skipped
                continue
            if text[j] == "{":
                depth += 1
            elif text[j] == "}":
                depth -= 1
            elif text[j] == "," and depth == 1:
                commas.append(j)
            j += 1
        if depth == 0:
            body = text[i + 1 : j - 1]
            if commas:
                cuts = [i, *commas, j - 1]
                return i, j, [text[a + 1 : b] for a, b in itertools.pairwise(cuts)]
            seq = _SEQUENCE.match(body)
            if seq:
                return i, j, _sequence(*seq.groups())
        i += 1
    return None


def _sequence(first: str, last: str, step: str | None) -> list[str]:
    inc = abs(int(step or 1)) or 1
    if first.lstrip("-").isdigit() and last.lstrip("-").isdigit():
        a, b = int(first), int(last)
        return [str(n) for n in range(a, b + (1 if b >= a else -1), inc if b >= a else -inc)][: _BRACE_LIMIT + 1]
    if first.isalpha() and last.isalpha():
        a, b = ord(first), ord(last)
        return [chr(n) for n in range(a, b + (1 if b >= a else -1), inc if b >= a else -inc)]
    return []


def brace_expand(text: str) -> list[str] | None:
    """bash's brace expansion of a word's source text (quotes kept, so quoted braces stay
    literal): `{mkfs.ext4,/dev/sda}` -> two words. None when the word has none."""
    group = _brace_group(text)
    if group is None:
        return None
    start, end, alternatives = group
    out: list[str] = []
    for alt in alternatives:
        for word in brace_expand(text[:start] + alt + text[end:]) or [text[:start] + alt + text[end:]]:
            out.append(word)
            if len(out) > _BRACE_LIMIT:
                return out
    return out


def _ansi_c_dequote(raw: str) -> str:
    """Quote removal for a word's source text, as bash does it (`$'\\x41'`, `'a'"b"`, `\\c`)."""
    out, i, in_double = [], 0, False
    while i < len(raw):
        ch = raw[i]
        if in_double:
            if ch == '"':
                in_double = False
            elif ch == "\\" and i + 1 < len(raw) and raw[i + 1] in '$`"\\\n':
                out.append(raw[i + 1])
                i += 1
            else:
                out.append(ch)
            i += 1
        elif raw.startswith("$'", i):
            end = i + 2
            while end < len(raw) and raw[end] != "'":
                end += 2 if raw[end] == "\\" else 1
            body = raw[i + 2 : end]
            try:
                out.append(codecs.decode(body.encode("latin-1", "backslashreplace"), "unicode_escape"))
            except (UnicodeDecodeError, ValueError):
                out.append(body)
            i = end + 1
        elif ch == "'":
            end = raw.find("'", i + 1)
            end = len(raw) if end < 0 else end
            out.append(raw[i + 1 : end])
            i = end + 1
        elif ch == '"':
            in_double = True
            i += 1
        elif ch == "\\" and i + 1 < len(raw):
            out.append(raw[i + 1])
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)
