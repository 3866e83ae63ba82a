"""The agent bus: protocol messages over any Channels layer (in-memory or Redis, same code).

Addressing
    * every agent has one *inbox*, the named channel ``agents.inbox.<id>``. Named (not
      process-local) on purpose: a built-in agent running in several server processes then
      has competing readers, so exactly one process takes each message; a message waiting for
      an external agent that briefly reconnects stays in Redis; and channels-redis checks a
      named channel's capacity on ``send`` (it buffers process-local channels in memory and
      drops the oldest silently);
    * the inbox joins ``agent.<id>``, ``agents.broadcast`` and ``agents.cap.<capability>``;
    * a requester receives answers on its own reply channel (``reply_to`` in the envelope).

Delivery guarantee (see docs/agents.md)
    Directed messages (requests, notifications, responses) are sent with ``layer.send`` to the
    inbox, so a full channel raises ``ChannelFull`` at once: it is counted, logged and — for a
    request — retried with backoff, on another agent when a capability was asked for.
    Fan-out (broadcast, capability notifications) uses ``group_send``, which drops silently on
    a full channel; each envelope carries a per-sender, per-group sequence number so a
    receiver that sees a gap counts and logs the loss. A request is retried only when it could
    not be delivered (no live agent, a full inbox) or its agent went offline, never because its
    agent is slow; and it runs at most once across all agents: receivers de-duplicate by message
    id, and with a shared directory (``claim``) the first receiver claims the id, so a retry or
    a redelivery reaching another agent, process or connection is dropped. Broadcasts are
    at-most-once, with losses surfaced.

Every envelope is signed with the server key (HMAC-SHA256 over the packed bytes, see
envelope.py); an envelope that fails verification — e.g. written into Redis by someone
else — is rejected.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import math
import random
import time
import uuid
from collections import OrderedDict, defaultdict, deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple

from channels.exceptions import ChannelFull
from prometheus_client import Counter

from agents.envelope import Delivery, Sealer, pack_message, pack_response
from agents.protocol import (
    DEFAULT_MAX_PAYLOAD_BYTES,
    DEFAULT_MAX_SKEW_SECONDS,
    Message,
    MessageType,
    Priority,
    ProtocolError,
    check_fresh,
    error_message,
    server_message,
)
from autobot import layerwatch, metrics  # metrics: the process's one Prometheus registry
from autobot.lanes import spawn
from autobot.supervise import cancel_and_wait, supervised

log = logging.getLogger("agents.bus")

BROADCAST_GROUP = "agents.broadcast"

SENT = Counter("autobot_agents_messages_sent", "Messages put on the agent bus.", ["type"],
               registry=metrics.registry)
DROPPED = Counter("autobot_agents_messages_dropped", "Agent messages lost to full channels.", ["reason"],
                  registry=metrics.registry)
REJECTED = Counter("autobot_agents_messages_rejected", "Agent envelopes or messages refused.", ["reason"],
                   registry=metrics.registry)
RETRIES = Counter("autobot_agents_request_retries", "Agent request attempts after the first.",
                  registry=metrics.registry)
# Resolving a labelled child costs a lock and a dict lookup: do it once per message type.
SENT_BY_TYPE = {t.name: SENT.labels(t.name) for t in MessageType}


def agent_group(agent_id: str) -> str:
    return f"agent.{agent_id}"


def capability_group(capability: str) -> str:
    return f"agents.cap.{capability}"


def inbox_channel(agent_id: str) -> str:
    return f"agents.inbox.{agent_id}"


# --- errors ------------------------------------------------------------------------------


class BusError(Exception):
    code = "bus_error"

    def __init__(self, detail: str, *, code: str | None = None):
        super().__init__(detail)
        self.detail = detail
        if code:
            self.code = code


class RequestTimeout(BusError):
    code = "timeout"


class AgentUnavailable(BusError):
    code = "agent_unavailable"


class DeliveryFailed(BusError):
    code = "channel_full"


class AgentError(BusError):
    """The agent answered with an ERROR message (kept as ``.message``)."""

    code = "agent_error"

    def __init__(self, message: Message):
        data = message.payload.data
        super().__init__(str(data.get("detail") or "agent error"), code=str(data.get("code") or ""))
        self.message = message


class HandlerError(Exception):
    """Raised by an in-process agent's handler to answer with an ERROR of this code."""

    def __init__(self, detail: str, *, code: str = "agent_error"):
        super().__init__(detail)
        self.detail = detail
        self.code = code


# --- configuration, stats, envelopes -----------------------------------------------------


class Answer(NamedTuple):
    """An answer kept for de-duplication: its type and ``pack_message`` bytes — one small
    immutable object per remembered request rather than a tree of models and dicts for the
    garbage collector to walk."""

    kind: str
    packed: bytes


@dataclass
class BusConfig:
    request_timeout: float = 10.0
    retry_attempts: int = 3
    backoff_base: float = 0.05
    backoff_max: float = 2.0
    max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES
    max_skew_seconds: float = DEFAULT_MAX_SKEW_SECONDS
    dedup_seconds: float = 600.0
    dedup_entries: int = 10_000
    backlog_limit: int = 1000


@dataclass
class BusStats:
    sent: int = 0
    channel_full: int = 0
    gaps: int = 0
    rejected: int = 0
    duplicates: int = 0
    unmatched: int = 0
    retries: int = 0


def seal(key: bytes, message: Message, *, reply_to: str | None, origin: str, via: str | None,
         seq: int | None) -> dict:
    """An envelope for the layer (see envelope.py): the packed message and its HMAC."""
    return Sealer(key).seal(message, reply_to=reply_to, origin=origin, via=via, seq=seq)


def unseal(key: bytes, event: dict) -> tuple[Message, Delivery]:
    """Verify a bus envelope and rebuild its message; ``ProtocolError`` when it is not ours."""
    return Sealer(key).open(event)


def backoff_delay(attempt: int, config: BusConfig) -> float:
    """Exponential backoff with "equal jitter": half fixed, half random, capped."""
    ceiling = min(config.backoff_max, config.backoff_base * (2**attempt))
    return ceiling / 2 + random.uniform(0, ceiling / 2)


class _Pending:
    """A request waiting for its answer. The answer slot outlives each attempt's wait, so an
    answer to an earlier attempt that arrives between attempts still completes the request."""

    __slots__ = ("answer", "tick", "timeouts", "waiter")

    def __init__(self, timeouts: _Timeouts) -> None:
        self.answer: Message | None = None
        self.waiter: asyncio.Future | None = None
        self.timeouts = timeouts
        self.tick = 0

    def settle(self, answer: Message) -> bool:
        if self.answer is not None:
            return False
        self.answer = answer
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)
        return True

    async def wait(self, timeout: float) -> bool:  # noqa: ASYNC109 - a shared deadline, no extra task
        """Wait up to ``timeout`` for the answer; True once it is there."""
        if (waiter := self.expect(timeout)) is not None:
            try:
                await waiter
            finally:
                self.stop_waiting()
        return self.answer is not None

    def expect(self, timeout: float) -> asyncio.Future | None:
        """A future that completes when the answer arrives or ``timeout`` passes (None when
        there is nothing to wait for); call ``stop_waiting`` after awaiting it.

        Plain methods rather than a coroutine so the request loop awaits the future itself:
        every coroutine level between a task and its future is crossed on each suspend and
        resume. One future, no timer of its own (see ``_Timeouts``): ``asyncio.wait`` would
        add a second future, callbacks and an extra trip through the event loop per attempt.
        """
        if self.answer is not None or timeout <= 0:
            return None
        self.waiter = waiter = asyncio.get_running_loop().create_future()
        self.tick = self.timeouts.add(waiter, timeout)
        return waiter

    def stop_waiting(self) -> None:
        self.timeouts.discard(self.tick, self.waiter)
        self.waiter = None

    def cancel(self) -> None:
        if self.waiter is not None:
            self.waiter.cancel()


class _Timeouts:
    """Wakes request waiters whose time is up, with one loop timer per ``TICK`` of deadlines
    rather than one per wait.

    Almost every wait ends with its answer long before its timeout, and a loop timer costs a
    handle, a heap push with Python-level comparisons and a cancellation each time — a visible
    share of a local round trip. Here a wait is a set insertion and removal. A deadline is
    rounded up to the next tick, so a timeout fires at most ``TICK`` late, never early.
    """

    TICK = 0.01

    def __init__(self) -> None:
        self._due: dict[int, set[asyncio.Future]] = {}

    def add(self, waiter: asyncio.Future, timeout: float) -> int:
        loop = waiter.get_loop()
        tick = math.ceil((loop.time() + timeout) / self.TICK)
        waiters = self._due.get(tick)
        if waiters is None:
            waiters = self._due[tick] = set()
            loop.call_at(tick * self.TICK, self._expire, tick)
        waiters.add(waiter)
        return tick

    def discard(self, tick: int, waiter: asyncio.Future | None) -> None:
        if (waiters := self._due.get(tick)) is not None:
            waiters.discard(waiter)

    def _expire(self, tick: int) -> None:
        for waiter in self._due.pop(tick, ()):
            if not waiter.done():
                waiter.set_result(None)


# --- discovery ---------------------------------------------------------------------------


@dataclass
class Route:
    agent_id: str
    channel: str | None  # None: deliver through the agent's group


@dataclass
class _LocalAgent:
    channel: str
    capabilities: frozenset[str]
    in_flight: int = 0
    picked: int = 0


class LocalDirectory:
    """Process-local registry used when no database registry is plugged in.

    Least in-flight wins; among equals the one picked longest ago (round robin).
    """

    def __init__(self) -> None:
        self.agents: dict[str, _LocalAgent] = {}
        self._tick = itertools.count(1)

    async def add(self, agent_id: str, channel: str, capabilities: Iterable[str]) -> None:
        self.agents[agent_id] = _LocalAgent(channel, frozenset(capabilities))

    async def remove(self, agent_id: str, channel: str | None = None) -> None:
        entry = self.agents.get(agent_id)
        if entry and (channel is None or entry.channel == channel):
            del self.agents[agent_id]

    async def resolve(
        self, *, recipient: str | None, capability: str | None, exclude: Iterable[str] = (),
        sender: str | None = None,
    ) -> Route | None:
        # Process-local agents have no owners: every one may serve every sender.
        if recipient:
            entry = self.agents.get(recipient)
            return Route(recipient, entry.channel) if entry else None
        excluded = set(exclude)
        candidates = [
            (entry.in_flight, entry.picked, agent_id)
            for agent_id, entry in self.agents.items()
            if capability in entry.capabilities and agent_id not in excluded
        ]
        if not candidates:
            return None
        _, _, agent_id = min(candidates)
        entry = self.agents[agent_id]
        entry.picked = next(self._tick)
        return Route(agent_id, entry.channel)

    async def dispatched(self, agent_id: str) -> None:
        if entry := self.agents.get(agent_id):
            entry.in_flight += 1

    async def settled(self, agent_id: str) -> None:
        if entry := self.agents.get(agent_id):
            entry.in_flight = max(0, entry.in_flight - 1)

    async def knows(self, agent_id: str) -> bool:
        return agent_id in self.agents

    async def is_live(self, agent_id: str) -> bool:
        return agent_id in self.agents


# --- the bus -----------------------------------------------------------------------------


class Bus:
    """One per process and event loop: sends, requests (with retry) and receives answers."""

    def __init__(
        self,
        layer: Any,
        key: str | bytes,
        *,
        directory: Any | None = None,
        config: BusConfig | None = None,
        sender_id: str = "bus",
        on_unmatched: Callable[[Message], Awaitable[None]] | None = None,
    ):
        self.layer = layer
        self.key = key.encode() if isinstance(key, str) else key
        self.sealer = Sealer(self.key)
        self.directory = directory or LocalDirectory()
        self.config = config or BusConfig()
        self.sender_id = sender_id
        self.on_unmatched = on_unmatched
        self.origin = uuid.uuid4().hex[:16]
        self.stats = BusStats()
        self.reply_channel: str | None = None
        self._pending: dict[uuid.UUID, _Pending] = {}
        self._timeouts = _Timeouts()
        self._seq: dict[str, int] = defaultdict(int)
        self._reader: asyncio.Task | None = None

    async def start(self) -> Bus:
        if self._reader is None:
            # A named (not process-local) channel: channels-redis buffers process-local
            # channels in memory and drops the oldest silently when that buffer is full,
            # whereas a named channel is capacity-checked on send (``ChannelFull``).
            self.reply_channel = f"agents.reply.{self.origin}"
            self._reader = spawn(supervised("agents-bus-replies", self._read_replies), name="agents-bus-replies")
        return self

    async def close(self) -> None:
        if self._reader:
            await cancel_and_wait([self._reader])
            self._reader = None
        for pending in self._pending.values():
            pending.cancel()
        self._pending.clear()

    # -- low-level delivery

    def seal(self, message: Message, *, reply_to: str | None = None, via: str | None = None,
             seq: int | None = None, recipient_id: str | None = None, deadline: float | None = None) -> dict:
        packed = pack_message(message, recipient_id=recipient_id)
        return self.sealer.seal(packed, reply_to=reply_to, origin=self.origin, via=via, seq=seq, deadline=deadline)

    def unseal(self, event: dict) -> tuple[Message, Delivery]:
        try:
            return self.sealer.open(event)
        except ProtocolError as exc:
            self.reject(exc.code, f"envelope refused: {exc.detail}")
            raise

    def reject(self, reason: str, text: str) -> None:
        self.stats.rejected += 1
        REJECTED.labels(reason).inc()
        log.warning("agents: %s", text)

    def note_channel_full(self, channel: str, message_type: str) -> None:
        self.stats.channel_full += 1
        DROPPED.labels("channel_full").inc()
        log.warning("agents: channel %s is full, %s not delivered", channel, message_type)

    def note_gap(self, missing: int, origin: str, via: str, receiver: str) -> None:
        self.stats.gaps += missing
        DROPPED.labels("group_overflow").inc(missing)
        log.warning(
            "agents: %d message(s) from %s via %s were dropped before reaching %s "
            "(channel over capacity)", missing, origin, via, receiver,
        )

    async def send_to_channel(self, channel: str, message: Message, *, reply_to: str | None = None,
                              recipient_id: str | None = None, deadline: float | None = None) -> None:
        """Direct send; ``ChannelFull`` is counted, logged and raised as ``DeliveryFailed``."""
        try:
            await self.layer.send(channel, self.seal(message, reply_to=reply_to, recipient_id=recipient_id,
                                                     deadline=deadline))
        except ChannelFull:
            self.note_channel_full(channel, message.header.message_type.name)
            raise DeliveryFailed(f"the inbox of {channel} is full") from None
        self._count(message)

    async def send_to_group(self, group: str, message: Message, *, reply_to: str | None = None,
                            recipient_id: str | None = None, deadline: float | None = None) -> None:
        self._seq[group] += 1
        event = self.seal(message, reply_to=reply_to, via=group, seq=self._seq[group], recipient_id=recipient_id,
                          deadline=deadline)
        await self.layer.group_send(group, event)
        self._count(message)

    def _count(self, message: Message) -> None:
        self.stats.sent += 1
        SENT_BY_TYPE[message.header.message_type.name].inc()

    async def deliver(self, route: Route, message: Message, *, reply_to: str | None = None,
                      deadline: float | None = None) -> None:
        """To the agent the bus picked (its id replaces a capability-only recipient). ``deadline``
        (seconds since the epoch): when the asker stops waiting for the answer."""
        if route.channel:
            await self.send_to_channel(route.channel, message, reply_to=reply_to, recipient_id=route.agent_id,
                                       deadline=deadline)
        else:
            await self.send_to_group(agent_group(route.agent_id), message, reply_to=reply_to,
                                     recipient_id=route.agent_id, deadline=deadline)

    async def reply(self, reply_to: str | None, answer: Message | Answer) -> None:
        """Send a RESPONSE/ERROR (or a remembered ``Answer``) back to a requester's reply channel."""
        if not reply_to:
            return
        if isinstance(answer, Message):
            answer = Answer(answer.header.message_type.name, pack_message(answer))
        try:
            await self.layer.send(reply_to, self.sealer.seal(answer.packed, reply_to=None, origin=self.origin))
        except ChannelFull:
            self.note_channel_full(reply_to, answer.kind)  # the requester times out and retries
            return
        self.stats.sent += 1
        SENT_BY_TYPE[answer.kind].inc()

    # -- messages

    def message(
        self,
        message_type: MessageType,
        action: str,
        data: dict | None = None,
        *,
        sender_id: str | None = None,
        recipient_id: str | None = None,
        capability: str | None = None,
        priority: Priority = Priority.NORMAL,
        ttl_seconds: int | None = None,
        context: dict | None = None,
    ) -> Message:
        return server_message(
            message_type, action, data, context=context, priority=priority,
            sender_id=sender_id or self.sender_id, recipient_id=recipient_id, capability=capability,
            ttl_seconds=ttl_seconds,
        )

    async def send(self, message: Message) -> Route | None:
        """Deliver without waiting: to the recipient, or fan out to a capability / everyone."""
        header = message.header
        if header.message_type is MessageType.BROADCAST or not (
            header.recipient_id or header.message_type is MessageType.REQUEST
        ):
            group = capability_group(header.capability) if header.capability else BROADCAST_GROUP
            await self.send_to_group(group, message)
            return None
        route = await self.directory.resolve(
            recipient=header.recipient_id, capability=header.capability, sender=header.sender_id
        )
        if route is None:
            target = header.recipient_id or f"capability {header.capability}"
            raise AgentUnavailable(f"no live agent for {target}")
        await self.deliver(route, message, reply_to=self.reply_channel)
        return route

    async def broadcast(self, action: str, data: dict | None = None, **fields: Any) -> Message:
        message = self.message(MessageType.BROADCAST, action, data, **fields)
        await self.send(message)
        return message

    async def notify(self, recipient: str, action: str, data: dict | None = None,
                     **fields: Any) -> Message:
        message = self.message(MessageType.NOTIFICATION, action, data, recipient_id=recipient,
                               **fields)
        await self.send(message)
        return message

    async def request(
        self,
        target: str,
        action: str,
        data: dict | None = None,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 - a deadline shared by all retries
        attempts: int | None = None,
        **fields: Any,
    ) -> Message:
        """Ask an agent (by id) or any agent with a capability (when no agent has that id)."""
        if await self.directory.knows(target):
            fields["recipient_id"] = target
        else:
            fields["capability"] = target
        message = self.message(MessageType.REQUEST, action, data, **fields)
        return await self._request(message, timeout, attempts)

    async def request_message(
        self,
        message: Message,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 - a deadline shared by all retries
        attempts: int | None = None,
    ) -> Message:
        """Deliver a REQUEST and wait for the RESPONSE matched by correlation id.

        Retries (same message id, so receivers de-duplicate) with exponential backoff and
        jitter when there is no live recipient, its inbox is full, or the agent it went to is
        no longer live; a live agent keeps the request until the deadline, however slow. For a
        capability, agents that failed are skipped on the next attempt. An ERROR answer
        raises ``AgentError``; running out of time raises ``RequestTimeout`` (or
        ``AgentUnavailable`` when no agent was ever reachable).
        """
        if message.header.message_type is not MessageType.REQUEST:
            raise ValueError("request_message needs a REQUEST")
        return await self._request(message, timeout, attempts)

    async def _request(self, message: Message, timeout: float | None,  # noqa: ASYNC109 - shared by retries
                       attempts: int | None) -> Message:
        """``request_message`` without the type check (``request`` made the REQUEST itself)."""
        if self._reader is None:
            await self.start()
        loop = asyncio.get_running_loop()
        timeout = timeout or self.config.request_timeout
        attempts = max(1, attempts or self.config.retry_attempts)
        deadline = loop.time() + timeout
        # The same moment on the wall clock, for the receiver: an agent may answer on another
        # connection or worker until then (see the consumer), never after.
        answer_by = time.time() + timeout
        header = message.header
        pending = self._pending[header.message_id] = _Pending(self._timeouts)
        by_capability = not header.recipient_id
        failed: list[str] = []
        reached = False
        try:
            # One coroutine for the whole loop: every level of awaiting costs on each resume.
            for attempt in range(attempts):
                if attempt:
                    self.stats.retries += 1
                    RETRIES.inc()
                route = await self.directory.resolve(
                    recipient=header.recipient_id, capability=header.capability,
                    exclude=failed if by_capability else (), sender=header.sender_id,
                )
                if route is None and by_capability and failed:
                    failed.clear()  # everyone failed once: try them again rather than give up
                    route = await self.directory.resolve(recipient=None, capability=header.capability,
                                                         sender=header.sender_id)
                if route is not None:
                    reached = True
                    await self.directory.dispatched(route.agent_id)
                    try:
                        if await self._deliver_request(route, message, answer_by):
                            # A delivered request stays with its agent while that agent is live:
                            # sending it elsewhere because it is slow would run it twice. Every
                            # share of what is left (so a retry still has time) the agent's
                            # liveness is checked; only an agent gone offline loses the request.
                            # The future is awaited here, not in a helper coroutine.
                            share = (deadline - loop.time()) / (attempts - attempt)
                            while True:
                                if (waiter := pending.expect(min(share, deadline - loop.time()))) is not None:
                                    try:
                                        await waiter
                                    finally:
                                        pending.stop_waiting()
                                if pending.answer is not None:
                                    return self._outcome(pending.answer)
                                if deadline <= loop.time() or not await self.directory.is_live(route.agent_id):
                                    break
                    finally:
                        await self.directory.settled(route.agent_id)
                    failed.append(route.agent_id)
                remaining = deadline - loop.time()
                if remaining <= 0 or attempt == attempts - 1:
                    break
                if await pending.wait(min(backoff_delay(attempt, self.config), remaining)):
                    return self._outcome(pending.answer)
            if pending.answer is not None:
                return self._outcome(pending.answer)
            target = header.recipient_id or f"capability '{header.capability}'"
            if not reached:
                raise AgentUnavailable(f"no live agent for {target}")
            raise RequestTimeout(f"no answer from {target} within {timeout:g}s")
        finally:
            self._pending.pop(header.message_id, None)

    async def _deliver_request(self, route: Route, message: Message, deadline: float) -> bool:
        """Send one attempt of a request; False when the inbox was full (counted and logged)."""
        try:
            if route.channel:  # what ``deliver`` does, without another coroutine level
                await self.send_to_channel(route.channel, message, reply_to=self.reply_channel,
                                           recipient_id=route.agent_id, deadline=deadline)
            else:
                await self.deliver(route, message, reply_to=self.reply_channel, deadline=deadline)
        except DeliveryFailed:
            return False
        return True

    def _outcome(self, answer: Message) -> Message:
        if answer.header.message_type is MessageType.ERROR:
            raise AgentError(answer)
        return answer

    async def _read_replies(self) -> None:
        while True:
            event = await self.layer.receive(self.reply_channel)
            try:
                message, _ = self.unseal(event)
            except ProtocolError:
                continue
            pending = self._pending.get(message.header.correlation_id)
            if pending is not None and pending.settle(message):
                continue
            self.stats.unmatched += 1
            if self.on_unmatched:
                try:
                    await self.on_unmatched(message)
                except Exception:
                    log.exception("agents: on_unmatched hook failed")


# --- receiving -------------------------------------------------------------------------


class Inbox:
    """What every receiver shares: verify, check freshness, de-duplicate, detect gaps.

    Used by in-process endpoints and by the external agents' WebSocket consumer alike.
    """

    def __init__(self, bus: Bus, agent_id: str):
        self.bus = bus
        self.agent_id = agent_id
        # message id (as an int) -> (first seen, answer kind, answer bytes), kinds None until
        # answered. Only ints, floats, strings and bytes in plain tuples: the garbage collector
        # stops tracking such tuples, so thousands of remembered ids cost it nothing (UUID
        # keys and ``Answer`` objects stayed tracked and made full collections ever longer).
        self._answers: OrderedDict[int, tuple[float, str | None, bytes | None]] = OrderedDict()
        self._last_seq: dict[tuple[str, str], int] = {}
        self.duplicate_seen = asyncio.Event()

    def accept(self, event: dict) -> tuple[Message, Delivery] | None:
        """The message and its delivery (reply channel, deadline), or None when it must be dropped."""
        try:
            message, delivery = self.bus.unseal(event)
        except ProtocolError:
            return None
        if delivery.seq is not None:
            self._track_sequence(delivery)
        if message.header.sender_id == self.agent_id and message.header.message_type is MessageType.BROADCAST:
            return None  # an agent's own broadcast comes back through the group: not for it
        reply_to = delivery.reply_to
        key = message.header.message_id.int
        if self._remember(key):
            return message, delivery
        self.bus.stats.duplicates += 1
        self.duplicate_seen.set()
        _, kind, packed = self._answers[key]
        if kind is not None and message.header.message_type is MessageType.REQUEST:
            # A retry of a request we already answered: the answer was probably lost.
            spawn(self.bus.reply(reply_to, Answer(kind, packed)), name="agents-reply-again")
        return None

    def expired(self, message: Message) -> ProtocolError | None:
        try:
            check_fresh(message, max_skew_seconds=self.bus.config.max_skew_seconds)
        except ProtocolError as exc:
            self.bus.reject(exc.code, f"{self.agent_id} dropped {message.header.message_id}: {exc}")
            return exc
        return None

    def answered(self, request_id: uuid.UUID | str, answer: Message | Answer) -> Answer:
        """Keep the answer so a retried request gets it again instead of being handled twice;
        returns it packed, ready for ``Bus.reply``."""
        kept = answer if isinstance(answer, Answer) else Answer(answer.header.message_type.name, pack_message(answer))
        key = (uuid.UUID(request_id) if isinstance(request_id, str) else request_id).int
        if (entry := self._answers.get(key)) is not None:
            self._answers[key] = (entry[0], kept.kind, kept.packed)
        return kept

    def _remember(self, key: int) -> bool:
        """Record a message id; False when it was already seen within the window."""
        answers, config = self._answers, self.bus.config
        now = time.monotonic()
        horizon = now - config.dedup_seconds
        while answers:  # ids age out, and the oldest go first when the window is full
            seen_at = answers[next(iter(answers))][0]
            if seen_at >= horizon and len(answers) < config.dedup_entries:
                break
            answers.popitem(last=False)
        if key in answers:
            return False
        answers[key] = (now, None, None)
        return True

    def _track_sequence(self, delivery: Delivery) -> None:
        seq, via, origin = delivery.seq, delivery.via, delivery.origin
        if via is None:
            return
        stream = (origin, via)
        last = self._last_seq.get(stream)
        if last is not None and seq > last + 1:
            self.bus.note_gap(seq - last - 1, origin, via, self.agent_id)
        if last is None or seq > last:
            self._last_seq[stream] = seq


Handler = Callable[[Message], Awaitable[dict | None]]


class Backlog:
    """A bounded priority queue between one reader and several workers: URGENT first,
    first-come among equals.

    A heap of plain tuples and one waiting future per idle side; ``asyncio.PriorityQueue``
    plus a ``Semaphore`` for the bound cost several times as much per message, which shows
    in every round trip. An item put while a worker waits goes straight to that worker (the
    heap is empty then, so nothing of higher priority is passed over).
    """

    def __init__(self, limit: int):
        self.limit = limit
        self._heap: list[tuple[int, int, Any]] = []
        self._order = itertools.count()
        self._idle: deque[asyncio.Future] = deque()  # workers waiting for an item
        self._room: asyncio.Future | None = None  # the reader waiting for space

    def __len__(self) -> int:
        return len(self._heap)

    async def wait_for_room(self) -> None:
        while len(self._heap) >= self.limit:
            self._room = asyncio.get_running_loop().create_future()
            try:
                await self._room
            finally:
                self._room = None

    def put(self, priority: int, item: Any) -> None:
        # Workers only wait while the heap is empty, so an idle worker means nothing is queued
        # ahead of this item: hand it over directly (no heap round trip). Under a backlog no
        # worker is idle and items queue by priority.
        while self._idle:
            waiter = self._idle.popleft()
            if not waiter.done():  # a cancelled worker leaves a done future behind
                waiter.set_result(item)
                return
        heapq.heappush(self._heap, (-priority, next(self._order), item))

    async def get(self) -> Any:
        if not self._heap:
            waiter = asyncio.get_running_loop().create_future()
            self._idle.append(waiter)
            return await waiter  # the item, from ``put``
        item = heapq.heappop(self._heap)[2]
        if self._room is not None and not self._room.done():
            self._room.set_result(None)
        return item


class AgentEndpoint:
    """An in-process agent: an inbox, a priority backlog and ``concurrency`` workers.

    The reader moves messages from the channel into a priority queue (URGENT first, first-come
    among equals); workers take from it. The backlog is bounded: when full the reader stops
    and the channel fills, so senders see ``ChannelFull`` (surfaced, not lost).
    """

    def __init__(
        self,
        bus: Bus,
        agent_id: str,
        handler: Handler,
        *,
        capabilities: Iterable[str] = (),
        concurrency: int = 1,
    ):
        self.bus = bus
        self.agent_id = agent_id
        self.handler = handler
        self.capabilities = tuple(capabilities)
        self.concurrency = concurrency
        self.channel: str | None = None
        self.inbox = Inbox(bus, agent_id)
        self.handled = 0
        # Bounded: the reader waits for room before reading the channel, so when the backlog
        # is full it stops draining the channel and senders see it fill up.
        self._backlog = Backlog(bus.config.backlog_limit)
        # Requests on an inbox read by several processes are claimed in a shared directory.
        self._claims = getattr(bus.directory, "claim", None) is not None
        self._changed = asyncio.Event()  # pulsed on every queue change, for wait_backlog/wait_handled
        self._tasks: list[asyncio.Task] = []

    @property
    def backlog(self) -> int:
        return len(self._backlog)

    async def start(self) -> AgentEndpoint:
        self.channel = inbox_channel(self.agent_id)
        groups = [agent_group(self.agent_id), BROADCAST_GROUP]
        groups += [capability_group(c) for c in self.capabilities]
        self._groups = groups
        await self._join()
        await self.bus.start()
        await self.bus.directory.add(self.agent_id, self.channel, self.capabilities)
        reader = supervised(f"agent-{self.agent_id}-inbox", self._read)
        self._tasks = [spawn(reader, name=f"agent-{self.agent_id}-read")]
        self._tasks += [
            spawn(self._work(), name=f"agent-{self.agent_id}-work")
            for _ in range(self.concurrency)
        ]
        return self

    async def stop(self) -> None:
        await cancel_and_wait(self._tasks)
        self._tasks = []
        await self.bus.directory.remove(self.agent_id, self.channel)

    async def wait_backlog(self, size: int) -> None:
        """Wait until at least ``size`` messages are queued (lets tests build a backlog)."""
        await self._wait_until(lambda: len(self._backlog) >= size)

    async def wait_handled(self, count: int) -> None:
        await self._wait_until(lambda: self.handled >= count)

    async def _wait_until(self, predicate) -> None:
        while not predicate():
            self._changed.clear()
            await self._changed.wait()

    async def _join(self) -> None:
        for group in self._groups:
            await self.bus.layer.group_add(group, self.channel)

    async def _read(self) -> None:
        # Joined again on every (re)start: after a Redis restart the groups are gone. A restart
        # that the reads went through without an error is found by the layer's watch.
        async with layerwatch.rejoining(self._join, self.bus.layer):
            while True:
                await self._backlog.wait_for_room()
                await self._read_one()

    async def _read_one(self) -> bool:
        event = await self.bus.layer.receive(self.channel)
        accepted = self.inbox.accept(event)
        if accepted is None:
            return False
        message, delivery = accepted
        reply_to = delivery.reply_to
        if (problem := self.inbox.expired(message)) is not None:
            await self._answer_error(message, reply_to, problem.code, problem.detail)
            return False
        if message.header.message_type is MessageType.REQUEST and self._claims and not await self._claim(message):
            return False
        self._backlog.put(message.header.priority, (message, reply_to))
        self._changed.set()
        return True

    async def _claim(self, message: Message) -> bool:
        """Requests on an inbox read by several processes are claimed in the shared directory
        (when it offers ``claim``) so a retry reaching another process is not handled twice."""
        claim = getattr(self.bus.directory, "claim", None)
        if claim is None or message.header.message_type is not MessageType.REQUEST:
            return True
        if await claim(self.agent_id, message.header.message_id):
            return True
        self.bus.stats.duplicates += 1
        self.inbox.duplicate_seen.set()
        return False

    async def _work(self) -> None:
        while True:
            message, reply_to = await self._backlog.get()
            self._changed.set()
            try:
                await self._handle(message, reply_to)
            finally:
                self.handled += 1
                self._changed.set()

    async def _handle(self, message: Message, reply_to: str | None) -> None:
        kind = message.header.message_type
        try:
            data = await self.handler(message)
        except HandlerError as exc:
            await self._answer_error(message, reply_to, exc.code, exc.detail)
            return
        except Exception:
            log.exception("agents: %s failed on %s", self.agent_id, message.payload.action)
            await self._answer_error(message, reply_to, "agent_failed", "the agent failed")
            return
        if kind is not MessageType.REQUEST:
            return
        if data is not None and not isinstance(data, dict):
            log.error("agents: %s answered %s with a %s, not a dict", self.agent_id,
                      message.payload.action, type(data).__name__)
            await self._answer_error(message, reply_to, "agent_failed", "the agent failed")
            return
        answer = Answer("RESPONSE", pack_response(message, sender_id=self.agent_id, data=data or {}))
        await self.bus.reply(reply_to, self.inbox.answered(message.header.message_id, answer))

    async def _answer_error(self, message: Message, reply_to: str | None, code: str,
                            detail: str) -> None:
        if message.header.message_type is not MessageType.REQUEST:
            return
        answer = error_message(
            sender_id=self.agent_id, code=code, detail=detail,
            correlation_id=message.header.message_id,
        )
        await self.bus.reply(reply_to, self.inbox.answered(message.header.message_id, answer))
