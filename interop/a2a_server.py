"""AutoBot as an A2A agent (official `a2a-sdk`): a public card and a JSON-RPC endpoint.

- `GET /.well-known/agent-card.json`: public; skills are the operator's tools and the online
  built-in or shared bus agents' capabilities; one JSON-RPC interface at /a2a; bearer tokens.
- `GET /a2a/agents/{id}/agent-card.json` and `POST /a2a/agents/{id}`: one public bus agent's
  card and endpoint (a data part `{action, data}` goes to that agent).
- `POST /a2a`: the SDK's JSON-RPC dispatcher (SendMessage, SendStreamingMessage and
  SubscribeToTask over SSE, GetTask, CancelTask), behind an API token. Each message becomes one call through
  interop.calls, as the token's user, so the operator policy, approvals and audit apply:
  - a data part `{"agent_id" | "capability", "action", "data"}`: a request to that bus agent;
  - a data part `{"tool", "arguments"}`: that registry tool (terminal_run, files_read, …);
  - text only: a search of the user's knowledge base.
  A call waiting for approval leaves the task `input-required`; once the owner has approved it
  in AutoBot, any message to the same task runs it. States: working → completed | failed |
  canceled (or input-required).

Tasks are stored in the database (interop/a2a_store.py), so GetTask, CancelTask and a
follow-up message work on any worker. Their events go through the channel layer
(interop/a2a_stream.py), so SubscribeToTask on any worker follows a run on any other, and ends
`failed` if the worker running it dies (GetTask and ListTasks say so too). CancelTask on any
worker stops the call on the worker running it and expires the approvals the task asked for.
"""

from __future__ import annotations

import json
import re
from contextlib import aclosing
from dataclasses import dataclass

from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.cluster import TaskVersion
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.server.request_handlers.request_handler import validate_request_params
from a2a.server.request_handlers.response_helpers import agent_card_to_dict
from a2a.server.routes import DefaultServerCallContextBuilder, create_jsonrpc_routes
from a2a.server.tasks import TaskUpdater
from a2a.types import (
    AgentCapabilities,
    AgentCard,
    AgentInterface,
    AgentSkill,
    HTTPAuthSecurityScheme,
    Message,
    Part,
    Role,
    SecurityRequirement,
    SecurityScheme,
    Task,
    TaskState,
    TaskStatus,
    TaskStatusUpdateEvent,
)
from a2a.utils.constants import AGENT_CARD_WELL_KNOWN_PATH
from a2a.utils.errors import TaskNotFoundError, UnsupportedOperationError
from django.conf import settings
from google.protobuf.json_format import MessageToDict
from starlette.applications import Starlette
from starlette.authentication import SimpleUser
from starlette.responses import JSONResponse
from starlette.routing import Route

from autobot.auth import token_authenticate
from autobot.http import refuse
from chat import tools
from chat.tools.agents import COMMAND_AGENTS
from interop import a2a_stream, calls
from interop.a2a_store import TERMINAL, DatabaseTaskStore
from interop.http import allowed, header, on_lanes

RPC_PATH = "/a2a"
USER_KEY = "autobot.user"
PATHS = (AGENT_CARD_WELL_KNOWN_PATH, RPC_PATH)
AGENTS_PATH = "/a2a/agents/"  # + id: one bus agent's endpoint; + id/agent-card.json: its card
DESCRIPTION = ("AutoBot, a self-hosted operations assistant: its knowledge base, files, agents and governed "
               "terminal, as the token's user. Send a data part {agent_id|capability, action, data} for a bus "
               "agent, {tool, arguments} for a tool, or text to search the knowledge base.")


def is_a2a(scope) -> bool:
    return scope["type"] == "http" and (scope["path"] in PATHS or scope["path"].startswith(AGENTS_PATH))


# One agent's card: exactly one path segment between the prefix and the file name. A looser
# test (prefix + suffix) also matched the JSON-RPC route with the id "agent-card.json".
_AGENT_CARD = re.compile(r"/a2a/agents/[^/]+/agent-card\.json")


def _is_card(scope) -> bool:
    """The public card: a GET (or HEAD) of the well-known path or of one agent's card."""
    if scope.get("method") not in ("GET", "HEAD"):
        return False
    path = scope["path"]
    return path == AGENT_CARD_WELL_KNOWN_PATH or _AGENT_CARD.fullmatch(path) is not None


# -- the card ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class PublicAgent:
    agent_id: str
    name: str
    description: str
    capabilities: tuple[str, ...]
    actions: dict


async def _public_agents(agent_id: str | None = None) -> list[PublicAgent]:
    """The bus agents anyone may address: the configured built-ins (live in every worker) and
    the shared agents online now. Not the command agents: commands go through terminal_run."""
    from agents.builtin import SPECS
    from agents.models import Agent

    found = [PublicAgent(spec.agent_id, spec.name, spec.description, spec.capabilities, spec.actions)
             for name, spec in SPECS.items() if name in settings.AGENTS_BUILTINS]
    shared = Agent.objects.filter(shared=True, status=Agent.Status.ONLINE).exclude(kind=Agent.Kind.BUILTIN)
    if agent_id:
        shared = shared.filter(pk=agent_id)
    found += [PublicAgent(a.pk, a.name or a.pk, a.description, tuple(a.capabilities or ()), {})
              async for a in shared.order_by("id")]
    return [a for a in found if a.agent_id not in COMMAND_AGENTS and (agent_id is None or a.agent_id == agent_id)]


def _skills(agent: PublicAgent) -> list[AgentSkill]:
    about = f"{agent.description} " if agent.description else ""
    how = f'Send {{"agent_id": "{agent.agent_id}", "action": …, "data": …}} as a data part.'
    actions = "".join(f" Action {name}: data {shape}." for name, shape in agent.actions.items())
    return [AgentSkill(id=f"agent:{agent.agent_id}:{capability}", name=f"{agent.name}: {capability}",
                       description=f"{about}{how}{actions}", tags=["agent", agent.agent_id, capability])
            for capability in agent.capabilities]


async def _agent_skills() -> list[AgentSkill]:
    return [skill for agent in await _public_agents() for skill in _skills(agent)]


async def agent_card(base_url: str) -> AgentCard:
    """The public card, with the bus agents online now."""
    return _card(base_url, await _agent_skills())


def _card(base_url: str, agent_skills: list[AgentSkill]) -> AgentCard:
    skills = [AgentSkill(id=f"tool:{tool.name}", name=tool.name, description=tool.description, tags=["tool"],
                         input_modes=["application/json"], output_modes=["text/plain"])
              for tool in tools.TOOLS.values()]
    return AgentCard(
        name="AutoBot", description=DESCRIPTION, version=settings.VERSION,
        supported_interfaces=[AgentInterface(url=base_url + RPC_PATH, protocol_binding="JSONRPC",
                                             protocol_version="1.0")],
        capabilities=AgentCapabilities(streaming=True, push_notifications=False),
        security_schemes={"bearer": SecurityScheme(http_auth_security_scheme=HTTPAuthSecurityScheme(
            scheme="bearer", bearer_format="AutoBot API token (abt_…)",
            description="An API token from the Tokens page (/tokens/)"))},
        security_requirements=[SecurityRequirement(schemes={"bearer": {"list": []}})],
        default_input_modes=["text/plain", "application/json"], default_output_modes=["text/plain"],
        skills=skills + agent_skills,
    )


def _base_url(scope) -> str:
    # The Host header has passed the ALLOWED_HOSTS check; the scheme is what the proxy says it is.
    scheme = scope.get("scheme", "http")
    forwarded = header(scope, b"x-forwarded-proto")
    if forwarded in ("http", "https") and settings.SECURE_PROXY_SSL_HEADER:
        scheme = forwarded
    return f"{scheme}://{header(scope, b'host')}"


async def bus_agent_card(base_url: str, agent_id: str) -> AgentCard | None:
    """The card of one public bus agent (see _public_agents), or None."""
    agents = await _public_agents(agent_id)
    if not agents:
        return None
    agent, security = agents[0], _card("", [])
    return AgentCard(
        name=agent.name, version=settings.VERSION,
        description=(f"{agent.description} " if agent.description else "") + "An agent on AutoBot's bus. Send a data "
                    "part {action, data}; it acts as the token's user.",
        supported_interfaces=[AgentInterface(url=f"{base_url}{AGENTS_PATH}{agent.agent_id}", protocol_binding="JSONRPC",
                                             protocol_version="1.0")],
        capabilities=AgentCapabilities(streaming=True, push_notifications=False),
        security_schemes=security.security_schemes, security_requirements=security.security_requirements,
        default_input_modes=["application/json"], default_output_modes=["text/plain"], skills=_skills(agent))


async def agent_card_view(request) -> JSONResponse:
    card = await bus_agent_card(_base_url(request.scope), request.path_params["agent_id"])
    if card is None:
        return JSONResponse({"detail": f"no public agent {request.path_params['agent_id']!r} is online",
                             "code": "agent_not_found"}, status_code=404)
    return JSONResponse(agent_card_to_dict(card), headers={"Cache-Control": "no-cache"})


async def card_view(request) -> JSONResponse:
    card = await agent_card(_base_url(request.scope))
    return JSONResponse(agent_card_to_dict(card), headers={"Cache-Control": "no-cache"})


# -- the executor -----------------------------------------------------------------------------
def _request_of(message, agent_id: str | None = None) -> tuple[str, dict, str | None] | None:
    """(tool, arguments, approval id) the message asks for, or None when it names nothing.
    Sent to one bus agent's endpoint (`agent_id`), a data part `{action, data}` is for it."""
    for part in message.parts:
        if part.HasField("data"):
            data = MessageToDict(part.data)
            if not isinstance(data, dict):
                continue
            if agent_id:
                return "agent_request", {"agent_id": agent_id, "action": str(data.get("action") or ""),
                                         "data": data.get("data") or {}}, None
            if "tool" in data:
                return str(data["tool"]), data.get("arguments") or {}, data.get("approval_id")
            if "agent_id" in data or "capability" in data:
                keys = ("agent_id", "capability", "action", "data")
                return "agent_request", {k: data[k] for k in keys if k in data}, None
    text = "\n".join(part.text for part in message.parts if part.HasField("text")).strip()
    if agent_id:
        return None
    return ("knowledge_search", {"query": text[:500]}, None) if text else None


class BusExecutor(AgentExecutor):
    """Runs one message as one call (interop.calls). A call parked behind an approval is found
    again from the task itself (its first message and the approval in its status), so a
    follow-up or a cancel works on whichever worker receives it."""

    @on_lanes
    async def execute(self, context: RequestContext, event_queue) -> None:
        user = context.call_context.state[USER_KEY]
        if context.current_task is None:
            await event_queue.enqueue_event(Task(id=context.task_id, context_id=context.context_id,
                                                 status=TaskStatus(state=TaskState.TASK_STATE_SUBMITTED),
                                                 history=[context.message]))
        updater = TaskUpdater(event_queue, context.task_id, context.context_id)
        await updater.start_work()
        agent_id = context.call_context.state.get("agent_id")
        asked = _request_of(context.message, agent_id)
        parked = _parked(context.current_task, agent_id)
        if parked and (asked is None or asked[0] == "knowledge_search"):
            asked = parked  # "go on" after the owner's decision: the parked call, with its approval
        if asked is None:
            wanted = "a data part {action, data}" if agent_id else "text, or a data part naming an agent or a tool"
            await updater.failed(_text(updater, f"send {wanted}"))
            return
        name, arguments, approval_id = asked
        outcome = await a2a_stream.run(context.task_id, calls.call(
            user=user, door="a2a", name=name, arguments=arguments, approval_id=approval_id,
            client_ip=context.call_context.state.get("client_ip"), correlation_id=correlation(context.task_id)))
        if outcome is None or (outcome.status == "pending_approval" and await a2a_stream.ended(context.task_id)):
            # The task ended on another worker (CancelTask there) while the call ran. An approval
            # the call asked for after that cancel withdrew the task's approvals goes too. The
            # store refuses this cancel (the task has ended): the SDK ends the run with the stored task.
            await withdraw(user, context.task_id)
            await updater.cancel()
            return
        if outcome.status == "pending_approval":
            await updater.requires_input(updater.new_agent_message(
                [Part(text=outcome.output), Part(data=_value({"approval": outcome.approval}))]))
            return
        await updater.add_artifact([Part(text=outcome.output)], name="result")
        if outcome.ok:
            await updater.complete()
        else:
            await updater.failed(_text(updater, outcome.output))

    async def cancel(self, context: RequestContext, event_queue) -> None:
        # Its approvals are withdrawn by RequestHandler.on_cancel_task, wherever the task runs.
        await TaskUpdater(event_queue, context.task_id, context.context_id).cancel()


def correlation(task_id: str) -> str:
    """The correlation id of the task's calls: their approvals, audit events and agent messages."""
    return task_id.replace("-", "")


@on_lanes
async def withdraw(user, task_id: str) -> None:
    """Nobody may approve a call whose task was cancelled: expire what its calls asked for (their
    records then say `cancelled`)."""
    await calls.calls_withdraw(user=user, door="a2a", correlation_id=correlation(task_id))


def _parked(task, agent_id: str | None) -> tuple[str, dict, str] | None:
    """(tool, arguments, approval id) of the call an input-required task waits for, or None."""
    if task is None or task.status.state != TaskState.TASK_STATE_INPUT_REQUIRED:
        return None
    first = next((m for m in task.history if m.role == Role.ROLE_USER), None)
    approval = next((MessageToDict(p.data).get("approval") for p in task.status.message.parts
                     if p.HasField("data")), None)
    asked = _request_of(first, agent_id) if first is not None else None
    if not asked or not isinstance(approval, dict) or not approval.get("id"):
        return None
    return asked[0], asked[1], str(approval["id"])


def _text(updater: TaskUpdater, text: str):
    return updater.new_agent_message([Part(text=text)])


def _value(data: dict):
    from google.protobuf import struct_pb2

    value = struct_pb2.Value()
    value.struct_value.update(json.loads(json.dumps(data, default=str)))
    return value


class ContextBuilder(DefaultServerCallContextBuilder):
    def build(self, request):
        context = super().build(request)
        context.state[USER_KEY] = request.scope[USER_KEY]
        context.state["agent_id"] = request.path_params.get("agent_id")
        context.state["client_ip"] = request.client.host if request.client else None
        return context


class RequestHandler(DefaultRequestHandler):
    """The SDK's handler, with every subscription following the task's events on the channel
    layer (interop/a2a_stream.py). The SDK taps the worker's own copy of the task when it holds
    one, but a worker may hold a task parked for input whose follow-up another worker runs."""

    def __init__(self, **kwargs):
        self.stream = a2a_stream.ChannelLayerTaskEventStream()
        super().__init__(event_stream=self.stream, **kwargs)

    async def on_cancel_task(self, params, context):
        """The SDK's cancel: on this worker it stops the run; on another it writes `canceled` and
        publishes it, and the worker running the call stops it (a2a_stream.run). Either way the
        task's pending approvals are withdrawn here, once the task is stored cancelled; one its
        call is still storing (the SDK returns before the run has ended) is withdrawn by the
        stopped call itself, once stored (interop.calls._cancelled)."""
        task = await super().on_cancel_task(params, context)
        await withdraw(context.state[USER_KEY], params.id)
        return task

    async def on_get_task(self, params, context):
        task = await super().on_get_task(params, context)
        if task.status.state in a2a_stream.RUNNING:  # its worker may have stopped: say so
            settled = await a2a_stream.settle([task.id])
            if task.id in settled:
                task.status.CopyFrom(settled[task.id])
        return task

    async def on_list_tasks(self, params, context):
        page = await super().on_list_tasks(params, context)
        running = [task.id for task in page.tasks if task.status.state in a2a_stream.RUNNING]
        settled = await a2a_stream.settle(running) if running else {}
        for task in page.tasks:
            if task.id in settled:
                task.status.CopyFrom(settled[task.id])
        return page

    @validate_request_params
    async def on_subscribe_to_task(self, params, context):
        stored = await self.task_store.get(params.id, context)  # the owner's only: else "not found"
        if stored is None:
            raise TaskNotFoundError
        if stored.task.status.state in TERMINAL:
            raise UnsupportedOperationError(
                message=f"task {params.id} has ended ({TaskState.Name(stored.task.status.state)}): "
                        "nothing more will come; GetTask returns it")
        # From the start: the stream joins the task's group, then sends the task as stored (the
        # protocol's first event), then what follows it; nothing falls between the two.
        async with aclosing(self.stream.subscribe(params.id, after=TaskVersion.MISSING)) as events:
            first = True
            async for versioned in events:
                yield versioned.event
                if _ends_stream(versioned.event, first=first):
                    return
                first = False


def _ends_stream(event, *, first: bool) -> bool:
    """A final state ends a stream; so does an interrupted one (input-required) reached while
    following it, as SendStreamingMessage's."""
    if isinstance(event, Message):
        return True
    if not isinstance(event, Task | TaskStatusUpdateEvent):
        return False
    return event.status.state in TERMINAL if first else event.status.state not in a2a_stream.RUNNING


executor = BusExecutor()
# The handler reads its card for what the endpoint supports (streaming); the served one is built
# per request (card_view), with the caller's host and the agents online now.
# A task parked for input leaves this worker's memory after OPERATOR_APPROVAL_SECONDS (by then its
# approval has expired, or a cancel on another worker ended it); a later message loads it again
# from the store. Without this, every parked task stayed in the memory of the worker that ran it.
handler = RequestHandler(agent_executor=executor, task_store=DatabaseTaskStore(), agent_card=_card("", []),
                         interrupted_task_timeout=settings.OPERATOR_APPROVAL_SECONDS)
_app = Starlette(routes=[
    Route(AGENT_CARD_WELL_KNOWN_PATH, card_view, methods=["GET"]),
    Route(AGENTS_PATH + "{agent_id}/agent-card.json", agent_card_view, methods=["GET"]),
    *create_jsonrpc_routes(handler, RPC_PATH, context_builder=ContextBuilder()),
    *create_jsonrpc_routes(handler, AGENTS_PATH + "{agent_id}", context_builder=ContextBuilder()),
])


async def a2a_app(scope, receive, send) -> None:
    """The card (public) and the JSON-RPC endpoint (an API token), behind the Host/Origin check."""
    if not allowed(scope):
        await refuse(send, 403, "this Host or Origin is not allowed (AUTOBOT_ALLOWED_HOSTS)", "host_not_allowed")
        return
    if not _is_card(scope):
        authorization = header(scope, b"authorization")
        raw = authorization[7:].strip() if authorization[:7].lower() == "bearer " else ""
        user = await token_authenticate(raw) if raw else None
        if user is None:
            await refuse(send, 401, "send a valid API token: Authorization: Bearer", "not_authenticated",
                         [(b"www-authenticate", b'Bearer realm="AutoBot"')])
            return
        # The owner resolver keys tasks by this name: one user never sees another's tasks.
        scope = {**scope, "user": SimpleUser(f"user:{user.pk}"), USER_KEY: user}
    await _app(scope, receive, send)

