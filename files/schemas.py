from datetime import datetime

from ninja import Field, Schema

from autobot.schemas import StrictSchema


class FileEntryOut(Schema):
    name: str
    path: str = Field(description="relative to the area root, '/'-separated")
    type: str = Field(description="dir | file | symlink | other")
    size: int
    modified: datetime
    mime_type: str


class FileListOut(Schema):
    items: list[FileEntryOut]
    count: int
    path: str
    area: str = Field(description="whose files area this is (a username)")


class MkdirIn(StrictSchema):
    path: str = Field(max_length=4096, examples=["docs/2024"])


class MoveIn(StrictSchema):
    src: str = Field(min_length=1, max_length=4096, examples=["docs/old.txt"])
    dst: str = Field(
        min_length=1, max_length=4096, description="the full new path, not a folder to move into",
        examples=["archive/new.txt"],
    )
    overwrite: bool = False


class UploadOut(Schema):
    items: list[FileEntryOut]
    count: int


class PreviewOut(Schema):
    kind: str = Field(description="text | image | none (metadata only)")
    entry: FileEntryOut
    text: str | None = None
    encoding: str | None = Field(None, description="the text's encoding; 'pdf-text' for text extracted from a PDF")
    truncated: bool = False
    url: str | None = Field(None, description="for images: the inline image URL")
