"""A live terminal session driven from a test: type lines, read what the user would see."""

from __future__ import annotations

import re

from terminal import services
from terminal.services import live as registry

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\r")


class ShellOutput:
    """Reads a shell's output (`self.sub`, a PTY subscription) up to a marker; what follows the
    marker stays in `self.seen` for the next read."""

    seen = ""
    sub = None

    async def until(self, needle: str) -> str:
        while needle not in self.seen:
            chunk = await self.sub.read()
            assert chunk is not None, f"shell exited waiting for {needle!r}: {self.seen[-800:]!r}"
            self.seen += chunk
        before, _, self.seen = self.seen.partition(needle)
        return before


class Term(ShellOutput):
    def __init__(self, session) -> None:
        self.session = session
        self.live = registry.get(session.pk)
        self.sub = self.live.proc.subscribe(replay=True)
        self.seen = ""

    @classmethod
    async def open(cls, user, **kw) -> Term:
        term = cls(await services.session_open(user=user, cols=1000, **kw))
        await term.until("@autobot:")
        return term

    def type(self, text: str) -> None:
        self.live.proc.write(text)

    async def run(self, line: str) -> str:
        """Type a line; return what it printed before the next prompt (terminal escapes and
        carriage returns removed). Sessions are opened wide so the echo never wraps."""
        self.type(f"{line}\r")
        await self.until(line)
        text = _ANSI.sub("", await self.until("@autobot:"))
        return text.rsplit("\n", 1)[0].removeprefix("\n")
