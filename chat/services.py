"""Chat business logic: sessions, messages, grounding, export, one-shot completions.

Every entry point (REST, WebSocket, other apps) goes through these functions, so limits,
permissions and auditing are decided once, here.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import DEFAULT_DB_ALIAS, connection, transaction
from django.utils import timezone

from autobot import audit
from autobot.compiled import CompiledInsert, CompiledQuery, Param
from autobot.errors import AppError, Conflict, InvalidInput, LimitExceeded, NotFound, Unavailable
from autobot.pagination import paginate
from autobot.workers import WORKER_ID, single_process, worker_gone
from chat.db import db_job
from chat.generation import BUSY, Admission, Answer, answers
from chat.llm.base import LLMUnavailable
from chat.llm.registry import Resolved, get_registry
from chat.markdown import render
from chat.models import ChatMessage, ChatSession
from chat.operator.turn import new_correlation_id
from chat.prompt import build as build_prompt

log = logging.getLogger("chat.services")

TITLE_CHARS = 60
EXPORT_FORMATS = ("md", "json")
HISTORY_ROWS = 200  # newest messages read for the prompt; chat.prompt trims them to the context window


@dataclass
class Posted:
    user_message: ChatMessage
    reply: ChatMessage
    answer: Answer
    events: asyncio.Queue | None = None  # every event of the answer, when asked for with stream=True


# -- serialization (shared by REST, WebSocket and channel-layer events) -----------------------
def session_data(session: ChatSession) -> dict:
    return {
        "id": str(session.id),
        "title": session.title,
        "model": session.model,
        "created": session.created.isoformat(),
        "updated": session.updated.isoformat(),
        "generating": answers.running(session.id) is not None,
        "tools": tools_enabled(session),
        "operator_terminal": str(session.operator_terminal) if session.operator_terminal else None,
    }


# The columns `session_list_data` reads, in its order (chat/api.py's list query selects them).
SESSION_LIST_FIELDS = ("id", "title", "model", "created", "updated", "tools", "operator_terminal")


def session_list_data(rows) -> list[dict]:
    """`session_data` for a page of the session list, from its rows (in `SESSION_LIST_FIELDS`
    order, the ids and dates already their text: chat/api.py's compiled list query): the same
    dicts, made without a model instance or row object per session, and with the LLM registry
    asked once per model on the page rather than once per session (docs/performance.md, target 1).
    tests/chat/test_session_list.py checks it equals `session_data` for every field."""
    running = answers.running_ids()
    tools_of: dict[str, bool] = {}  # model -> tools_enabled's answer when the session has no choice
    items = []
    for session_id, title, model, created, updated, tools, terminal in rows:
        if tools is not False:
            tools = tools_of.get(model)
            if tools is None:
                tools = tools_of[model] = _model_has_tools(model)
        items.append({
            "id": session_id,
            "title": title,
            "model": model,
            "created": created,
            "updated": updated,
            "generating": session_id in running,
            "tools": tools,
            "operator_terminal": terminal or None,
        })
    return items


def _model_has_tools(model: str) -> bool:
    try:
        return get_registry().resolve(model).config.kind != "offline"
    except LLMUnavailable:
        return False


def tools_enabled(session: ChatSession) -> bool:
    """Whether answers in this session may call tools: as chosen, on by default, never offline."""
    if session.tools is False:
        return False
    return _model_has_tools(session.model)


def message_data(message: ChatMessage) -> dict:
    return {
        "id": message.pk,
        "session_id": str(message.session_id),
        "role": message.role,
        "content": message.content,
        "html": render(message.content) if message.role == ChatMessage.Role.ASSISTANT else "",
        "status": message.status,
        "citations": message.citations,
        **message.stats,
        "error": message.error,
        "tool_calls": message.tool_calls,
        "correlation_id": message.correlation_id,
        "created": message.created.isoformat(),
    }


# -- sessions ---------------------------------------------------------------------------------
def _visible(user):
    sessions = ChatSession.objects.all()
    return sessions if user.is_staff else sessions.filter(owner=user)


async def session_get(*, user, session_id) -> ChatSession:
    try:
        return await _visible(user).aget(pk=session_id)
    except (ChatSession.DoesNotExist, ValueError, TypeError, ValidationError):
        # ValueError/ValidationError: not a UUID. Same answer as "not yours", so ids can't be probed.
        raise NotFound(f"chat session {session_id} not found", code="chat_session_not_found") from None


def _session_read_query(*, staff: bool) -> CompiledQuery:
    """`session_get`'s query (`_visible`: own sessions, any for staff), compiled once per shape
    (autobot/compiled.py), every column, for `ChatSession.from_db`."""
    def build():
        sessions = ChatSession.objects.filter(pk=Param("id", ChatSession._meta.pk))
        if not staff:
            sessions = sessions.filter(owner_id=Param("user", ChatSession._meta.get_field("owner").target_field))
        return sessions.order_by().values_list(*_SESSION_COLUMNS)

    return CompiledQuery(build)


_SESSION_COLUMNS = tuple(field.attname for field in ChatSession._meta.concrete_fields)
_SESSION_READS = {staff: _session_read_query(staff=staff) for staff in (False, True)}


def session_read(user, session_id) -> ChatSession | None:
    """The session as `session_get` reads it, or None where that is a 404; sync (on a lane: the
    message POST's token check, chat/api.py). tests/chat/test_session_read.py compares the two."""
    try:
        session_id = session_id if isinstance(session_id, uuid.UUID) else uuid.UUID(str(session_id))
    except ValueError:
        return None
    rows = _SESSION_READS[bool(user.is_staff)].rows({"id": session_id, "user": user.pk}, limit=1)
    return ChatSession.from_db(DEFAULT_DB_ALIAS, _SESSION_COLUMNS, rows[0]) if rows else None


def session_found(session: ChatSession | None, session_id) -> ChatSession:
    """`session_read`'s answer, or `session_get`'s 404."""
    if session is None:
        raise NotFound(f"chat session {session_id} not found", code="chat_session_not_found")
    return session


async def session_list(*, user, q: str = "", limit: int = 50, offset: int = 0) -> tuple[list, int]:
    """A page of the sessions the user may see, newest first, as rows with the attributes
    `session_data` reads (id, title, model, created, updated, tools, operator_terminal): plain
    rows, not model instances, cost about a third less to read."""
    sessions = _visible(user)
    if q.strip():
        sessions = sessions.filter(title__icontains=q.strip())
    rows = sessions.order_by("-updated").values_list("id", "title", "model", "created", "updated", "tools",
                                                     "operator_terminal", named=True)
    return await paginate(rows, limit=limit, offset=offset)


async def session_create(*, user, title: str = "", model: str = "") -> ChatSession:
    session = await ChatSession.objects.acreate(owner=user, title=_clean_title(title), model=_model_ref(model))
    await audit.record(actor=user, action="chat.session.create", target_type="chat_session",
                       target_id=str(session.id), data={"model": session.model})
    return session


async def session_update(*, user, session_id, title: str | None = None, model: str | None = None,
                         tools: bool | None = None) -> ChatSession:
    session = await session_get(user=user, session_id=session_id)
    if title is not None:
        session.title = _clean_title(title)
    if model is not None:
        session.model = _model_ref(model)
    if tools is not None:
        session.tools = tools
        if tools and not tools_enabled(session):
            raise InvalidInput("the offline provider cannot act: choose a language model to use tools",
                               code="tools_unavailable")
    await session.asave()
    if tools is not None:
        await audit.record(actor=user, action="chat.session.tools", target_type="chat_session",
                           target_id=str(session.id), data={"tools": tools})
    return session


async def session_delete(*, user, session_id) -> None:
    session = await session_get(user=user, session_id=session_id)
    # Wherever the answer runs: here, or on another worker, which the Stop reaches over the
    # session's control group, or (the group empty after a Redis restart) finds the reply's row
    # gone at its next write or rejoin (chat/generation.py, `_flush`, `_stop_requested`).
    await answers.cancel(session.id)
    await session.adelete()
    await audit.record(actor=user, action="chat.session.delete", target_type="chat_session",
                       target_id=str(session_id), data={"title_length": len(session.title)})


def _clean_title(title: str) -> str:
    return " ".join((title or "").split())[:200]


def _model_ref(model: str) -> str:
    """Validate a model choice and store it in its canonical "<provider>/<model>" form."""
    if not (model or "").strip():
        return ""
    try:
        return get_registry().resolve(model).ref
    except LLMUnavailable as exc:
        raise InvalidInput(exc.detail, code="invalid_model") from None


# -- messages ---------------------------------------------------------------------------------
async def message_list(*, user, session_id, limit: int = 100, offset: int = 0,
                       after: int | None = None) -> tuple[list[ChatMessage], int]:
    """The session's messages in order; with `after`, only those with a greater id (a page that
    catches up reads what is newer than what it shows, page after page, by the last id it got)."""
    session = await session_get(user=user, session_id=session_id)
    if not answers.busy(session.id):  # one being set up here has its streaming reply stored already
        await db_job(_reap_stale)(session)
    messages = session.messages.order_by("created", "id")
    if after is not None:
        # By id alone: the cursor is an id, and a row whose `created` sorts after a higher id's (a
        # worker's clock behind another's) would otherwise fall behind the cursor and be skipped.
        messages = messages.filter(id__gt=after).order_by("id")
    return await paginate(messages, limit=limit, offset=offset)


def clean_content(content) -> str:
    if not isinstance(content, str) or not content.strip():
        raise InvalidInput("the message is empty", code="empty_message")
    if len(content) > settings.CHAT_MAX_MESSAGE_CHARS:
        raise LimitExceeded(
            f"the message is {len(content)} characters; the limit is {settings.CHAT_MAX_MESSAGE_CHARS}",
            code="message_too_large",
        )
    return content.strip()


@dataclass
class _Checked:
    user: object
    session: ChatSession
    content: str
    resolved: Resolved
    admission: Admission  # the session reserved for this answer; set_up frees it
    question: ChatMessage | None = None  # regenerating: the stored question answered again


async def _message_check(*, user, session_id, content, model: str | None, regenerate: bool = False,
                         session: ChatSession | None = None) -> _Checked:
    """Everything that can refuse a message before it is stored: size, session, model, an answer
    running or being set up; then the session is admitted (reserved) for this one, in the same step
    of the loop as that check. With `regenerate`, the question is the session's last one (`content`
    is not used). `session`: the session already read for `user` (`session_read`), else read here."""
    # A session handed in is used only if it is this one and `user` may use it (as `session_get`
    # decides: the owner, or staff); otherwise it is read here.
    if (session is None or str(session.pk) != str(session_id)
            or not (session.owner_id == user.pk or user.is_staff)):
        session = await session_get(user=user, session_id=session_id)
    question = None
    if regenerate:
        question = await session.messages.filter(role=ChatMessage.Role.USER).order_by("-created", "-id").afirst()
        if question is None:
            raise InvalidInput("there is no question to answer again in this session", code="nothing_to_regenerate")
        content = question.content
    else:
        content = clean_content(content)
    resolved = _resolve(model if model else session.model)
    admission = answers.admit(session.id)  # 409 while this process sets up or runs one of its answers
    return _Checked(user=user, session=session, content=content, resolved=resolved, admission=admission,
                    question=question)


async def message_post(*, user, session_id, content, use_knowledge: bool = True, model: str | None = None,
                       client_ip: str | None = None, stream: bool = False, regenerate: bool = False,
                       session: ChatSession | None = None) -> Posted:
    """Store the user's message and start generating the reply in a server-side task.
    With `regenerate`, answer the last question again (a new answer beside the earlier ones).
    `session`: the session as `session_read` read it for `user` (the REST API reads it with the
    token check), else it is read here.

    With `stream`, `Posted.events` is subscribed before the task's first step, so it sees
    every token as its own event."""
    checked = await _message_check(user=user, session_id=session_id, content=content, model=model,
                                   regenerate=regenerate, session=session)
    return await answers.set_up(checked.admission, lambda: _message_setup(
        checked, use_knowledge=use_knowledge, client_ip=client_ip, stream=stream))


async def message_post_streaming(*, user, session_id, content, use_knowledge: bool = True, model: str | None = None,
                                 client_ip: str | None = None, regenerate: bool = False,
                                 session: ChatSession | None = None) -> asyncio.Task:
    """`message_post(stream=True)` for a streaming response: the checks run now and raise as
    usual; storing the question and starting the answer go on in a task (returned; its result
    is the `Posted`), so the response can begin meanwhile instead of after the database write.
    The task does not depend on the response: a client that leaves early still gets its answer
    stored."""
    checked = await _message_check(user=user, session_id=session_id, content=content, model=model,
                                   regenerate=regenerate, session=session)
    return answers.set_up_in_background(checked.admission, lambda: _message_setup(
        checked, use_knowledge=use_knowledge, client_ip=client_ip, stream=True), name=f"chat-start-{session_id}")


async def message_started(starting: asyncio.Task) -> Posted:
    """`message_post_streaming`'s task, waited for without owning it: a caller that leaves does
    not stop the answer; raises as `message_post` would, or ShuttingDown when shutdown stopped it."""
    return await answers.wait_set_up(starting)


async def _message_setup(checked: _Checked, *, use_knowledge: bool, client_ip: str | None, stream: bool) -> Posted:
    user, session, content, resolved = checked.user, checked.session, checked.content, checked.resolved
    correlation_id = new_correlation_id() if _operates(user, session, resolved) else ""
    # The question is stored while the knowledge base is searched and the operator's policy and
    # tools are read: none waits for another (each is a database trip on a thread of its own).
    # The store is a task of its own: stopped meanwhile (shutdown), the set-up still learns
    # whether the question was stored, and then stores its reply as cancelled.
    store = asyncio.ensure_future(db_job(_store_question)(
        user, session, content, use_knowledge, resolved.ref, client_ip, correlation_id, checked.question))
    try:
        passages, turn = await _together(
            _passages(user, resolved, content, use_knowledge),
            operator_turn(user, session, correlation_id, client_ip) if correlation_id else _nothing())
        user_message, reply, history = await asyncio.shield(store)
    except asyncio.CancelledError:
        await _stored_then_stopped(store, checked, client_ip)
        raise
    except Exception as exc:  # the search failed: its error is the one raised, and the reply's
        await _stored_then_stopped(store, checked, client_ip, error=_setup_error(exc))
        raise
    except BaseException:
        store.add_done_callback(_log_store_failure)
        raise
    provider, messages, citations = _prompt(user, resolved, content, history, passages, use_knowledge)
    answer = answers.start(
        session_id=session.id, reply=reply, user=user, provider=provider, prompt=messages,
        model=resolved.model, citations=citations, serialize=message_data, client_ip=client_ip, turn=turn,
    )
    events = answer.subscribe() if stream else None
    return Posted(user_message=user_message, reply=reply, answer=answer, events=events)


async def _stored_then_stopped(store: asyncio.Future, checked: _Checked, client_ip: str | None,
                               error: tuple[str, str] | None = None) -> None:
    """A set-up stopped before its answer started: once its question is stored (the job runs to
    the end regardless), its streaming reply is stored cancelled, or failed with `error` (code,
    detail) when the set-up failed, so the question is never left waiting."""
    try:
        _, reply, _ = await store
    except Exception:  # not stored (busy, session gone): nothing is left waiting
        _log_store_failure(store)
        return
    status = ChatMessage.Status.CANCELLED if error is None else ChatMessage.Status.FAILED
    await answers.store_unstarted(session_id=checked.session.id, reply=reply, user=checked.user,
                                  serialize=message_data, client_ip=client_ip, status=status, error=error)


def _setup_error(exc: Exception) -> tuple[str, str]:
    """The failed reply's (code, detail): an AppError's own, else a generic one (logged by the API)."""
    if isinstance(exc, AppError):
        return exc.code, exc.detail
    return "setup_failed", ("the answer could not be prepared (knowledge search or operator set-up failed); "
                            "the error has been logged")


def _log_store_failure(store: asyncio.Future) -> None:
    if not store.cancelled() and store.exception() is not None:
        log.info("chat question not stored: %r", store.exception())


async def reply_wait(posted: Posted) -> dict:
    """Wait for a posted message's reply; a failed one becomes a 503 with the provider's reason."""
    await posted.answer.finished.wait()
    result = posted.answer.result
    if result is None:
        raise NotFound("the chat session was deleted while answering", code="chat_session_not_found")
    if result["status"] == ChatMessage.Status.FAILED:
        raise Unavailable(result["error"], code=result["error_code"] or "llm_unavailable")
    return result


async def generation_cancel(*, user, session_id) -> bool:
    """Stop the session's answer in progress, in whichever process runs it. False when no answer
    was being generated (it may have just finished)."""
    session = await session_get(user=user, session_id=session_id)
    # Being set up here: it starts already cancelled; running here, or elsewhere (its row streams,
    # and records the Stop: see answers.cancel).
    return await answers.cancel(session.id)


async def generation_snapshot(*, user, session_id) -> dict | None:
    """The answer in progress, for a client that (re)connects: {message_id, text}."""
    session = await session_get(user=user, session_id=session_id)
    local = answers.snapshot(session.id)
    if local is not None:
        return local
    streaming = await session.messages.filter(status=ChatMessage.Status.STREAMING).order_by("-id").afirst()
    if streaming is None:
        return None
    # Another worker is generating: it knows the text up to now; the database only as of its
    # last flush (every couple of seconds), which is the fallback if it does not answer.
    live = await answers.remote_snapshot(session.id)
    if live is not None and live["message_id"] == streaming.pk:
        return {**live, "worker": streaming.worker}
    return {"message_id": streaming.pk, "text": streaming.content, "calls": streaming.tool_calls,
            "worker": streaming.worker}


async def generation_orphan_check(*, user, session_id, message_id: int) -> dict | None:
    """For a client following an answer that another worker generates: once that worker is known
    to be gone, the answer is marked interrupted (audited); returns it as stored, or None while it
    is still being generated."""
    session = await session_get(user=user, session_id=session_id)
    return await _orphan_check(session, message_id)


@db_job
def _orphan_check(session: ChatSession, message_id: int) -> dict | None:
    _reap_stale(session)
    message = session.messages.filter(pk=message_id).first()
    if message is None or message.status == ChatMessage.Status.STREAMING:
        return None
    return message_data(message)


def _operates(user, session: ChatSession, resolved: Resolved) -> bool:
    """Whether this answer may use tools. Tools act as the session's owner, so only the owner's
    own questions get them (not staff reading along)."""
    return session.owner_id == user.pk and resolved.config.kind != "offline" and tools_enabled(session)


async def operator_turn(user, session: ChatSession, correlation_id: str, client_ip: str | None):
    """The operator side of an answer that may use tools (`_operates`): the owner's policy and
    the tools they may call, read at once."""
    from chat import tools
    from chat.operator.policy import policy_get
    from chat.operator.turn import Turn

    policy, specs = await _together(policy_get(user=user), tools.specs_for(user))
    terminal = str(session.operator_terminal) if session.operator_terminal else None
    return Turn(user=user, session_id=str(session.id), correlation_id=correlation_id, policy=policy, specs=specs,
                terminal_session_id=terminal, client_ip=client_ip)


async def _nothing() -> None:
    return None


async def _together(*coroutines) -> list:
    """Their results, run at once; the first to fail cancels the others, and its error is raised."""
    tasks = [asyncio.ensure_future(coroutine) for coroutine in coroutines]
    try:
        return await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        raise


def _store_question(user, session: ChatSession, content: str, use_knowledge: bool, ref: str, client_ip: str | None,
                    correlation_id: str = "", question: ChatMessage | None = None):
    """Check the session is free, store and audit the question, add an empty streaming reply,
    and read the history — one job on chat's database thread, one commit. Regenerating (`question`
    given): only the reply is added, and the history stops before that question, so the model
    answers it afresh rather than seeing its earlier answers."""
    # Admitted: no other answer of this session is set up or running in this process; one
    # streaming in another process is found here. The session row is locked first (PostgreSQL;
    # SQLite serialises writers anyway) so two workers posting at the same instant cannot both
    # see the session free. The history's read tells whether any answer is still streaming (one
    # is always among the newest messages); only then are the streaming rows read for their age.
    # A busy session is refused after the transaction has committed: the answers reaped on the way
    # (orphaned by a stopped worker) stay failed, not rolled back with the refusal.
    with transaction.atomic():
        if connection.features.has_select_for_update:  # SQLite has no row locks: its write lock is the lock
            ChatSession.objects.select_for_update().filter(pk=session.pk).values_list("pk").first()
        recent = _HISTORY.rows({"session": session.pk}, limit=HISTORY_ROWS)
        # Only a streaming row's age and worker matter, and there rarely is one: they are read
        # then (up to 200 datetimes converted for nothing were ~15 % of this job).
        free = not any(status == ChatMessage.Status.STREAMING for _, _, status, _ in recent) or _reap_stale(session)
        if free:
            user_message, reply, history = _store_turn(user, session, content, use_knowledge, ref, client_ip,
                                                       correlation_id, question, recent)
    if not free:
        raise Conflict(BUSY, code="generation_running")
    return user_message, reply, history


# The store's read and inserts, compiled once (autobot/compiled.py): compiling them was most of
# the store's CPU time, which the first token waits for (docs/performance.md, eleventh round).
_HISTORY = CompiledQuery(lambda: ChatMessage.objects.filter(
    session_id=Param("session", ChatSession._meta.pk)).order_by("-created", "-id").values_list(
    "pk", "role", "status", "content"))
_MESSAGE_INSERT = CompiledInsert(ChatMessage)


def _store_turn(user, session: ChatSession, content: str, use_knowledge: bool, ref: str, client_ip: str | None,
                correlation_id: str, question: ChatMessage | None, recent: list):
    """The store half of ``_store_question``, inside its transaction."""
    history = [{"role": role, "content": text} for pk, role, status, text in reversed(recent)
               if text and (role == ChatMessage.Role.USER or status == ChatMessage.Status.COMPLETE)
               and (question is None or pk < question.pk)]
    if question is None:
        user_message, reply = _store_pair(session, content, use_knowledge, ref, correlation_id)
    else:
        user_message, reply = question, _store_reply(session, use_knowledge, ref, correlation_id)
    audit.record_sync(
        actor=user, action="chat.regenerate" if question else "chat.message", target_type="chat_session",
        target_id=str(session.id), data={"message_id": user_message.pk, "length": len(content), "model": ref,
                                         "use_knowledge": use_knowledge},
        ip=client_ip, correlation_id=correlation_id or None,
    )
    return user_message, reply, history


def _store_reply(session: ChatSession, use_knowledge: bool, ref: str, correlation_id: str) -> ChatMessage:
    reply = ChatMessage.objects.create(session=session, role=ChatMessage.Role.ASSISTANT,
                                       status=ChatMessage.Status.STREAMING, model=ref, use_knowledge=use_knowledge,
                                       worker=WORKER_ID, correlation_id=correlation_id)
    ChatSession.objects.filter(pk=session.pk).update(updated=timezone.now())
    return reply


def _store_pair(session: ChatSession, content: str, use_knowledge: bool, ref: str, correlation_id: str = ""):
    user_message = _MESSAGE_INSERT.insert(ChatMessage(
        session=session, role=ChatMessage.Role.USER, content=content, use_knowledge=use_knowledge, model=ref,
        correlation_id=correlation_id))
    reply = _MESSAGE_INSERT.insert(ChatMessage(
        session=session, role=ChatMessage.Role.ASSISTANT, status=ChatMessage.Status.STREAMING, model=ref,
        use_knowledge=use_knowledge, worker=WORKER_ID, correlation_id=correlation_id))
    if not session.title:
        session.title = _title_from(content)
    session.updated = timezone.now()  # moves the session to the top of the list
    ChatSession.objects.filter(pk=session.pk).update(title=session.title, updated=session.updated)
    return user_message, reply


def _reap_stale(session: ChatSession) -> bool:
    """Mark answers orphaned by a restart as failed; True when none is still in progress."""
    streaming = list(session.messages.filter(status=ChatMessage.Status.STREAMING).values_list(
        "pk", "updated", "worker"))
    if not streaming:
        return True
    if single_process():
        stale = streaming  # one process: an answer not running here is running nowhere
    else:
        # Another worker may be generating: give up on an answer once its worker is known to be
        # gone (same host), or when it has been silent for longer than any provider may be.
        cutoff = timezone.now() - timedelta(seconds=settings.CHAT_LLM_READ_TIMEOUT + 30)
        stale = [row for row in streaming if (row[2] and worker_gone(row[2])) or row[1] < cutoff]
    if stale:
        interrupted = ChatMessage.objects.filter(pk__in=[row[0] for row in stale], status=ChatMessage.Status.STREAMING)
        if interrupted.update(status=ChatMessage.Status.FAILED, error_code="interrupted",
                              error="The answer was interrupted (its server process stopped)."):
            audit.record_sync(actor=None, action="chat.answer_interrupted", target_type="chat_session",
                              target_id=str(session.pk), data={"message_ids": [row[0] for row in stale],
                                                               "workers": sorted({row[2] for row in stale})})
    return len(stale) == len(streaming)



def _title_from(content: str) -> str:
    line = " ".join(content.split())
    return line if len(line) <= TITLE_CHARS else line[:TITLE_CHARS].rsplit(" ", 1)[0] + "…"


# -- models and grounding ---------------------------------------------------------------------
def _resolve(model: str | None) -> Resolved:
    if model is not None and not isinstance(model, str):  # a socket frame's field can be anything
        raise InvalidInput("model must be a string such as 'ollama:llama3'", code="invalid_input")
    try:
        return get_registry().resolve(model)
    except LLMUnavailable as exc:
        raise Unavailable(exc.detail, code=exc.code) from None


async def models_list() -> dict:
    registry = get_registry()
    items = await registry.models()
    try:
        default = registry.resolve("").ref
    except LLMUnavailable:
        default = ""  # the default provider has no default model: the user must pick one
    return {"items": items, "count": len(items), "default": default}


async def knowledge_search(*, user, query: str) -> list[dict]:
    """Passages from the knowledge app; no knowledge app (or a failing one) means none."""
    try:
        from knowledge.services import entry_search
    except ImportError:
        return []
    try:
        found = entry_search(user=user, q=query, limit=settings.CHAT_KNOWLEDGE_PASSAGES)
        if inspect.isawaitable(found):
            found = await found
        return [p for p in found if isinstance(p, dict)]
    except Exception:
        log.warning("knowledge search failed; answering without it", exc_info=True)
        return []


async def _passages(user, resolved: Resolved, question: str, use_knowledge: bool) -> list[dict]:
    """Knowledge passages for the prompt; none for the offline provider, which retrieves its own."""
    if not use_knowledge or resolved.config.kind == "offline":
        return []
    return await knowledge_search(user=user, query=question)


def _prompt(user, resolved: Resolved, question: str, history: list[dict], passages: list[dict], use_knowledge: bool):
    """Provider, prompt messages and citations for one answer."""
    registry = get_registry()
    if resolved.config.kind == "offline":
        # The offline provider is its own retrieval: it answers with the passages themselves.
        async def retrieve(query: str) -> list[dict]:
            return await knowledge_search(user=user, query=query)

        provider = registry.provider(resolved.config.name, retrieve=retrieve if use_knowledge else None)
        return provider, [*history, {"role": "user", "content": question}], []
    messages, citations = build_prompt(
        question=question, history=history, passages=passages,
        context_tokens=resolved.config.context_tokens or settings.CHAT_LLM_CONTEXT_TOKENS,
        reply_tokens=settings.CHAT_REPLY_TOKENS, knowledge_tokens=settings.CHAT_KNOWLEDGE_TOKENS,
    )
    return registry.provider(resolved.config.name), messages, citations


# -- one-shot completions (for other apps) -----------------------------------------------------
async def completion_oneshot(*, user, prompt: str, model: str | None = None, use_knowledge: bool = True) -> dict:
    """One answer, not stored in any session: `{content, citations, model}`."""
    question = clean_content(prompt)
    resolved = _resolve(model)
    passages = await _passages(user, resolved, question, use_knowledge)
    provider, messages, citations = _prompt(user, resolved, question, [], passages, use_knowledge)
    parts: list[str] = []
    try:
        async with contextlib.aclosing(provider.stream(messages, model=resolved.model)) as stream:
            async for delta in stream:
                parts.append(delta.text)
                if delta.done and not citations:
                    citations = list(delta.citations)
    except LLMUnavailable as exc:
        raise Unavailable(exc.detail, code=exc.code) from None
    content = "".join(parts)
    await audit.record(actor=user, action="chat.oneshot", target_type="chat_model", target_id=resolved.ref,
                       data={"length": len(question), "reply_length": len(content), "use_knowledge": use_knowledge})
    return {"content": content, "citations": citations, "model": resolved.ref}


# -- export -----------------------------------------------------------------------------------
async def session_export(*, user, session_id, fmt: str = "md") -> tuple[str, str, str]:
    """(filename, content type, body) of a session as Markdown or JSON."""
    if fmt not in EXPORT_FORMATS:
        raise InvalidInput(f"unknown export format {fmt!r}; use md or json", code="invalid_format")
    session = await session_get(user=user, session_id=session_id)
    messages = [m async for m in session.messages.order_by("created", "id")]
    name = f"chat-{session.id}.{fmt}"
    if fmt == "json":
        body = {"session": session_data(session)}
        # A whole session (each answer's Markdown rendered, then one big JSON text): off the loop.
        text = await asyncio.to_thread(_json_export, body, messages)
        return name, "application/json", text
    return name, "text/markdown; charset=utf-8", await asyncio.to_thread(_markdown_export, session, messages)


def _json_export(body: dict, messages: list[ChatMessage]) -> str:
    body["messages"] = [_export_message(m) for m in messages]
    return json.dumps(body, indent=2, ensure_ascii=False)


def _export_message(message: ChatMessage) -> dict:
    data = message_data(message)
    data.pop("html")
    return data


def _markdown_call(call: dict) -> list[str]:
    arguments = json.dumps(call.get("arguments"), ensure_ascii=False)
    risk = f", {call['risk']}" if call.get("risk") else ""
    return [f"- Tool `{call.get('name')}` ({call.get('status')}{risk}): `{arguments}`", "", "  ```",
            *[f"  {line}" for line in (call.get("output") or "").splitlines()], "  ```", ""]


def _markdown_export(session: ChatSession, messages: list[ChatMessage]) -> str:
    lines = [f"# {session.title or 'Chat'}", "", f"_Exported from AutoBot on {timezone.now():%Y-%m-%d %H:%M} UTC_", ""]
    for message in messages:
        who = "You" if message.role == ChatMessage.Role.USER else "AutoBot"
        note = "" if message.status == ChatMessage.Status.COMPLETE else f" ({message.status})"
        lines += [f"## {who} · {message.created:%Y-%m-%d %H:%M}{note}", "", message.content, ""]
        for call in message.tool_calls or []:
            lines += _markdown_call(call)
        for number, cite in enumerate(message.citations or [], start=1):
            source = f" — {cite['source']}" if cite.get("source") else ""
            lines.append(f"[{number}] {cite.get('title', '')}{source}")
        if message.citations:
            lines.append("")
    return "\n".join(lines)
