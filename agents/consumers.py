"""WebSockets: external agents (``/ws/agents/?agent_id=<id>``) and the page's live feed.

The agent socket is a thin adapter: frames are parsed and checked here (the same protocol
module the bus uses), everything else goes through ``agents.services`` and the bus.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import uuid
from urllib.parse import parse_qs

from channels.exceptions import ChannelFull
from django.conf import settings
from django.db import Error as DatabaseFault

from agents import seen, services
from agents.bus import BROADCAST_GROUP, Inbox, agent_group, capability_group, inbox_channel
from agents.models import Agent
from agents.protocol import (
    NAME_PATTERN,
    REPLAYED_DETAIL,
    Header,
    Message,
    MessageType,
    Payload,
    ProtocolError,
    check_fresh,
    error_message,
    parse_message,
    verify_signature,
)
from autobot import layerwatch
from autobot.errors import (
    REDIS_FAULTS,
    AppError,
    Conflict,
    Forbidden,
    RateLimited,
    RedisUnavailable,
    Unauthorized,
    Unavailable,
)
from autobot.http import scope_ip
from autobot.supervise import cancel, supervised
from autobot.ws import JsonConsumer, leave_group

log = logging.getLogger("agents.consumers")

REGISTER_ACTION = "agent.register"


class TokenBucket:
    """``rate`` frames a second on average, bursts up to ``burst``."""

    def __init__(self, rate: float, burst: int):
        self.rate, self.burst = rate, burst
        self.tokens = float(burst)
        self.stamp = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class FrameError(AppError):
    """A refused frame, answered with an ERROR message correlated to it when its id was readable."""

    def __init__(self, code: str, detail: str, correlation_id=None):
        super().__init__(detail, code=code)
        self.correlation_id = correlation_id


class AgentConsumer(JsonConsumer):
    """One external agent. Its inbox (``agents.inbox.<id>``) is read by a task of this consumer.

    Frames are protocol messages, not ``{"type": …}`` objects: the base checks size, text and
    JSON, then ``receive_json`` parses the message; every error goes back as an ERROR message."""

    watches_layer = True  # its own group is joined again after a Redis restart (layer_restarted)

    @property
    def max_frame_bytes(self) -> int:
        return settings.AGENTS_MAX_PAYLOAD_BYTES + 16 * 1024  # the payload's own limit is `too_large`

    async def connect(self):
        self.user = self.scope["user"]
        self.agent_id = (parse_qs(self.scope.get("query_string", b"").decode()).get("agent_id") or [""])[0]
        self.agent: Agent | None = None
        self.registered = False
        self.tasks: set[asyncio.Task] = set()
        self.reader: asyncio.Task | None = None
        self.inbox_groups: list[str] = []
        self.bucket = TokenBucket(settings.AGENTS_RATE_LIMIT, settings.AGENTS_RATE_BURST)
        self.sockets_group = services.agent_sockets_group(self.agent_id) if _valid_id(self.agent_id) else None
        await self.accept()
        if self.sockets_group:  # joined before the row is read: a change after that read reaches us
            await self.channel_layer.group_add(self.sockets_group, self.channel_name)
        try:
            self.agent = await services.agent_claimable(user=self.user, agent_id=self.agent_id)
            self.bus = await services.get_bus()
        except AppError as exc:
            return await self.refuse(exc)
        self.inbox = Inbox(self.bus, self.agent_id)

    async def layer_restarted(self) -> None:
        """Its inbox's groups are joined again by the inbox reader; its own group (which carries a
        change of the agent's credentials, agents_reconnect) here. A change made while the group
        was lost reached nobody: the row is read again, and a change closes the socket as
        agents_reconnect would. If Redis does not answer, the agent reconnects; if the database
        does not, the socket cannot know whether its credentials still hold, so it closes as the
        other sockets do after a restart (``layer_restarted``, 1011) and the agent's reconnection
        is checked afresh."""
        if not self.sockets_group:
            return
        try:
            await self.channel_layer.group_add(self.sockets_group, self.channel_name)
        except REDIS_FAULTS:
            log.warning("agents: could not join %s again", self.sockets_group, exc_info=True)
            return await self.refuse(RedisUnavailable())
        if self.agent is None:
            return
        try:
            changed = await services.agent_credentials_changed(self.agent)
        except DatabaseFault:
            log.warning("agents: %s's row could not be read again after the layer restarted; closing its socket",
                        self.agent_id, exc_info=True)
            return await self.refuse(Unavailable(
                "the server's message layer restarted and this agent's credentials could not be checked "
                "again; reconnect", code="layer_restarted"))  # 1011
        if changed:
            await self.agents_reconnect({})

    async def refuse(self, exc: AppError) -> None:
        """Whatever closes the socket stops its inbox reader first: a request it took now would be
        sent to a socket that is closing and lost (a request runs at most once). The inbox keeps
        what comes meanwhile for the agent's next connection."""
        await self._stop_reading()
        await super().refuse(exc)

    async def disconnect(self, code):
        if getattr(self, "sockets_group", None):
            await leave_group(self.channel_layer, self.sockets_group, self.channel_name)
        for task in self.tasks:
            cancel(task)
        if self.reader:
            cancel(self.reader)  # insists: a cancel can be lost inside redis-py (autobot/supervise.py)
            await asyncio.wait({self.reader, *self.tasks}, timeout=1)
        if self.registered:
            try:
                still_ours = await services.agent_disconnect(agent_id=self.agent_id, connection=self.channel_name)
            except DatabaseFault:
                # Its groups are left as they are: they may be a newer connection's by now (an inbox
                # is one channel per agent). Missed heartbeats mark the agent offline (agents_sweep).
                log.warning("agents: could not record that %s left", self.agent_id, exc_info=True)
                return
            if still_ours:
                for group in self.inbox_groups:
                    await leave_group(self.channel_layer, group, inbox_channel(self.agent_id))

    # -- frames from the agent

    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        if self.closing:
            return
        if not self.bucket.take():  # every frame counts, even one refused unread
            raise RateLimited(f"more than {settings.AGENTS_RATE_LIMIT:g} messages a second; slow down")
        await super().receive(text_data, bytes_data)

    async def receive_json(self, raw, **kwargs):
        message = self.parse(raw)
        correlation = message.header.message_id
        try:
            await self.check(message, raw)
        except ProtocolError as exc:
            raise FrameError(exc.code, exc.detail, correlation) from None
        kind = message.header.message_type
        if _is_register(message):
            return await self.register(message)
        if not self.registered:
            raise FrameError("not_registered", f"send a NOTIFICATION '{REGISTER_ACTION}' first", correlation)
        if kind is MessageType.HEARTBEAT:
            return await services.agent_heartbeat(agent_id=self.agent_id, connection=self.channel_name)
        if kind in (MessageType.RESPONSE, MessageType.ERROR):
            return await self.answer(message)
        if kind is MessageType.REQUEST:
            return self.spawn(self.ask(message))
        await self.forward(message)

    def parse(self, raw: dict) -> Message:
        try:
            return parse_message(raw, max_payload_bytes=settings.AGENTS_MAX_PAYLOAD_BYTES)
        except ProtocolError as exc:
            raise FrameError(exc.code, exc.detail, _raw_id(raw)) from None

    async def check(self, message: Message, raw: dict) -> None:
        if message.header.sender_id != self.agent_id:
            raise ProtocolError(
                f"sender_id must be this connection's agent id '{self.agent_id}'", code="sender_mismatch"
            )
        secret = self.agent.secret if self.agent else ""
        if secret:
            verify_signature(raw, secret)
        elif settings.AGENTS_REQUIRE_SIGNED:
            raise ProtocolError("signed messages are required and this agent has no secret",
                                code="signature_required")
        check_fresh(message, max_skew_seconds=settings.AGENTS_CLOCK_SKEW_SECONDS)
        # Last, so only a genuine, fresh frame spends its id; shared by every connection and worker.
        # A signed registration is never logged, and a copy would take the agent's socket (and
        # read its requests): unchecked it is refused, not accepted.
        required = bool(secret) and _is_register(message)
        try:
            if await seen.seen_before(message_id=message.header.message_id, required=required):
                raise ProtocolError(REPLAYED_DETAIL, code="replayed", field="header.message_id")
        except seen.Unavailable:
            raise ProtocolError("the replay check is unavailable (its Redis does not answer), so a signed "
                                "registration cannot be accepted now; register again in a few seconds",
                                code="replay_check_unavailable") from None

    async def register(self, message: Message) -> None:
        self.agent, previous = await services.agent_register(
            user=self.user, agent_id=self.agent_id, data=message.payload.data,
            connection=self.channel_name, ip=scope_ip(self.scope),
        )
        handover = None
        if previous:
            # Newest connection wins. The old one must stop reading the inbox before this one
            # starts (one reader per inbox), so it confirms with agents.evicted.
            self.evicted = asyncio.Event()
            try:
                await self.channel_layer.send(previous, {"type": "agents.evict", "reply_to": self.channel_name})
                handover = self.evicted
            except ChannelFull:
                log.warning("agents: could not evict %s's old connection", self.agent_id)
        await self.join(self.agent.capabilities, handover)
        self.registered = True
        answer = Message(
            header=Header(message_type=MessageType.RESPONSE, sender_id="server", recipient_id=self.agent_id,
                          correlation_id=message.header.message_id),
            payload=Payload(action="agent.registered",
                            data={"agent_id": self.agent_id,
                                  "heartbeat_seconds": settings.AGENTS_HEARTBEAT_SECONDS}),
        )
        await self.send(text_data=answer.to_json())

    async def join(self, capabilities: list[str], handover: asyncio.Event | None = None) -> None:
        inbox = inbox_channel(self.agent_id)
        wanted = [agent_group(self.agent_id), BROADCAST_GROUP, *(capability_group(c) for c in capabilities)]
        for group in set(self.inbox_groups) - set(wanted):
            await self.channel_layer.group_discard(group, inbox)
        for group in wanted:
            await self.channel_layer.group_add(group, inbox)
        self.inbox_groups = wanted
        if self.reader is None:
            self.reader = asyncio.create_task(
                supervised(f"agent-{self.agent_id}-socket-inbox", self._inbox_reader(handover)),
                name=f"agent-{self.agent_id}-inbox")

    def _inbox_reader(self, handover: asyncio.Event | None):
        """The inbox reader's body for the supervisor: the first run waits for the hand-over,
        a restart (after a Redis error) re-joins the groups first, and so does a Redis restart
        the reads went through without an error."""

        async def join() -> None:
            for group in self.inbox_groups:
                await self.channel_layer.group_add(group, inbox_channel(self.agent_id))

        async def body() -> None:
            # Joined (again: the first run's groups were joined at registration) on every run,
            # and after a Redis restart that its reads did not notice.
            async with layerwatch.rejoining(join):
                await self.read_inbox(handover)

        return body

    async def answer(self, message: Message) -> None:
        """A RESPONSE/ERROR to a request handed to this agent on this connection or an earlier one,
        on this worker or another: the request's claim says where the answer goes (a connection's
        memory would be lost with it on a reconnect). Taken once, until the asker's deadline."""
        request_id = message.header.correlation_id
        reply_to = await services.request_answer(agent_id=self.agent_id, request_id=request_id)
        if reply_to is None:
            raise FrameError("unknown_correlation",
                             f"correlation_id {request_id} does not match a request sent to this agent that "
                             "still waits for an answer (it was not sent to this agent, was answered already, "
                             "or its asker's deadline passed)", message.header.message_id)
        await self.bus.reply(reply_to or None, self.inbox.answered(request_id, message))

    async def ask(self, message: Message) -> None:
        """A REQUEST from this agent to another: wait (with the bus's retries) and relay the answer."""
        try:
            result = await services.message_send(user=self.user, message=message, wait=True)
            await self.send(text_data=json.dumps(result["message"]))
        except AppError as exc:
            await self.send_error(FrameError(exc.code, exc.detail, message.header.message_id))

    async def forward(self, message: Message) -> None:
        if message.header.message_type not in (MessageType.NOTIFICATION, MessageType.BROADCAST):
            raise FrameError("invalid_message", "unexpected message type", message.header.message_id)
        try:
            await services.message_send(user=self.user, message=message)
        except AppError as exc:
            raise FrameError(exc.code, exc.detail, message.header.message_id) from None

    def spawn(self, coro) -> None:
        task = asyncio.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    # -- messages for the agent

    async def read_inbox(self, handover: asyncio.Event | None = None) -> None:
        channel = inbox_channel(self.agent_id)
        if handover is not None:
            try:  # a dead old connection never confirms: go ahead after a moment
                await asyncio.wait_for(handover.wait(), timeout=3)
            except TimeoutError:
                log.warning("agents: %s's old connection did not confirm eviction", self.agent_id)
        while True:
            event = await self.channel_layer.receive(channel)
            accepted = self.inbox.accept(event)
            if accepted is None:
                continue
            message, delivery = accepted
            reply_to = delivery.reply_to
            header = message.header
            if header.capability and not header.recipient_id and not await services.agent_serves(
                    agent_id=self.agent_id, sender=header.sender_id):
                continue  # a capability fan-out from a user this private agent does not serve
            if problem := self.inbox.expired(message):
                if message.header.message_type is MessageType.REQUEST:
                    await self.bus.reply(reply_to, message.error_reply(
                        sender_id=self.agent_id, code=problem.code, detail=problem.detail))
                continue
            if message.header.message_type is MessageType.REQUEST:
                # Claimed before the agent sees it: a retry or redelivery of this request that
                # reaches another agent (or this one on a new connection, whose duplicate filter
                # is fresh) is dropped there. Requests run at most once. The claim keeps where the
                # answer goes: the agent may send it after reconnecting (``answer``).
                if not await services.request_claim(agent_id=self.agent_id, message_id=header.message_id,
                                                    answer=delivery):
                    self.bus.stats.duplicates += 1
                    self.inbox.duplicate_seen.set()
                    continue
            await self.send(text_data=message.to_json())

    async def agents_evict(self, event):
        self.closing = True
        self.registered = False  # the new connection owns the registry row and the groups now
        await self._stop_reading()
        if event.get("reply_to"):
            try:
                await self.channel_layer.send(event["reply_to"], {"type": "agents.evicted"})
            except ChannelFull:
                pass
        await self.refuse(Conflict("another connection registered this agent id", code="replaced"))  # 4409

    async def agents_reconnect(self, event):
        """Staff changed this agent's secret, owner or kind, or deleted it: frames here are still
        checked against the row read at connect (an agent just given a secret could go on sending
        unsigned ones), so the agent must connect again. Its inbox is left for the new connection."""
        if self.closing:
            return
        await self.refuse(Unauthorized("this agent's secret, owner or kind changed: connect again",
                                       code="credentials_changed"))  # 4401

    async def _stop_reading(self) -> None:
        if self.reader:
            cancel(self.reader)
            await asyncio.wait({self.reader}, timeout=2)
            self.reader = None

    async def agents_evicted(self, event):
        if getattr(self, "evicted", None):
            self.evicted.set()

    async def send_error(self, exc: AppError) -> None:
        frame = error_message(sender_id="server", code=exc.code, detail=exc.detail,
                              correlation_id=getattr(exc, "correlation_id", None),
                              recipient_id=self.agent_id if _valid_id(self.agent_id) else None)
        await self.send(text_data=frame.to_json())


def _raw_id(raw) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(raw["header"]["message_id"]))
    except (KeyError, TypeError, ValueError):
        return None


def _valid_id(agent_id: str) -> bool:
    return bool(re.fullmatch(NAME_PATTERN, agent_id or ""))


async def _still_staff(user, scope) -> None:
    if not user.is_staff:
        raise Forbidden("the staff feed is for staff", code="forbidden")


class AgentFeedConsumer(JsonConsumer):
    """The /agents/ page's live view: registry changes for everyone, messages you may see."""

    max_frame_bytes = 4096  # clients send only {"type": "ping"}
    watches_layer = True  # after a Redis restart the page reconnects and is sent the list again

    async def connect(self):
        user = self.scope["user"]
        self.groups_joined = [
            services.FEED_GROUP,
            services.FEED_STAFF_GROUP if user.is_staff else services.feed_user_group(user.pk),
        ]
        if user.is_staff:  # the staff feed shows everyone's messages: only while staff (autobot.ws)
            self.requires = _still_staff
        for group in self.groups_joined:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()
        agents = await services.agent_list(user=user)
        await self.send_json({"type": "agents", "items": services.jsonable({"items": agents})["items"]})

    async def disconnect(self, code):
        for group in getattr(self, "groups_joined", []):
            await leave_group(self.channel_layer, group, self.channel_name)

    async def handle_ping(self, frame: dict) -> None:
        await self.send_json({"type": "pong"})

    async def agents_feed(self, event):
        await self.send_json({"type": event["kind"], "item": event["item"]})


def _is_register(message: Message) -> bool:
    return message.header.message_type is MessageType.NOTIFICATION and message.payload.action == REGISTER_ACTION
