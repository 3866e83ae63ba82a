"""The in-memory channel layer `make run` uses (one process, no Redis), made cheap per message.

Channels' `InMemoryChannelLayer` walks every channel's queue and every group's members on each
`send`-to-group and each `receive` (`_clean_expired`), so a token streamed to one chat costs time
in proportion to all the sockets the process holds: with 1,000 idle sockets open, every token of
every answer walks 1,000 channels twice. Here the walk runs at most once every CLEAN_SECONDS. What
it removes (messages past their 60 s expiry, a channel that let one expire, group memberships
past a day) goes at most that much later; nothing else changes.
"""

import time

from channels.exceptions import ChannelFull
from channels.layers import InMemoryChannelLayer as ChannelsInMemoryChannelLayer

CLEAN_SECONDS = 1.0


class InMemoryChannelLayer(ChannelsInMemoryChannelLayer):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._next_clean = 0.0

    def _clean_expired(self):
        now = time.monotonic()
        if now < self._next_clean:
            return
        self._next_clean = now + CLEAN_SECONDS
        super()._clean_expired()

    async def send(self, channel, message):
        try:
            await super().send(channel, message)
        except ChannelFull:
            # Full, perhaps of messages past their expiry that the walk has not removed yet:
            # walk now, then try once more (a channel full of live messages is still full).
            super()._clean_expired()
            await super().send(channel, message)
