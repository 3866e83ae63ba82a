"""`manage.py backup` then `manage.py restore` into an empty instance brings back the audit chain
(verify_audit passes, head included), the knowledge entries and the files."""

import json
import os
import subprocess
import sys
import uuid

import pytest
from asgiref.sync import async_to_sync
from django.core.management import call_command

from autobot import audit
from autobot.testing import ROOT
from knowledge.services import entry_create

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(180)]


def manage(env: dict, *args: str) -> subprocess.CompletedProcess:
    """A management command in a process of its own, configured only by `env` (a fresh instance)."""
    full = {k: v for k, v in os.environ.items() if k not in ("AUTOBOT_SECRET_KEY", "AUTOBOT_AUDIT_KEY", "REDIS_URL")}
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env={**full, **env},
                          capture_output=True, text=True, timeout=120)


def populate(owner, files_root):
    async_to_sync(entry_create)(user=owner, title="Backup drill", content="Restore into an empty instance.")
    audit.record_sync(actor=owner, action="test.before_backup", data={"n": 1})
    (files_root / "owner" / "docs").mkdir(parents=True)
    (files_root / "owner" / "docs" / "report.txt").write_text("quarterly numbers\n")
    (files_root / "owner" / ".autobot-upload-0123456789abcdef-1@h.part").write_bytes(b"in flight")


def backup_then_restore(owner, settings, tmp_path, fresh_database_url):
    populate(owner, settings.FILES_ROOT)
    dest = tmp_path / "backup"
    call_command("backup", str(dest))
    manifest = json.loads((dest / "manifest.json").read_text())
    assert manifest["audit_head"] and manifest["audit_rows"] >= 2

    fresh = tmp_path / "fresh"
    env = {"DATABASE_URL": fresh_database_url, "AUTOBOT_VAR_DIR": str(fresh),
           "AUTOBOT_FILES_ROOT": str(fresh / "files")}
    if os.environ.get("AUTOBOT_SECRET_KEY"):  # the key came from the environment: the new instance has it too
        env["AUTOBOT_SECRET_KEY"] = os.environ["AUTOBOT_SECRET_KEY"]
    restored = manage(env, "restore", str(dest))
    assert restored.returncode == 0, restored.stderr
    assert f"--expect-head {manifest['audit_head']}" in restored.stdout

    verified = manage(env, "verify_audit", "--expect-head", manifest["audit_head"])
    assert verified.returncode == 0, verified.stderr
    assert f"{manifest['audit_rows']} rows verified" in verified.stdout
    entry = manage(env, "shell", "--no-imports", "-c", "from knowledge.models import KnowledgeEntry as K; "
                   "e = K.objects.get(title='Backup drill'); print(e.owner.username, '|', e.content)")
    assert entry.stdout.strip() == "owner | Restore into an empty instance.", entry.stderr
    area = fresh / "files" / "owner"
    assert (area / "docs" / "report.txt").read_text() == "quarterly numbers\n"
    assert [p.name for p in area.iterdir()] == ["docs"]  # the upload in flight was not backed up

    again = manage(env, "restore", str(dest))  # the instance is no longer empty
    assert again.returncode != 0 and "restore into an empty instance" in again.stderr


def test_a_backup_restores_into_an_empty_instance(owner, settings, tmp_path):
    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.sqlite3":
        pytest.skip("the PostgreSQL variant is test_a_backup_restores_into_an_empty_postgres_database")
    backup_then_restore(owner, settings, tmp_path, f"sqlite:///{tmp_path / 'fresh' / 'autobot.sqlite3'}")


@pytest.mark.postgres
def test_a_backup_restores_into_an_empty_postgres_database(owner, settings, tmp_path):
    import psycopg

    db = settings.DATABASES["default"]
    name = f"{db['NAME']}_restore_{uuid.uuid4().hex[:6]}"
    conninfo = dict(host=db.get("HOST") or "127.0.0.1", port=db.get("PORT") or 5432, user=db.get("USER") or "postgres",
                    password=db.get("PASSWORD") or None, dbname="postgres", autocommit=True)
    with psycopg.connect(**conninfo) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        auth = conninfo["user"] + (f":{conninfo['password']}" if conninfo["password"] else "")
        backup_then_restore(owner, settings, tmp_path, f"postgres://{auth}@{conninfo['host']}:{conninfo['port']}/{name}")
    finally:
        with psycopg.connect(**conninfo) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_a_damaged_backup_is_refused_before_anything_is_restored(owner, settings, tmp_path):
    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.sqlite3":
        pytest.skip("the database part is checked the same way on PostgreSQL")
    populate(owner, settings.FILES_ROOT)
    dest = tmp_path / "backup"
    call_command("backup", str(dest))
    with open(dest / "files.tar", "r+b") as tar:
        tar.seek(600)
        tar.write(b"tampered")
    fresh = tmp_path / "fresh"
    result = manage({"DATABASE_URL": f"sqlite:///{fresh / 'db.sqlite3'}", "AUTOBOT_VAR_DIR": str(fresh),
                     "AUTOBOT_FILES_ROOT": str(fresh / "files")}, "restore", str(dest))
    assert result.returncode != 0 and "files.tar does not match its checksum" in result.stderr
    assert not (fresh / "files").exists()


def test_a_symlink_out_of_an_area_is_kept_as_a_link_and_not_restored(tmp_path):
    from autobot.backup import _tar_create, _tar_extract

    area = tmp_path / "files" / "eve"
    area.mkdir(parents=True)
    (area / "mine.txt").write_text("mine")
    os.symlink("/etc/passwd", area / "passwd")  # made from a terminal: it must not come back
    _tar_create(tmp_path / "files", tmp_path / "files.tar")
    skipped = _tar_extract(tmp_path / "files.tar", tmp_path / "restored")
    assert skipped == ["./eve/passwd"]
    assert (tmp_path / "restored" / "eve" / "mine.txt").read_text() == "mine"
    assert not os.path.lexists(tmp_path / "restored" / "eve" / "passwd")
