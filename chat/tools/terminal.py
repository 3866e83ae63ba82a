"""terminal_run: one command line typed into a visible terminal session of the user's.

The session is opened on the first command (at the user's operator policy level, RESTRICTED by
default) and reused after, whichever worker runs it; it shows on the Terminal page like any
other, and the line passes the same hook, rating, recording and audit as typed input, marked as
the operator's.
"""

from __future__ import annotations

from django.conf import settings

from chat.tools.base import Rating, Tool, ToolContext, ToolResult, schema

ACTOR = "operator"


async def _rate(user, args: dict, context: ToolContext) -> Rating:
    from terminal.services.commands import assess_text

    assessment = await assess_text(args["command"])
    return Rating(assessment.risk.name, tuple(assessment.reasons), args["command"], args.get("cwd") or "")


async def _terminal(user, context: ToolContext) -> str:
    """The operator's live terminal session id, opened when there is none."""
    from chat.operator.policy import policy_get
    from terminal import services

    # Live here or on another worker (the line is then typed there, through the relay).
    if context.terminal_session_id and await services.session_reachable(user=user,
                                                                        session_id=context.terminal_session_id):
        return str(context.terminal_session_id)
    policy = await policy_get(user=user)
    session = await services.session_open(user=user, title="Operator (chat)", security_level=policy.terminal_level,
                                          client_ip=context.client_ip)
    context.terminal_session_id = str(session.pk)
    if context.remember_terminal is not None:
        await context.remember_terminal(str(session.pk))
    return str(session.pk)


def _quote(path: str) -> str:
    return "'" + path.replace("'", "'\\''") + "'"


async def _unasked(user) -> str:
    """The highest rating the owner's policy runs without asking: what a function or alias the
    line runs may do too (the line itself may be rated higher, once approved)."""
    from chat.models import OperatorPolicy
    from chat.operator.policy import action_for, policy_get

    policy = await policy_get(user=user)
    unasked = "SAFE"
    for risk in ("SAFE", "MODERATE", "HIGH"):  # up to the first that waits or is refused
        if action_for(policy, risk) != OperatorPolicy.Action.RUN:
            break
        unasked = risk
    return unasked


async def _run(user, args: dict, context: ToolContext) -> ToolResult:
    from terminal import services

    session_id = await _terminal(user, context)
    typed = {"user": user, "session_id": session_id, "actor": ACTOR, "correlation_id": context.correlation_id,
             "timeout": settings.OPERATOR_COMMAND_SECONDS, "on_output": context.on_output,
             "stop_reason": context.stop_reason, "clearance": await _unasked(user)}
    if args.get("cwd"):
        moved = await services.command_type(command=f"cd -- {_quote(args['cwd'])}", **typed)
        if moved["blocked"] or moved["exit_code"]:
            return ToolResult(ok=False, output=moved["output"] or f"cannot change to {args['cwd']}",
                              exit_code=moved["exit_code"], data={"terminal_session_id": session_id})
    ran = await services.command_type(command=args["command"], **typed)
    data = {"terminal_session_id": session_id, "record_id": ran["record_id"]}
    if ran["blocked"]:
        return ToolResult(ok=False, output=f"blocked by the terminal: {ran['reason']}", data=data)
    output = ran["output"]
    if ran["timed_out"]:
        output += f"\n[interrupted: still running after {settings.OPERATOR_COMMAND_SECONDS:g} seconds]"
    return ToolResult(ok=ran["exit_code"] == 0, output=output, exit_code=ran["exit_code"], data=data)


TOOLS = [
    Tool(
        name="terminal_run",
        description=("Run one shell command line in the user's terminal (bash, in the user's files area) and "
                     "return its output and exit code. Risky commands wait for the user's approval."),
        # No control characters: typed into readline, Ctrl-A, Tab and the like would edit the
        # line into something other than what was rated and approved.
        schema=schema({"command": {"type": "string", "minLength": 1, "maxLength": 8000,
                                   "pattern": "^[^\\u0000-\\u001f\\u007f]+$"},
                       "cwd": {"type": "string", "maxLength": 1000, "pattern": "^[^\\u0000-\\u001f\\u007f]*$",
                               "description": "folder to run in, relative to the files area"}}, ("command",)),
        run=_run,
        rate=_rate,
    ),
]
