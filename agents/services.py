"""Agents: every state change and side effect (registry, message log, feed, the bus runtime)."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import unicodedata
import uuid
import weakref
from dataclasses import dataclass, field
from datetime import UTC, datetime

from channels.layers import get_channel_layer
from django.conf import settings
from django.db import IntegrityError
from django.utils import timezone

from agents import registry
from agents.builtin import builtin_start
from agents.bus import (
    AgentEndpoint,
    AgentError,
    AgentUnavailable,
    Bus,
    BusConfig,
    BusError,
    DeliveryFailed,
    RequestTimeout,
)
from agents.envelope import Delivery
from agents.models import Agent, AgentMessage
from agents.protocol import (
    NAME_PATTERN,
    REPLAYED_DETAIL,
    Message,
    MessageType,
    ProtocolError,
    parse_message,
    payload_size,
)
from agents.seen import seen_close
from autobot import audit, layerwatch
from autobot.errors import (
    REDIS_FAULTS,
    BadRequest,
    Conflict,
    Forbidden,
    InvalidInput,
    LimitExceeded,
    NotFound,
    Timeout,
    Unavailable,
)
from autobot.http import API_PREFIX, json_loads
from autobot.lanes import spawn
from autobot.supervise import cancel_and_wait

log = logging.getLogger("agents")

FEED_GROUP = "agents.feed"
FEED_STAFF_GROUP = "agents.feed.staff"
API_TYPES = (MessageType.REQUEST, MessageType.NOTIFICATION, MessageType.BROADCAST)


def feed_user_group(user_id: int) -> str:
    return f"agents.feed.user.{user_id}"


def agent_sockets_group(agent_id: str) -> str:
    """Every open socket of an external agent, registered or not (to close them all)."""
    return f"agents.sockets.{agent_id}"


# --- the per-process bus runtime ---------------------------------------------------------


@dataclass
class Runtime:
    bus: Bus
    endpoints: list[AgentEndpoint] = field(default_factory=list)
    tasks: list[asyncio.Task] = field(default_factory=list)
    ready: asyncio.Task | None = None

    async def start(self) -> None:
        await self.bus.start()
        self.endpoints = await builtin_start(self.bus, list(settings.AGENTS_BUILTINS))
        self.tasks.append(spawn(self._maintain(), name="agents-maintenance"))

    async def _maintain(self) -> None:
        """Keep this process's built-ins fresh and mark agents whose heartbeats stopped offline."""
        while True:
            await asyncio.sleep(settings.AGENTS_HEARTBEAT_SECONDS)
            try:
                for endpoint in self.endpoints:
                    await self.bus.directory.refresh(endpoint.agent_id)
                await agents_sweep()
                await self.bus.directory.forget_claims()
            except Exception:
                log.exception("agents: maintenance failed")

    async def stop(self) -> None:
        await cancel_and_wait(self.tasks)
        for endpoint in self.endpoints:
            await endpoint.stop()
        await self.bus.close()


_runtimes: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Runtime] = weakref.WeakKeyDictionary()


def bus_config() -> BusConfig:
    return BusConfig(
        request_timeout=settings.AGENTS_REQUEST_TIMEOUT,
        retry_attempts=settings.AGENTS_RETRY_ATTEMPTS,
        max_payload_bytes=settings.AGENTS_MAX_PAYLOAD_BYTES,
        max_skew_seconds=settings.AGENTS_CLOCK_SKEW_SECONDS,
        dedup_seconds=settings.AGENTS_REPLAY_WINDOW_SECONDS,
    )


async def get_bus() -> Bus:
    """This event loop's bus, started (with the built-in agents) on first use."""
    loop = asyncio.get_running_loop()
    runtime = _runtimes.get(loop)
    if runtime is None:
        bus = Bus(
            get_channel_layer(), settings.AGENTS_BUS_KEY, directory=registry.DbDirectory(),
            config=bus_config(), sender_id="server", on_unmatched=_late_answer,
        )
        runtime = _runtimes[loop] = Runtime(bus)
        runtime.ready = spawn(runtime.start(), name="agents-runtime-start")
    try:
        await asyncio.shield(runtime.ready)
    except Exception:
        _runtimes.pop(loop, None)
        raise
    return runtime.bus


async def bus_shutdown() -> None:
    """Stop this loop's bus and built-ins and close its replay-window client (tests; server shutdown)."""
    runtime = _runtimes.pop(asyncio.get_running_loop(), None)
    if runtime is not None:
        if runtime.ready:
            await asyncio.gather(runtime.ready, return_exceptions=True)
        await runtime.stop()
    await seen_close()


# --- feed --------------------------------------------------------------------------------


def agent_out(agent: Agent) -> dict:
    return {
        "id": agent.id, "name": agent.name or agent.id, "description": agent.description, "kind": agent.kind,
        "capabilities": list(agent.capabilities or []), "version": agent.version,
        "status": Agent.Status.ONLINE if registry.is_live(agent) else Agent.Status.OFFLINE,
        "last_heartbeat": agent.last_heartbeat, "in_flight": agent.in_flight,
        "owner": agent.owner.get_username() if agent.owner_id and agent.owner else None,
    }


def message_out(row: AgentMessage) -> dict:
    return {
        "id": row.pk, "message_id": row.message_id, "message_type": row.message_type,
        "priority": row.priority, "sender_id": row.sender_id, "recipient_id": row.recipient_id or None,
        "capability": row.capability or None, "correlation_id": row.correlation_id, "action": row.action,
        "size": row.size, "status": row.status, "latency_ms": row.latency_ms, "error": row.error,
        "created_at": row.created_at, "answered_at": row.answered_at,
    }


def jsonable(data: dict) -> dict:
    return json.loads(json.dumps(data, default=str))


async def _feed(groups: list[str], kind: str, item: dict) -> None:
    """The /agents/ page's live view. Best effort: with Redis away the change stands, and the
    pages' sockets are closed and load the list again when they reconnect (autobot/ws.py)."""
    layer = get_channel_layer()
    event = {"type": "agents.feed", "kind": kind, "item": jsonable(item)}
    try:
        for group in groups:
            await layer.group_send(group, event)
    except REDIS_FAULTS as exc:
        log.warning("agents: the live view missed a change (%r)", exc)
        layerwatch.suspect()


async def feed_agent(agent: Agent) -> None:
    if agent.owner_id:  # agent_out reads the owner: fetch it now, not lazily (sync) later
        agent = await Agent.objects.select_related("owner").aget(pk=agent.pk)
    await _feed([FEED_GROUP], "agent", agent_out(agent))


async def feed_message(row: AgentMessage) -> None:
    groups = [FEED_STAFF_GROUP] + ([feed_user_group(row.user_id)] if row.user_id else [])
    await _feed(groups, "message", message_out(row))


# --- registry ----------------------------------------------------------------------------


async def agent_list(*, user) -> list[dict]:
    await get_bus()  # the built-ins register themselves when this process's bus starts
    return [agent_out(a) async for a in Agent.objects.select_related("owner").order_by("id")]


async def agent_get(*, user, agent_id: str) -> dict:
    await get_bus()
    agent = await Agent.objects.select_related("owner").filter(pk=agent_id).afirst()
    if agent is None:
        raise NotFound(f"agent {agent_id} not found", code="agent_not_found")
    return agent_out(agent)


async def agent_card(*, user, agent_id: str, base_url: str = "") -> dict:
    """An A2A-style agent card: who it is, what it can do, how to reach it, how to authenticate."""
    agent = await agent_get(user=user, agent_id=agent_id)
    from agents.builtin import SPECS

    spec = SPECS.get(agent_id) if agent["kind"] == Agent.Kind.BUILTIN else None
    skills = [
        {"id": cap, "name": cap, "description": f"requests addressed to capability '{cap}'", "tags": [cap]}
        for cap in agent["capabilities"]
    ]
    if spec:
        skills += [
            {"id": action, "name": action, "description": f"action '{action}', data {shape}", "tags": ["action"]}
            for action, shape in spec.actions.items()
        ]
    return {
        "name": agent["name"], "description": agent["description"], "version": agent["version"] or "0",
        "url": f"{base_url}{API_PREFIX}agents/messages",
        "endpoint": {"rest": f"{base_url}{API_PREFIX}agents/messages", "recipient_id": agent_id},
        "provider": {"organization": "AutoBot"},
        "capabilities": {"streaming": False, "pushNotifications": False, "stateTransitionHistory": False},
        "authentication": {"schemes": ["bearer", "session"]},
        "defaultInputModes": ["application/json"], "defaultOutputModes": ["application/json"],
        "skills": skills, "status": agent["status"], "kind": agent["kind"],
    }


def _registration(data: dict) -> tuple[str, list[str], str]:
    name, version, caps = data.get("name", ""), data.get("version", ""), data.get("capabilities", [])
    if not isinstance(name, str) or len(name) > 200:
        raise InvalidInput("data.name must be a string of at most 200 characters", code="invalid_registration")
    if not isinstance(version, str) or len(version) > 64:
        raise InvalidInput("data.version must be a string of at most 64 characters", code="invalid_registration")
    if not isinstance(caps, list) or len(caps) > 32 or not all(
        isinstance(c, str) and re.match(NAME_PATTERN, c) for c in caps
    ):
        raise InvalidInput(
            "data.capabilities must be a list of at most 32 names (letters, digits, '-', '_', '.')",
            code="invalid_registration",
        )
    return name, list(dict.fromkeys(caps)), version


def agent_id_skeleton(agent_id: str) -> str:
    """What an id looks like to a reader: case, Unicode compatibility forms, the separators
    '-'/'_' and leading or trailing punctuation ignored ('Knowledge', 'knowledge.', 'ｋnowledge'
    all read as 'knowledge')."""
    folded = unicodedata.normalize("NFKC", agent_id).casefold().replace("_", "-")
    return folded.strip(".-")


async def agent_claimable(*, user, agent_id: str) -> Agent | None:
    """The agent row if ``user`` may speak for ``agent_id`` (None when it is new).

    A new id that reads like an existing agent's or a built-in's is refused: requests addressed
    by a person to 'knowledge' must not be answered by someone's 'Knowledge'."""
    if not re.fullmatch(NAME_PATTERN, agent_id or ""):
        raise InvalidInput("agent_id must be 1-64 letters, digits, '-', '_' or '.'", code="invalid_agent_id")
    agent = await Agent.objects.filter(pk=agent_id).afirst()
    if agent and (agent.kind == Agent.Kind.BUILTIN or agent.owner_id != user.pk):
        raise _taken(agent_id)
    if agent is None:
        from agents.builtin import SPECS

        skeleton = agent_id_skeleton(agent_id)
        stored = [i async for i in Agent.objects.values_list("id", flat=True)]
        if agent_id in stored:  # another connection made it since the read above: judged as it stands now
            return await agent_claimable(user=user, agent_id=agent_id)
        if alike := next((i for i in [*SPECS, *stored] if agent_id_skeleton(i) == skeleton), None):
            raise Forbidden(f"agent id {agent_id} is too like the existing agent {alike}; choose another",
                            code="agent_id_lookalike")
    return agent


async def agent_serves(*, agent_id: str, sender: str | None) -> bool:
    """May a capability-addressed message from ``sender`` reach this agent? (see registry.serves_sender)"""
    user_id = await registry.sender_user_id(sender)
    return await Agent.objects.filter(pk=agent_id).filter(registry.serves_sender(user_id)).aexists()


async def agent_register(*, user, agent_id: str, data: dict, connection: str, ip: str | None = None):
    """Register (or re-register) an external agent; returns (agent, previous connection to evict)."""
    existing = await agent_claimable(user=user, agent_id=agent_id)
    name, capabilities, version = _registration(data)
    if existing is None and settings.AGENTS_REQUIRE_SIGNED:
        raise Forbidden(
            f"signed messages are required: create agent {agent_id} with a secret in the admin first",
            code="signature_required",
        )
    now = timezone.now()
    fields = {"name": name or agent_id, "capabilities": capabilities, "version": version,
              "status": Agent.Status.ONLINE, "last_heartbeat": now, "connection": connection, "in_flight": 0}
    agent = await _agent_create(user=user, agent_id=agent_id, fields=fields) if existing is None else None
    previous = ""
    if agent is None:
        if existing is None:  # another connection created it meanwhile: still ours only if it was this user's
            existing = await agent_claimable(user=user, agent_id=agent_id)
            if existing is None:
                raise _taken(agent_id)
        agent = await _agent_update(user=user, agent_id=agent_id, fields={**fields, "updated_at": now})
        previous = existing.connection if existing.connection != connection else ""
    await audit.record(actor=user, action="agents.register", target_type="agent", target_id=agent_id,
                       data={"capabilities": capabilities, "version": version}, ip=ip)
    await feed_agent(agent)
    return agent, previous


def _taken(agent_id: str) -> Forbidden:
    # Fatal: on a socket the error frame is followed by close 4403, as when it connects.
    return Forbidden(f"agent id {agent_id} belongs to someone else", code="agent_id_taken", fatal=True)


async def _agent_create(*, user, agent_id: str, fields: dict) -> Agent | None:
    """A new id is a plain insert, never an upsert: of two registrations of a new id at once
    (``agent_claimable`` let both through), the second insert fails on the primary key instead of
    silently taking the row over. None then."""
    try:
        return await Agent.objects.acreate(pk=agent_id, owner=user, kind=Agent.Kind.EXTERNAL, **fields)
    except IntegrityError:
        return None


async def _agent_update(*, user, agent_id: str, fields: dict) -> Agent:
    """An existing id is updated only while it is still this user's external agent (the row may
    have changed hands since ``agent_claimable`` read it)."""
    updated = await Agent.objects.filter(pk=agent_id, owner=user, kind=Agent.Kind.EXTERNAL).aupdate(**fields)
    if not updated:
        raise _taken(agent_id)
    return await Agent.objects.aget(pk=agent_id)


# What a socket checked when it connected: a change of any of these makes it connect again.
CREDENTIAL_FIELDS = ("secret", "owner", "kind")


async def agent_credentials_changed(agent: Agent) -> bool:
    """Whether the agent's row no longer has the credentials ``agent`` was read with (or is gone)."""
    now = await Agent.objects.filter(pk=agent.pk).values(*(_column(f) for f in CREDENTIAL_FIELDS)).afirst()
    return now is None or any(now[_column(f)] != getattr(agent, _column(f)) for f in CREDENTIAL_FIELDS)


def _column(field: str) -> str:
    return Agent._meta.get_field(field).attname  # owner -> owner_id


async def agent_sockets_close(*, agent_id: str) -> None:
    """Close every open socket of ``agent_id``: its secret, owner or kind changed (or the agent was
    deleted), and a socket keeps checking frames against the row it loaded when it connected, so
    an agent given a secret would go on sending unsigned frames until it reconnected. On its new
    connection it must sign (or is refused, if the id is no longer its user's).

    With Redis away the change stands (raising would fail the admin's save after its commit):
    the sockets read the row again once the layer's watch finds the outage over
    (``AgentConsumer.layer_restarted``)."""
    try:
        await get_channel_layer().group_send(agent_sockets_group(agent_id), {"type": "agents.reconnect"})
    except REDIS_FAULTS as exc:
        log.warning("agents: could not tell %s's sockets that its credentials changed (%r)", agent_id, exc)
        layerwatch.suspect()


async def agent_heartbeat(*, agent_id: str, connection: str) -> None:
    updated = await Agent.objects.filter(pk=agent_id, connection=connection).aupdate(
        status=Agent.Status.ONLINE, last_heartbeat=timezone.now()
    )
    if updated:  # the page's "last heartbeat" column and status dot follow live
        await feed_agent(await Agent.objects.aget(pk=agent_id))


async def agent_disconnect(*, agent_id: str, connection: str) -> bool:
    """Mark the agent offline unless a newer connection already speaks for it."""
    updated = await Agent.objects.filter(pk=agent_id, connection=connection).aupdate(
        status=Agent.Status.OFFLINE, connection="", in_flight=0
    )
    if updated:
        await feed_agent(await Agent.objects.aget(pk=agent_id))
    return bool(updated)


async def request_claim(*, agent_id: str, message_id: uuid.UUID, answer: Delivery | None = None) -> bool:
    """Take a request for ``agent_id`` before it is handed to the agent; False when another agent,
    process or connection already took it (a retry or a redelivery): then it must be dropped.

    ``answer``: the request's delivery, when it goes to an external agent's socket. Its reply
    channel is kept with the claim, so the agent's answer is taken from whichever of its
    connections sends it, on any worker (``request_answer``), until the asker's deadline — or,
    when nobody waits (``?wait`` off), for as long as the claim is kept (the replay window)."""
    if answer is None:
        return await registry.request_claim(agent_id, message_id)
    now = time.time()
    kept_until = now + settings.AGENTS_REPLAY_WINDOW_SECONDS  # forget_claims deletes it then
    answer_by = min(answer.deadline or kept_until, kept_until)
    return await registry.request_claim(agent_id, message_id, reply_to=answer.reply_to or "",
                                        answer_by=datetime.fromtimestamp(answer_by, UTC))


async def request_answer(*, agent_id: str, request_id: uuid.UUID) -> str | None:
    """Take the one answer a request handed to ``agent_id`` accepts: its asker's reply channel
    ('' when it has none), or None when no request of that id was handed to this agent, it was
    answered already (on any connection or worker) or its deadline passed."""
    return await registry.request_answer(agent_id, request_id)


async def agents_sweep() -> int:
    """Mark agents whose heartbeats stopped offline; returns how many."""
    stale = [
        a async for a in Agent.objects.filter(status=Agent.Status.ONLINE, last_heartbeat__lt=registry.stale_before())
    ]
    for agent in stale:
        await Agent.objects.filter(pk=agent.pk, last_heartbeat=agent.last_heartbeat).aupdate(
            status=Agent.Status.OFFLINE
        )
        agent.status = Agent.Status.OFFLINE
        await feed_agent(agent)
    return len(stale)


# --- messages ----------------------------------------------------------------------------


def protocol_error(exc: ProtocolError) -> Exception:
    if exc.code == "too_large":
        return LimitExceeded(exc.detail, code="too_large")
    return InvalidInput(exc.detail, code=exc.code)


def api_message(user, raw: bytes | str) -> Message:
    """A message posted to the API: the server fills message_id, sender_id and timestamp."""
    try:
        data = json_loads(raw or b"")
    except (ValueError, UnicodeDecodeError) as exc:  # too deep is refused before parsing
        raise BadRequest(f"malformed JSON: {exc}", code="invalid_json") from None
    if not isinstance(data, dict) or not isinstance(data.get("header"), dict):
        raise InvalidInput("the body must be a message object with header and payload", code="invalid_message")
    header = {k: v for k, v in data["header"].items() if k not in ("message_id", "sender_id", "timestamp")}
    header.update(message_id=str(uuid.uuid4()), sender_id=f"user:{user.get_username()}",
                  timestamp=datetime.now(UTC).isoformat())
    try:
        message = parse_message({**data, "header": header}, max_payload_bytes=settings.AGENTS_MAX_PAYLOAD_BYTES)
    except ProtocolError as exc:
        raise protocol_error(exc) from None
    if message.header.message_type not in API_TYPES:
        raise InvalidInput("message_type must be REQUEST, NOTIFICATION or BROADCAST here", code="invalid_message")
    return message


async def message_log(message: Message, *, user, status: str = AgentMessage.Status.DELIVERED,
                      error: str = "") -> AgentMessage:
    """Log a message entering the bus. A message id already in the log is a replay (``Conflict``
    ``replayed``): the log's unique id is the last word when a replay window missed it."""
    header = message.header
    try:
        row = await AgentMessage.objects.acreate(
            message_id=header.message_id, message_type=header.message_type.name, priority=int(header.priority),
            sender_id=header.sender_id, recipient_id=header.recipient_id or "", capability=header.capability or "",
            correlation_id=header.correlation_id, action=message.payload.action,
            size=payload_size(message.payload.model_dump(mode="json")), status=status, error=error[:500],
            user=user if user is not None and user.is_authenticated else None,
        )
    except IntegrityError:
        if not await AgentMessage.objects.filter(message_id=header.message_id).aexists():
            raise
        raise Conflict(REPLAYED_DETAIL, code="replayed") from None
    await feed_message(row)
    return row


async def message_settle(message_id, *, status: str, answer: Message | None = None, error: str = "",
                         recipient_id: str | None = None) -> None:
    row = await AgentMessage.objects.filter(message_id=message_id).afirst()
    if row is None:
        return
    now = timezone.now()
    row.status = status
    row.error = error[:500]
    if answer is not None:
        row.answered_at = now
        row.latency_ms = round((now - row.created_at).total_seconds() * 1000, 3)
        row.recipient_id = row.recipient_id or answer.header.sender_id
    if recipient_id and not row.recipient_id:
        row.recipient_id = recipient_id
    await row.asave(update_fields=["status", "error", "answered_at", "latency_ms", "recipient_id"])
    await feed_message(row)


async def _late_answer(answer: Message) -> None:
    """An answer to a request nobody waits for (sent without ?wait): record it in the log."""
    failed = answer.header.message_type is MessageType.ERROR
    await message_settle(
        answer.header.correlation_id,
        status=AgentMessage.Status.FAILED if failed else AgentMessage.Status.ANSWERED,
        answer=answer, error=str(answer.payload.data.get("detail", "")) if failed else "",
    )


def _bus_error(exc: BusError) -> Exception:
    if isinstance(exc, RequestTimeout):
        return Timeout(exc.detail, code="timeout")
    if isinstance(exc, DeliveryFailed):
        return Unavailable(exc.detail, code="channel_full")
    return Unavailable(exc.detail, code=exc.code)


async def message_send(*, user, message: Message, wait: bool = False, wait_seconds: float | None = None,
                       bus: Bus | None = None) -> dict:
    """Send a message for ``user``. A waited REQUEST returns the answer (``status`` answered or
    failed, ``message`` the RESPONSE/ERROR); otherwise ``status`` accepted and the message id."""
    bus = bus or await get_bus()
    await message_log(message, user=user)
    is_request = message.header.message_type is MessageType.REQUEST
    started = time.monotonic()
    try:
        if is_request and wait:
            limit = min(wait_seconds or settings.AGENTS_REQUEST_TIMEOUT, settings.AGENTS_MAX_TIMEOUT)
            answer = await bus.request_message(message, timeout=limit)
        else:
            await bus.send(message)
            return {"status": "accepted", "message_id": str(message.header.message_id)}
    except AgentError as exc:
        await message_settle(message.header.message_id, status=AgentMessage.Status.FAILED,
                             answer=exc.message, error=exc.detail)
        return {"status": "failed", "message": exc.message.to_wire()}
    except BusError as exc:
        status = AgentMessage.Status.TIMED_OUT if isinstance(exc, RequestTimeout) else AgentMessage.Status.REJECTED
        await message_settle(message.header.message_id, status=status, error=exc.detail)
        raise _bus_error(exc) from None
    await message_settle(message.header.message_id, status=AgentMessage.Status.ANSWERED, answer=answer)
    log.debug("agents: %s answered in %.1f ms", message.header.message_id, (time.monotonic() - started) * 1000)
    return {"status": "answered", "message": answer.to_wire()}


async def message_list(*, user, limit: int = 50, offset: int = 0, message_type: str | None = None,
                       status: str | None = None, action: str | None = None, agent: str | None = None,
                       correlation_id: uuid.UUID | None = None, after: int | None = None):
    """The log the user may see, newest first; with ``after`` (a row id) only the rows written
    after that one, oldest first, so a client pages forward by the last id it got (the agents
    page catching up after a reconnect). The id, not the time: ids are unique and given in the
    order rows are written, while two rows may share a ``created_at`` or, written by workers
    whose clocks differ, have them in another order. An id the user cannot see (or one since
    deleted) is a valid cursor: it says only where to start and reveals nothing."""
    from django.db.models import Q

    from autobot.pagination import paginate

    rows = AgentMessage.objects.all()
    if not user.is_staff:
        rows = rows.filter(user=user)
    if message_type:
        rows = rows.filter(message_type=message_type.upper())
    if status:
        rows = rows.filter(status=status)
    if action:
        rows = rows.filter(action=action)
    if agent:
        rows = rows.filter(Q(sender_id=agent) | Q(recipient_id=agent))
    if correlation_id:
        rows = rows.filter(correlation_id=correlation_id)
    if after is not None:
        rows = rows.filter(pk__gt=after).order_by("pk")
    items, count = await paginate(rows, limit=limit, offset=offset)
    return [message_out(r) for r in items], count


__all__ = [
    "AgentUnavailable", "agent_card", "agent_claimable", "agent_credentials_changed", "agent_disconnect",
    "agent_get", "agent_heartbeat", "agent_list", "agent_register", "agent_sockets_close", "agent_sockets_group",
    "agents_sweep", "api_message",
    "bus_shutdown", "get_bus", "message_list", "message_log", "message_send", "message_settle", "request_answer",
    "request_claim",
]
