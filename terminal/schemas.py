from datetime import datetime
from typing import Literal

from ninja import Field, Schema

from autobot.schemas import NOT_BLANK, JsonInt, StrictSchema

LevelName = Literal["STANDARD", "ELEVATED", "RESTRICTED"]
SignalName = Literal["SIGINT", "SIGTERM", "SIGKILL", "SIGSTOP", "SIGCONT"]


class TerminalSessionIn(StrictSchema):
    title: str = Field("", max_length=200, examples=["deploy checks"])
    security_level: LevelName = Field(
        "RESTRICTED", description="non-staff users may only use RESTRICTED", examples=["RESTRICTED"]
    )
    cols: JsonInt = Field(80, ge=1, le=1000)
    rows: JsonInt = Field(24, ge=1, le=500)


class TerminalSessionPatch(StrictSchema):
    title: str | None = Field(None, max_length=200, examples=["renamed"])
    security_level: LevelName | None = Field(
        None, description="stricter at any time; less strict only for staff", examples=["RESTRICTED"]
    )


class TerminalSessionOut(Schema):
    id: str
    title: str
    owner: str
    security_level: str
    status: str = Field(description="running | detached | ended")
    cwd: str
    cols: int
    rows: int
    created: datetime
    ended: datetime | None
    exit_code: int | None
    end_reason: str
    attached: int = Field(description="WebSockets attached now")
    foreground: str | None = Field(description="the program in the foreground, if not the shell")
    grace_ends: datetime | None = Field(
        None, description="detached sessions: when the session ends unless a socket reattaches"
    )
    websocket: str = Field(description="path of the session's WebSocket")
    recording: str = Field(description="path of the asciicast v2 recording")


class TerminalSessionList(Schema):
    items: list[TerminalSessionOut]
    count: int


class AssessIn(StrictSchema):
    command: str = Field(max_length=65536, examples=["rm -rf /", "echo test", "sudo apt-get install nginx"])
    security_level: LevelName | None = Field(None, description="only this level's verdict")


class VerdictOut(Schema):
    blocked: bool
    warn: bool
    reason: str | None


class AssessOut(Schema):
    risk: str = Field(examples=["DANGEROUS"])
    reasons: list[str]
    commands: list[str]
    parsed: bool
    verdicts: dict[str, VerdictOut] = Field(description="level name → what that level does with the line")


class ExecuteIn(StrictSchema):
    command: str = Field(min_length=1, max_length=65536, pattern=NOT_BLANK, examples=["ls -la", "df -h"])
    cwd: str | None = Field(None, description="inside your files area; default: the session's folder")
    timeout: float | None = Field(None, gt=0, description="seconds, capped by TERMINAL_EXECUTE_TIMEOUT")


class ExecuteOut(Schema):
    exit_code: int | None = Field(description="null when blocked or timed out")
    output: str = Field(description="stdout and stderr, capped")
    risk: str
    reasons: list[str]
    blocked: bool
    duration_ms: float
    reason: str | None = None
    timed_out: bool = False
    truncated: bool = False
    record_id: int | None = None


class InputIn(StrictSchema):
    text: str = Field(examples=["ls\r"])
    is_password: bool = Field(False, description="never written to logs or recordings")


class SignalIn(StrictSchema):
    signal: SignalName = Field(examples=["SIGINT"])


class SignalOut(Schema):
    signal: str
    process_group: int | None
    program: str | None


class CommandOut(Schema):
    id: int
    session_id: str | None
    user: str
    source: str = Field(description="interactive | execute")
    security_level: str
    command: str
    risk: str
    reasons: list[str]
    blocked: bool
    warned: bool
    exit_code: int | None
    cwd: str
    started: datetime
    finished: datetime | None
    client_ip: str | None
    actor: str = Field("", description='"operator" when the chat\'s operator typed it; blank for the user')
    correlation_id: str = Field("", description="the chat turn it belongs to (see the chat's trail)")


class CommandList(Schema):
    items: list[CommandOut]
    count: int


class LevelOut(Schema):
    name: str
    description: str
    blocks: list[str]
    warns: list[str]
    blocks_unparsed: bool
    blocks_traits: list[str]


class InfoOut(Schema):
    version: str
    levels: list[LevelOut]
    risk_levels: list[str]
    default_level: str
    your_max_level: str
    limits: dict[str, float]
    endpoints: list[str]
    websocket: str
