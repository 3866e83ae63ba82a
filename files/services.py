"""The files area: who may see which root, and every operation on it.

Each user's area is ``FILES_ROOT/<username>/``, created on first use. Staff may name another
user's area (``area=``); for anyone else another area does not exist (404). Storage errors
become ``autobot.errors`` here, and every mutation — allowed or refused — is an audit event.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, contextmanager
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model

from autobot import audit
from autobot.errors import AppError, BadRequest, Conflict, Forbidden, InvalidInput, LimitExceeded, NotFound, Unavailable
from files import multipart, storage
from files.multipart import MultipartError, PartData, PartEnd, PartStart
from files.paths import PathRefused, validate_name
from files.storage import Download, Entry, Preview

_FIELD_LIMIT = 4096  # bytes of a plain form field (path, overwrite); files are streamed instead


@contextmanager
def _mapped():
    """Turn storage-level errors into the API's error hierarchy."""
    try:
        yield
    except PathRefused as exc:
        raise Forbidden(f"path refused: {exc.reason}", code="path_forbidden") from None
    except storage.EntryNotFound as exc:
        raise NotFound(exc.detail, code="file_not_found") from None
    except (storage.EntryExists, storage.DirectoryNotEmpty) as exc:
        raise Conflict(exc.detail, code=exc.code) from None
    except (storage.FileTooLarge, storage.QuotaExceeded) as exc:
        raise LimitExceeded(exc.detail, code=exc.code) from None
    except storage.AreaBusy as exc:
        raise Unavailable(exc.detail, code=exc.code) from None
    except storage.StorageError as exc:
        raise BadRequest(exc.detail, code=exc.code) from None
    except MultipartError as exc:
        raise BadRequest(f"malformed upload: {exc}", code="invalid_multipart") from None


# --- areas -----------------------------------------------------------------------------


def area_path(username: str) -> Path:
    """Where ``username``'s files live (not created). Also the terminal's RESTRICTED cwd."""
    try:
        validate_name(username)
    except PathRefused:
        raise Forbidden("this username cannot have a files area", code="path_forbidden") from None
    if username == storage.LOCKS_DIR:  # the areas' lock files live there (storage.area_lock_path)
        raise Forbidden("this username cannot have a files area", code="path_forbidden")
    return Path(settings.FILES_ROOT) / username


def _ensure(path: Path) -> str:
    path.mkdir(parents=True, exist_ok=True, mode=0o750)
    return str(path.resolve())


async def area_root(*, user, area: str | None = None) -> tuple[str, str]:
    """``(root directory, area name)`` for ``user`` acting on ``area`` (default: their own)."""
    own = user.get_username()
    name = area or own
    if name != own:
        exists = user.is_staff and await get_user_model().objects.filter(username=name).aexists()
        if not exists:
            raise NotFound(f"files area '{name}' not found", code="area_not_found")
    root = await asyncio.to_thread(_ensure, area_path(name))
    return root, name


# --- reading ---------------------------------------------------------------------------


async def entries_list(
    *, user, path: str | None, area: str | None = None, limit: int = 100, offset: int = 0
) -> tuple[list[Entry], int, str]:
    root, name = await area_root(user=user, area=area)
    with _mapped():
        items, count = await storage.entries_list(root, path, limit=limit, offset=offset)
    return items, count, name


async def file_download(*, user, path: str, area: str | None = None) -> Download:
    root, _ = await area_root(user=user, area=area)
    with _mapped():
        return await storage.file_open(root, path)


async def file_preview(*, user, path: str, area: str | None = None) -> Preview:
    root, _ = await area_root(user=user, area=area)
    with _mapped():
        return await storage.file_preview(root, path, pdf_max_operations=settings.KNOWLEDGE_PDF_MAX_OPERATIONS)


# --- mutations -------------------------------------------------------------------------


async def _record(*, user, action: str, area: str, path: str, ip: str | None, data: dict) -> None:
    await audit.record(actor=user, action=action, target_type="file", target_id=f"{area}:{path}", data=data, ip=ip)


async def _audited(*, user, action: str, area: str | None, path, ip: str | None, run, data: dict | None = None):
    """Run a mutation and record it either way: who, where, how big, and how it ended.

    ``run`` gets the area's root directory. The area is resolved inside, so a refused area (a
    non-staff ``?user=``) is recorded too. ``path`` may be a callable when the path is only
    known once the request body is read.
    """
    info = data if data is not None else {}
    area = area or user.get_username()

    def where() -> str:
        return path() if callable(path) else path

    try:
        root, area = await area_root(user=user, area=area)
        with _mapped():
            result = await run(root)
    except AppError as exc:
        await _record(
            user=user,
            action=action,
            area=area,
            path=where(),
            ip=ip,
            data={"area": area, "path": where(), **info, "result": exc.code},
        )
        raise
    except asyncio.CancelledError:
        # The client went away mid-request (an aborted upload); storage already cleaned up.
        await asyncio.shield(
            _record(
                user=user,
                action=action,
                area=area,
                path=where(),
                ip=ip,
                data={"area": area, "path": where(), **info, "result": "aborted"},
            )
        )
        raise
    size = sum(e.size for e in result) if isinstance(result, list) else result.size
    await _record(
        user=user,
        action=action,
        area=area,
        path=where(),
        ip=ip,
        data={"area": area, "path": where(), **info, "size": size, "result": "ok"},
    )
    return result


async def dir_make(*, user, path: str, area: str | None = None, ip: str | None = None) -> Entry:
    return await _audited(
        user=user, action="files.mkdir", area=area, path=path, ip=ip, run=lambda root: storage.dir_make(root, path)
    )


async def entry_move(
    *, user, src: str, dst: str, overwrite: bool = False, area: str | None = None, ip: str | None = None
) -> Entry:
    return await _audited(
        user=user,
        action="files.move",
        area=area,
        path=src,
        ip=ip,
        data={"to": dst, "overwrite": overwrite},
        run=lambda root: storage.entry_move(root, src, dst, overwrite=overwrite),
    )


async def entry_delete(
    *, user, path: str, recursive: bool = False, area: str | None = None, ip: str | None = None
) -> Entry:
    return await _audited(
        user=user,
        action="files.delete",
        area=area,
        path=path,
        ip=ip,
        data={"recursive": recursive},
        run=lambda root: storage.entry_delete(root, path, recursive=recursive),
    )


async def file_write(*, user, path: str, data: bytes, area: str | None = None, ip: str | None = None) -> Entry:
    """Create or replace one file with ``data`` (the operator's files_write): the upload's
    limits, quota and all-or-nothing commit apply; audited as ``files.write``."""
    folder, _, name = (path or "").strip("/").rpartition("/")

    async def run(root: str) -> Entry:
        async with storage.Upload(root, folder, overwrite=True, max_file_bytes=_limit(settings.FILES_MAX_UPLOAD_BYTES),
                                  quota_bytes=_limit(settings.FILES_USER_QUOTA_BYTES)) as upload:
            await upload.file_begin(name)
            await upload.file_write(data)
            return (await upload.commit())[0]

    return await _audited(user=user, action="files.write", area=area, path=path, ip=ip, run=run,
                          data={"bytes": len(data)})


async def file_write_target(*, user, path: str, area: str | None = None) -> str:
    """Where ``file_write(path=…)`` would put the file, as a path in the area: ``keys/authorized_keys``
    is ``.ssh/authorized_keys`` when ``keys`` links to ``.ssh``. Nothing is written; 403 when the
    write would be refused (a link out of the area, a bad name)."""
    root, _ = await area_root(user=user, area=area)
    with _mapped():
        return await asyncio.to_thread(storage.write_target, root, path)


def _limit(value: int) -> int | None:
    return value or None  # 0 in settings means "no limit"


def _parse_bool(value: str | bool | None) -> bool:
    if isinstance(value, bool) or value is None:
        return bool(value)
    lowered = value.strip().lower()
    if lowered in {"true", "1", "yes", "on"}:
        return True
    if lowered in {"false", "0", "no", "off", ""}:
        return False
    raise InvalidInput(f"overwrite must be true or false, not {value!r}", code="invalid_input")


async def files_upload(
    *,
    user,
    content_type: str | None,
    body: AsyncIterator[bytes],
    path: str | None = None,
    overwrite: bool | None = None,
    area: str | None = None,
    ip: str | None = None,
) -> list[Entry]:
    """Stream a multipart body (fields ``path``, ``overwrite``, then one or more ``files``)
    into ``path``. Query-string values win; form fields must come before the files.
    All files land, or none: a failure part-way removes every temporary file."""
    fields: dict[str, str] = {}
    names: list[str] = []

    async def run(root: str) -> list[Entry]:
        async with AsyncExitStack() as stack:
            upload: storage.Upload | None = None
            field: str | None = None
            value = bytearray()
            async for event in multipart.parse(body, multipart.boundary_from(content_type)):
                if isinstance(event, PartStart) and event.filename is not None:
                    if event.name != "files":
                        raise InvalidInput(f"unexpected file field '{event.name}'; use 'files'", code="invalid_input")
                    if upload is None:
                        upload = await stack.enter_async_context(
                            storage.Upload(
                                root,
                                path if path is not None else fields.get("path", ""),
                                overwrite=overwrite if overwrite is not None else _parse_bool(fields.get("overwrite")),
                                max_file_bytes=_limit(settings.FILES_MAX_UPLOAD_BYTES),
                                quota_bytes=_limit(settings.FILES_USER_QUOTA_BYTES),
                            )
                        )
                    if len(names) >= settings.FILES_MAX_FILES_PER_UPLOAD:
                        raise LimitExceeded(
                            f"at most {settings.FILES_MAX_FILES_PER_UPLOAD} files per upload", code="too_many_files"
                        )
                    names.append(event.filename)
                    await upload.file_begin(event.filename)
                elif isinstance(event, PartStart):
                    field, value = event.name, bytearray()
                    if upload is not None and field in {"path", "overwrite"}:
                        raise InvalidInput(f"the '{field}' field must come before the files", code="invalid_input")
                elif isinstance(event, PartData):
                    if field is None:
                        await upload.file_write(event.data)  # type: ignore[union-attr]
                    else:
                        value += event.data
                        if len(value) > _FIELD_LIMIT:
                            raise InvalidInput(f"the '{field}' field is too long", code="invalid_input")
                elif isinstance(event, PartEnd) and field is not None:
                    try:
                        fields[field] = value.decode("utf-8")
                    except UnicodeDecodeError:
                        raise InvalidInput(f"the '{field}' field must be UTF-8", code="invalid_input") from None
                    field = None
            if upload is None:
                raise InvalidInput("the upload contains no files: send them in the 'files' field", code="no_files")
            return await upload.commit()

    return await _audited(
        user=user,
        action="files.upload",
        area=area,
        ip=ip,
        data={"files": names},
        run=run,
        path=lambda: path if path is not None else fields.get("path", ""),
    )
