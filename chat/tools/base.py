"""What a tool is, independent of who calls it (the chat's operator today; MCP and A2A later).

A tool is a name, a description, a JSON schema for its arguments, a rating function (how risky
this particular call is, decided by rules, never by the caller) and `run(user, args, context)`.
Every tool acts as `user` and goes through that user's services, so their permissions apply.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import jsonschema
from referencing import Registry

from autobot.errors import InvalidInput

RISKS = ("SAFE", "MODERATE", "HIGH", "DANGEROUS")


@dataclass(frozen=True)
class Rating:
    risk: str  # one of RISKS
    reasons: tuple[str, ...] = ()
    subject: str = ""  # what an approval shows: the exact command, or what a write does
    cwd: str = ""


@dataclass
class ToolContext:
    """Who and what a call belongs to: carried into records so the trail can be followed."""

    user: Any
    correlation_id: str = ""
    chat_session_id: str = ""
    call_id: str = ""
    client_ip: str | None = None
    # Where the operator types (a terminal session id), remembered across calls and turns.
    terminal_session_id: str | None = None
    remember_terminal: Callable[[str], Awaitable[None]] | None = None
    # Live output while the call runs (the terminal's, as it comes), for watchers.
    on_output: Callable[[str], Awaitable[None]] | None = None
    # Why a cancel of this call stops it, when the caller knows ("the A2A task was cancelled"):
    # the terminal says it on what it refuses of a stopped line. Empty: the operator's stop.
    stop_reason: str = ""


@dataclass
class ToolResult:
    ok: bool
    output: str
    exit_code: int | None = None
    data: dict = field(default_factory=dict)  # ids for the trail: record_id, message_id, path


Rate = Callable[[Any, dict, ToolContext], Awaitable[Rating]]
Run = Callable[[Any, dict, ToolContext], Awaitable[ToolResult]]
# "$ref"s resolve inside the schema only: jsonschema's default would fetch any http:// or
# file:// URL a schema names (blocking, and quoting what it read in its error messages).
NO_RETRIEVAL = Registry()


async def rate_safe(user, args: dict, context: ToolContext) -> Rating:
    return Rating("SAFE", (), "")


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    schema: dict
    run: Run
    rate: Rate = rate_safe
    # False for a schema someone else wrote (an external MCP server's): shown to the model, but
    # not run here, where its "$ref"s and regular expressions would be ours to follow and match.
    # The server that wrote it checks its own arguments.
    checked: bool = True

    def validate(self, args: Any) -> dict:
        """The arguments, checked against the schema; InvalidInput (which the model sees) if not."""
        if not isinstance(args, dict):
            raise InvalidInput("the arguments must be a JSON object", code="invalid_arguments")
        if not self.checked:
            return args
        validator = jsonschema.Draft202012Validator(self.schema, registry=NO_RETRIEVAL)
        error = jsonschema.exceptions.best_match(validator.iter_errors(args))
        if error is not None:
            where = "/".join(str(p) for p in error.absolute_path) or "arguments"
            raise InvalidInput(f"{where}: {error.message}", code="invalid_arguments")
        return args

    def spec(self) -> dict:
        """The OpenAI-style function declaration (Ollama takes the same shape)."""
        return {"type": "function", "function": {"name": self.name, "description": self.description,
                                                 "parameters": self.schema}}


def truncate(text: str, limit: int) -> str:
    """At most `limit` characters, with a note saying how much was left out."""
    if len(text) <= limit:
        return text
    head = limit * 3 // 4
    tail = limit - head
    dropped = len(text) - head - tail
    return f"{text[:head]}\n[… {dropped} characters left out: the output was truncated …]\n{text[-tail:]}"


def schema(properties: dict, required: tuple[str, ...] = ()) -> dict:
    # additionalProperties false: a model cannot smuggle "approved": true or similar in.
    return {"type": "object", "properties": properties, "required": list(required), "additionalProperties": False}
