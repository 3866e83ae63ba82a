from ninja import Field, Schema

from autobot.schemas import NOT_BLANK, StrictSchema


class ChatSessionIn(StrictSchema):
    title: str = Field("", max_length=200)
    model: str = Field("", max_length=200, description='"<provider>/<model>"; empty for the default')


class ChatSessionPatch(StrictSchema):
    title: str | None = Field(None, max_length=200)
    model: str | None = Field(None, max_length=200)


class ChatSessionOut(Schema):
    id: str
    title: str
    model: str
    created: str
    updated: str
    generating: bool


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
    content: str = Field(min_length=1, pattern=NOT_BLANK)
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
