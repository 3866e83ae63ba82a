"""A live terminal session driven from a test: type lines, read what the user would see."""

from __future__ import annotations

import itertools
import re

from terminal import services
from terminal.services import live as registry

_markers = itertools.count(1)
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\r")


class Term:
    def __init__(self, session) -> None:
        self.session = session
        self.live = registry.get(session.pk)
        self.sub = self.live.proc.subscribe(replay=True)
        self.seen = ""

    @classmethod
    async def open(cls, user, **kw) -> Term:
        term = cls(await services.session_open(user=user, **kw))
        await term.until("@autobot:")
        return term

    async def until(self, needle: str) -> str:
        while needle not in self.seen:
            chunk = await self.sub.read()
            assert chunk is not None, f"shell exited waiting for {needle!r}: {self.seen[-800:]!r}"
            self.seen += chunk
        before, _, self.seen = self.seen.partition(needle)
        return before

    def type(self, text: str) -> None:
        self.live.proc.write(text)

    async def run(self, line: str) -> str:
        """Type a line and a marker echo; return what was printed after the line, before the
        marker (terminal escapes and carriage returns removed)."""
        marker = f"MARK{next(_markers)}"
        self.type(f"{line}\r")
        self.type(f"echo {marker[:3]}''{marker[3:]}\r")
        text = _ANSI.sub("", await self.until(f"{marker}\r\n"))
        text = text.rsplit(f"echo {marker[:3]}''{marker[3:]}", 1)[0]  # drop the marker's echo
        return text.rsplit("\n", 1)[0]  # and its prompt
