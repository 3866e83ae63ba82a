from ninja import Field, Schema

from autobot.schemas import NOT_BLANK, StrictSchema


class ChatSessionIn(StrictSchema):
    title: str = Field("", max_length=200)
    model: str = Field("", max_length=200, description='"<provider>/<model>"; empty for the default')


class ChatSessionPatch(StrictSchema):
    title: str | None = Field(None, max_length=200)
    model: str | None = Field(None, max_length=200)
    tools: bool | None = Field(None, description="let answers call tools (the operator); 422 with the offline provider")


class ChatSessionOut(Schema):
    id: str
    title: str
    model: str
    created: str
    updated: str
    generating: bool
    tools: bool = Field(False, description="whether answers in this session may call tools")
    operator_terminal: str | None = Field(None, description="the terminal session the operator types into")


class ChatSessionFilters(Schema):
    """The session list's query parameters: the view's, the OpenAPI document's, and the token
    check's guess of them (autobot/prefetch.py), from this one place."""

    q: str = ""
    limit: int = 50
    offset: int = 0


class ChatSessionList(Schema):
    items: list[ChatSessionOut]
    count: int


class Citation(Schema):
    entry_id: int | str | None = None
    title: str = ""
    source: str = ""
    snippet: str = ""


class ChatMessageIn(StrictSchema):
    # The length limit is a setting, checked in the service so REST and WebSocket agree.
    content: str | None = Field(None, min_length=1, pattern=NOT_BLANK,
                                description="the question; required unless regenerate is true")
    regenerate: bool = Field(False, description="answer the session's last question again: a new answer is "
                                                "stored beside the earlier ones, the question is not repeated")
    use_knowledge: bool = True
    model: str | None = Field(None, max_length=200)


class ChatMessageOut(Schema):
    id: int
    session_id: str
    role: str
    content: str
    html: str = Field(description="the content rendered as sanitized HTML (assistant messages)")
    status: str = Field(description="streaming | complete | cancelled | failed")
    citations: list[Citation]
    model: str
    prompt_tokens: int | None
    completion_tokens: int | None
    first_token_ms: int | None
    total_ms: int | None
    error_code: str
    error: str
    tool_calls: list["ChatToolCallOut"] = Field(default_factory=list, description="the operator's calls in this answer")
    correlation_id: str = Field("", description="the turn's id, shared by its trail")
    created: str


class ChatMessageList(Schema):
    items: list[ChatMessageOut]
    count: int


class ModelOut(Schema):
    id: str = Field(description='"<provider>/<model>", what sessions store')
    provider: str
    kind: str
    model: str
    default: bool
    available: bool
    error: str | None = None


class ModelList(Schema):
    items: list[ModelOut]
    count: int
    default: str


class CancelOut(Schema):
    cancelled: bool = Field(description="false when no answer was being generated")


class ChatToolCallOut(Schema):
    id: str
    name: str
    arguments: dict | str = Field(description="the parsed arguments, or the model's text when it was malformed")
    status: str = Field(description="running | awaiting_approval | done | denied | failed | cancelled")
    risk: str | None = None
    reasons: list[str] = []
    output: str = ""
    ok: bool | None = None
    exit_code: int | None = None
    approval_id: str | None = None
    started: str | None = None
    data: dict = {}


ChatMessageOut.model_rebuild()


class ChatApprovalOut(Schema):
    id: str
    call_id: str
    tool: str
    command: str = Field(description="the exact command (or what a write does)")
    cwd: str
    risk: str
    reasons: list[str]
    status: str = Field(description="pending | approved | denied | expired | used")
    expires: str = Field(description="pending: the decision's deadline; approved: the call's (it must run by then)")
    message_id: int
    reason: str


class ChatApprovalList(Schema):
    items: list[ChatApprovalOut]
    count: int


class ChatApprovalDecisionIn(StrictSchema):
    decision: str = Field(pattern="^(approve|deny)$")
    reason: str = Field("", max_length=500)


class ChatTrailOut(Schema):
    correlation_id: str
    items: list[dict] = Field(description="{kind: message|tool_call|approval|command|agent_message|audit, at, …}")
    count: int
