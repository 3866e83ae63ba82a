"""Backup and restore of an instance: its database, its files area, its terminal recordings.

A backup is a folder:

    manifest.json       what is in it, the audit chain's head at backup time, a SHA-256 per part
    database.sqlite3    SQLite: a consistent copy taken with SQLite's online backup API
    database.pgdump     PostgreSQL: `pg_dump --format=custom` (one consistent snapshot)
    files.tar           AUTOBOT_FILES_ROOT (uploads in flight and lock files left out)
    recordings.tar      AUTOBOT_TERMINAL_RECORDINGS_DIR, when it exists
    secret_key          var/secret_key, when the key lives there (the audit chain is keyed with it)

Both commands are for an operator at a shell: synchronous, and loud when something is wrong. The
database copy is consistent in itself; files and recordings are read after it, so a file uploaded
during the backup may be in the tar without its audit row, never the other way round in a way
that breaks the chain. Restore goes into an empty instance (refused otherwise unless `force`),
and `verify_audit --expect-head <head>` then proves the chain came back whole.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import tarfile
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings
from django.db import connection

FORMAT = 1
SKIP_PREFIXES = (".autobot-upload-", ".autobot-locks")  # files.storage.TEMP_PREFIX, LOCKS_DIR


class BackupError(Exception):
    pass


# -- database


def _pg_args(db: dict) -> tuple[list[str], dict]:
    args = ["-h", db.get("HOST") or "127.0.0.1", "-p", str(db.get("PORT") or 5432), "-U", db.get("USER") or "postgres"]
    env = {**os.environ, **({"PGPASSWORD": db["PASSWORD"]} if db.get("PASSWORD") else {})}
    return args, env


def _run(argv: list[str], env: dict) -> None:
    result = subprocess.run(argv, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise BackupError(f"{argv[0]} failed ({result.returncode}): {result.stderr.strip()[-2000:]}")


def _database_dump(dest: Path) -> str:
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        target = dest / "database.sqlite3"
        source = sqlite3.connect(db["NAME"])
        copy = sqlite3.connect(target)
        try:
            source.backup(copy)  # pages copied under SQLite's locks: consistent while workers write
        finally:
            copy.close()
            source.close()
        return target.name
    target = dest / "database.pgdump"
    args, env = _pg_args(db)
    _run(["pg_dump", "--format=custom", "--no-owner", "--file", str(target), *args, db["NAME"]], env)
    return target.name


def _database_load(source: Path) -> None:
    db = connection.settings_dict
    connection.close()
    if source.suffix == ".sqlite3":
        if connection.vendor != "sqlite":
            raise BackupError("this backup holds an SQLite database; DATABASE_URL names PostgreSQL")
        backup = sqlite3.connect(source)
        target = sqlite3.connect(db["NAME"])
        try:
            backup.backup(target)
        finally:
            target.close()
            backup.close()
        return
    if connection.vendor != "postgresql":
        raise BackupError("this backup holds a PostgreSQL dump; DATABASE_URL names SQLite")
    args, env = _pg_args(db)
    _run(["pg_restore", "--clean", "--if-exists", "--no-owner", "--single-transaction", "--exit-on-error",
          *args, "--dbname", db["NAME"], str(source)], env)


def database_is_empty() -> bool:
    from django.contrib.auth import get_user_model

    from autobot.models import AuditEvent

    tables = set(connection.introspection.table_names())
    if AuditEvent._meta.db_table in tables and AuditEvent.objects.exists():
        return False
    user_table = get_user_model()._meta.db_table
    return not (user_table in tables and get_user_model().objects.exists())


# -- folders


def _skip(member: tarfile.TarInfo) -> tarfile.TarInfo | None:
    return None if Path(member.name).name.startswith(SKIP_PREFIXES) else member


def _tar_create(folder: Path, target: Path) -> None:
    with tarfile.open(target, "w") as tar:
        tar.add(folder, arcname=".", filter=_skip)  # symlinks are stored as links, never followed


def _tar_extract(source: Path, folder: Path) -> list[str]:
    """Extract with tarfile's `data` filter: nothing lands outside `folder`, no device files, no
    set-uid bits. Members it refuses (a user's symlink to /etc made from the terminal) are
    skipped and named, not fatal."""
    skipped: list[str] = []

    def data_only(member: tarfile.TarInfo, path: str) -> tarfile.TarInfo | None:
        try:
            return tarfile.data_filter(member, path)
        except tarfile.FilterError:
            skipped.append(member.name)
            return None

    folder.mkdir(parents=True, exist_ok=True)
    with tarfile.open(source) as tar:
        tar.extractall(folder, filter=data_only)
    return skipped


def _is_empty(folder: Path) -> bool:
    return not folder.exists() or not any(p for p in folder.iterdir() if not p.name.startswith(SKIP_PREFIXES))


# -- the two operations


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def _key_in_var_dir() -> Path | None:
    path = Path(settings.VAR_DIR) / "secret_key"
    return path if not os.environ.get("AUTOBOT_SECRET_KEY") and path.exists() else None


def backup_create(dest: Path) -> dict:
    """Write a backup of this instance into the new folder `dest`; returns the manifest."""
    from autobot.audit import verify

    if dest.exists() and any(dest.iterdir()):
        raise BackupError(f"{dest} is not empty; give a new folder")
    dest.mkdir(parents=True, exist_ok=True, mode=0o700)
    report = verify()  # the head before the dump: the dump holds it (and maybe later rows)
    if not report.ok:
        raise BackupError(f"the audit chain is already broken here: {report.problem}")
    parts = [_database_dump(dest)]
    for name, folder in (("files.tar", Path(settings.FILES_ROOT)), ("recordings.tar",
                                                                   Path(settings.TERMINAL_RECORDINGS_DIR))):
        if folder.is_dir():
            _tar_create(folder, dest / name)
            parts.append(name)
    key = _key_in_var_dir()
    if key is not None:
        shutil.copyfile(key, dest / "secret_key")
        os.chmod(dest / "secret_key", 0o600)
        parts.append("secret_key")
    manifest = {
        "format": FORMAT, "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "database": connection.vendor, "audit_rows": report.checked, "audit_head": report.head,
        "parts": {name: _sha256(dest / name) for name in parts},
    }
    (dest / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def backup_restore(source: Path, *, force: bool = False) -> dict:
    """Restore the backup folder `source` into this (empty) instance; returns its manifest and
    the names of archive members that were refused."""
    try:
        manifest = json.loads((source / "manifest.json").read_text())
    except (OSError, ValueError) as exc:
        raise BackupError(f"{source} is not a backup: no readable manifest.json ({exc})") from None
    if manifest.get("format") != FORMAT:
        raise BackupError(f"backup format {manifest.get('format')!r} is not {FORMAT}")
    for name, digest in manifest["parts"].items():
        if _sha256(source / name) != digest:
            raise BackupError(f"{name} does not match its checksum in manifest.json: the backup is damaged")
    files_root, recordings = Path(settings.FILES_ROOT), Path(settings.TERMINAL_RECORDINGS_DIR)
    if not force:
        if not database_is_empty():
            raise BackupError("the database already has users or audit events; restore into an empty instance "
                              "(or pass --force to replace it)")
        for folder in (files_root, recordings):
            if not _is_empty(folder):
                raise BackupError(f"{folder} is not empty; restore into an empty instance (or pass --force)")
    database = next(name for name in manifest["parts"] if name.startswith("database."))
    _database_load(source / database)
    skipped = []
    if "files.tar" in manifest["parts"]:
        skipped += _tar_extract(source / "files.tar", files_root)
    if "recordings.tar" in manifest["parts"]:
        skipped += _tar_extract(source / "recordings.tar", recordings)
    if "secret_key" in manifest["parts"] and not os.environ.get("AUTOBOT_SECRET_KEY"):
        target = Path(settings.VAR_DIR) / "secret_key"
        temp = target.with_name(".secret_key.restore")
        shutil.copyfile(source / "secret_key", temp)
        os.chmod(temp, 0o600)
        os.replace(temp, target)
    return {**manifest, "skipped": skipped}
