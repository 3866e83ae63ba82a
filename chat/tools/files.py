"""files_list, files_read and files_write: the user's own files area, through files' services.

A write is rated by where it lands and how big it is: the area is also the terminal's home, so
a write to a dotfile (`.bashrc`, `.ssh/…`) changes what the user's shells run and is HIGH.
"""

from __future__ import annotations

import asyncio
import difflib
import json
import posixpath

from django.conf import settings

from autobot.errors import AppError
from chat.tools.base import Rating, Tool, ToolContext, ToolResult, schema

PATH = {"type": "string", "maxLength": 1000}
DIFF_CONTEXT = 3


async def _list(user, args: dict, context: ToolContext) -> ToolResult:
    from files import services

    entries, count, _ = await services.entries_list(user=user, path=args.get("path") or "", limit=200)
    items = [{"name": e.name, "path": e.path, "type": e.type, "size": e.size, "modified": e.modified.isoformat()}
             for e in entries]
    return ToolResult(ok=True, output=json.dumps({"entries": items, "count": count}, ensure_ascii=False))


async def _read_text(user, path: str) -> str | None:
    """The file's text, or None when it does not exist; InvalidInput-like errors pass through."""
    from files import services

    try:
        preview = await services.file_preview(user=user, path=path)
    except AppError as exc:
        if exc.status == 404:
            return None
        raise
    if preview.kind != "text":
        raise AppError(f"'{path}' is not a text file", code="not_text", status=422)
    return preview.text + ("\n[… truncated: only the start of the file is shown …]" if preview.truncated else "")


async def _read(user, args: dict, context: ToolContext) -> ToolResult:
    text = await _read_text(user, args["path"])
    if text is None:
        return ToolResult(ok=False, output=f"'{args['path']}' does not exist")
    return ToolResult(ok=True, output=text, data={"path": args["path"]})


def _is_sensitive(path: str) -> bool:
    # ".." is not hidden, just refused by the files service when the call runs.
    return any(part.startswith(".") for part in posixpath.normpath(path).split("/") if part not in ("", ".", ".."))


async def _rate_write(user, args: dict, context: ToolContext) -> Rating:
    path, size = args["path"], len(args["content"].encode())
    real = await _lands_at(user, path)
    where = path if real == path else f"{path} (resolves to {real})"
    subject = f"write {size} bytes to {where}"
    if _is_sensitive(path) or _is_sensitive(real):
        return Rating("HIGH", (f"{where}: a hidden file or folder (shell start-up files, keys and settings live "
                               "there)",), subject)
    if size > settings.OPERATOR_WRITE_HIGH_BYTES:
        return Rating("HIGH", (f"{path}: {size} bytes is more than {settings.OPERATOR_WRITE_HIGH_BYTES}",), subject)
    return Rating("MODERATE", (f"{path}: writes a file in your area",), subject)


async def _lands_at(user, path: str) -> str:
    """The path the write really lands at: a symlinked folder in the area (`ln -s .ssh keys`) is
    followed, as the write follows it. A path the write will refuse is rated as typed."""
    from files import services

    try:
        return await services.file_write_target(user=user, path=path)
    except AppError:
        return path


async def _write(user, args: dict, context: ToolContext) -> ToolResult:
    from files import services

    path, content = args["path"], args["content"]
    before = await _read_text(user, path)
    entry = await services.file_write(user=user, path=path, data=content.encode(), ip=context.client_ip)
    diff = await asyncio.to_thread(_diff, before, content, path)
    note = "created" if before is None else "changed"
    return ToolResult(ok=True, output=f"{path} {note} ({entry.size} bytes)\n{diff}", data={"path": path})


def _diff(before: str | None, after: str, path: str) -> str:
    lines = difflib.unified_diff((before or "").splitlines(keepends=True), after.splitlines(keepends=True),
                                 fromfile="/dev/null" if before is None else f"a/{path}", tofile=f"b/{path}",
                                 n=DIFF_CONTEXT)
    return "".join(lines)


TOOLS = [
    Tool(
        name="files_list",
        description="List a folder of the user's files area (the area's top when path is empty).",
        schema=schema({"path": PATH}),
        run=_list,
    ),
    Tool(
        name="files_read",
        description="Read a text file of the user's files area (the first 64 KiB).",
        schema=schema({"path": {**PATH, "minLength": 1}}, ("path",)),
        run=_read,
    ),
    Tool(
        name="files_write",
        description="Create or replace a text file in the user's files area; returns a unified diff.",
        schema=schema({"path": {**PATH, "minLength": 1}, "content": {"type": "string", "maxLength": 4 * 1024 * 1024}},
                      ("path", "content")),
        run=_write,
        rate=_rate_write,
    ),
]
