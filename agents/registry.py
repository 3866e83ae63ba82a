"""The registry as the bus sees it: live agents, capabilities and in-flight work, in the
database so every server process shares one view (least in-flight, round robin among equals)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError
from django.db.models import F, Q
from django.utils import timezone

from agents.bus import Route, inbox_channel
from agents.models import Agent, MessageClaim


def stale_before():
    """Heartbeats older than this mean the agent is gone."""
    grace = settings.AGENTS_HEARTBEAT_SECONDS * settings.AGENTS_OFFLINE_AFTER_MISSED
    return timezone.now() - timedelta(seconds=grace)


def is_live(agent: Agent) -> bool:
    return (
        agent.status == Agent.Status.ONLINE
        and agent.last_heartbeat is not None
        and agent.last_heartbeat >= stale_before()
    )


def live_agents():
    return Agent.objects.filter(status=Agent.Status.ONLINE, last_heartbeat__gte=stale_before())


async def sender_user_id(sender: str | None) -> int | None:
    """The user a message speaks for: `user:<name>` from the API, else the sending agent's owner."""
    if not sender:
        return None
    if sender.startswith("user:"):
        user = await get_user_model().objects.filter(username=sender[5:]).values_list("pk", flat=True).afirst()
        return user
    return await Agent.objects.filter(pk=sender).values_list("owner_id", flat=True).afirst()


def serves_sender(user_id: int | None) -> Q:
    """Which agents a capability request from `user_id` may reach: built-ins and agents nobody
    owns, agents staff shared, and the sender's own. Never another user's private agent, which
    would read the request (a user's query text) and could answer it with anything."""
    allowed = Q(kind=Agent.Kind.BUILTIN) | Q(owner__isnull=True) | Q(shared=True)
    return allowed | Q(owner_id=user_id) if user_id is not None else allowed


async def request_claim(agent_id: str, message_id, *, reply_to: str = "", answer_by=None) -> bool:
    """True for the first receiver — any agent, process or connection — to take this request
    (see MessageClaim): a retry or redelivery reaching another one is dropped, so it runs at most once.
    With ``answer_by`` its answer is taken until then (``request_answer``) and sent to ``reply_to``."""
    try:
        await MessageClaim.objects.acreate(message_id=message_id, agent_id=agent_id, reply_to=reply_to,
                                           answer_by=answer_by)
    except IntegrityError:
        return False
    return True


async def request_answer(agent_id: str, message_id) -> str | None:
    """The reply channel for the answer to a request claimed for ``agent_id`` ('' when the asker
    gave none), or None when there is no such request, it was answered already or its time is up.
    The first caller marks it answered (one conditional UPDATE: of two answers at once, on any
    connections or workers, exactly one gets the channel)."""
    now = timezone.now()
    taken = await MessageClaim.objects.filter(
        message_id=message_id, agent_id=agent_id, answered_at__isnull=True, answer_by__gt=now,
    ).aupdate(answered_at=now)
    if not taken:
        return None
    return await MessageClaim.objects.filter(message_id=message_id).values_list("reply_to", flat=True).afirst()


class DbDirectory:
    """The bus's ``directory``: resolves a recipient or capability to a live agent's inbox.

    It also remembers the built-ins this process hosts: they are live by definition, so if
    their row went missing or stale (e.g. the database was reset) they are registered again.
    """

    def __init__(self) -> None:
        self.hosted: dict[str, list[str]] = {}

    async def add(self, agent_id: str, channel: str, capabilities: Iterable[str]) -> None:
        self.hosted[agent_id] = list(capabilities)
        await self.refresh(agent_id)

    async def refresh(self, agent_id: str) -> None:
        await Agent.objects.aupdate_or_create(
            pk=agent_id,
            defaults={"kind": Agent.Kind.BUILTIN, "status": Agent.Status.ONLINE, "last_heartbeat": timezone.now(),
                      "capabilities": self.hosted[agent_id]},
        )

    async def remove(self, agent_id: str, channel: str | None = None) -> None:
        # A built-in may still run in another process: let its heartbeats lapse instead.
        self.hosted.pop(agent_id, None)

    async def knows(self, agent_id: str) -> bool:
        return agent_id in self.hosted or await Agent.objects.filter(pk=agent_id).aexists()

    async def is_live(self, agent_id: str) -> bool:
        """Still online (a request delivered to it waits for its answer rather than going elsewhere)."""
        return agent_id in self.hosted or await live_agents().filter(pk=agent_id).aexists()

    async def resolve(
        self, *, recipient: str | None, capability: str | None, exclude: Iterable[str] = (),
        sender: str | None = None,
    ) -> Route | None:
        route = await self._resolve(recipient=recipient, capability=capability, exclude=exclude, sender=sender)
        if route is None:
            local = [a for a, caps in self.hosted.items()
                     if (a == recipient if recipient else capability in caps) and a not in set(exclude)]
            if local:
                await self.refresh(local[0])
                route = Route(local[0], inbox_channel(local[0]))
        return route

    async def _resolve(
        self, *, recipient: str | None, capability: str | None, exclude: Iterable[str] = (),
        sender: str | None = None,
    ) -> Route | None:
        if recipient:
            exists = await live_agents().filter(pk=recipient).aexists()
            return Route(recipient, inbox_channel(recipient)) if exists else None
        excluded = set(exclude)
        serving = live_agents().filter(serves_sender(await sender_user_id(sender)))
        candidates = [
            agent
            async for agent in serving.only("id", "capabilities", "in_flight", "last_assigned_at")
            if capability in (agent.capabilities or []) and agent.id not in excluded
        ]
        if not candidates:
            return None
        never = timezone.now() - timedelta(days=36500)
        chosen = min(candidates, key=lambda a: (a.in_flight, a.last_assigned_at or never, a.id))
        await Agent.objects.filter(pk=chosen.id).aupdate(last_assigned_at=timezone.now())
        return Route(chosen.id, inbox_channel(chosen.id))

    async def claim(self, agent_id: str, message_id) -> bool:
        return await request_claim(agent_id, message_id)

    async def forget_claims(self) -> None:
        horizon = timezone.now() - timedelta(seconds=settings.AGENTS_REPLAY_WINDOW_SECONDS)
        await MessageClaim.objects.filter(claimed_at__lt=horizon).adelete()

    async def dispatched(self, agent_id: str) -> None:
        await Agent.objects.filter(pk=agent_id).aupdate(in_flight=F("in_flight") + 1)

    async def settled(self, agent_id: str) -> None:
        await Agent.objects.filter(pk=agent_id, in_flight__gt=0).aupdate(in_flight=F("in_flight") - 1)
