import asyncio
import concurrent.futures

import pytest
from asgiref.sync import async_to_sync
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from autobot import audit
from autobot.models import AuditEvent

pytestmark = pytest.mark.django_db(transaction=True)


def _write_many(actor, n_threads=8, per_thread=15):
    def work(i):
        for j in range(per_thread):
            async_to_sync(audit.record)(actor=actor, action="test.concurrent", target_id=f"{i}-{j}", data={"i": i})
        connection.close()

    with concurrent.futures.ThreadPoolExecutor(n_threads) as pool:
        list(pool.map(work, range(n_threads)))


def _assert_one_valid_chain(expected):
    report = audit.verify()
    assert report.ok, report.problem
    assert report.checked == expected
    hashes = list(AuditEvent.objects.order_by("id").values_list("prev_hash", "hash"))
    assert len({h for _, h in hashes}) == expected
    assert all(prev == hashes[i - 1][1] for i, (prev, _) in enumerate(hashes) if i)


def test_concurrent_writers_produce_one_valid_chain(owner):
    _write_many(owner)
    _assert_one_valid_chain(8 * 15)


@pytest.mark.postgres
def test_concurrent_writers_produce_one_valid_chain_on_postgres(owner):
    assert connection.vendor == "postgresql"
    _write_many(owner)
    _assert_one_valid_chain(8 * 15)


async def test_concurrent_async_records(owner):
    await asyncio.gather(*(audit.record(actor=owner, action="test.async", data={"n": n}) for n in range(40)))
    report = await asyncio.to_thread(audit.verify)
    assert report.ok and report.checked == 40


def test_verify_audit_catches_an_edited_row(owner, capsys):
    for n in range(5):
        audit.record_sync(actor=owner, action="test.edit", data={"n": n})
    call_command("verify_audit")
    assert "5 rows verified" in capsys.readouterr().out
    victim = AuditEvent.objects.order_by("id")[2]
    AuditEvent.objects.filter(pk=victim.pk).update(data={"n": 99})
    with pytest.raises(CommandError, match=f"row {victim.pk} was edited"):
        call_command("verify_audit")


def test_verify_audit_catches_a_deleted_row(owner):
    for n in range(5):
        audit.record_sync(actor=owner, action="test.delete", data={"n": n})
    rows = list(AuditEvent.objects.order_by("id"))
    AuditEvent.objects.filter(pk=rows[2].pk).delete()
    with pytest.raises(CommandError, match=f"row {rows[3].pk} does not follow"):
        call_command("verify_audit")


def test_verify_audit_catches_an_inserted_row(owner):
    for n in range(3):
        audit.record_sync(actor=owner, action="test.insert", data={"n": n})
    first = AuditEvent.objects.order_by("id").first()
    forged = AuditEvent.objects.create(created=first.created, action="test.forged", prev_hash=first.hash,
                                       hash="f" * 64)
    with pytest.raises(CommandError, match=f"row {forged.pk}"):
        call_command("verify_audit")


def test_a_kept_head_catches_rows_cut_from_the_end(owner, capsys):
    for n in range(5):
        audit.record_sync(actor=owner, action="test.truncate", data={"n": n})
    call_command("verify_audit")
    head = capsys.readouterr().out.split("head: ")[1].strip()
    audit.record_sync(actor=owner, action="test.truncate", data={"n": 5})
    call_command("verify_audit", expect_head=[head])  # later rows are fine

    rows = list(AuditEvent.objects.order_by("id"))
    AuditEvent.objects.filter(pk__gte=rows[3].pk).delete()  # the chain left is valid on its own
    call_command("verify_audit")
    with pytest.raises(CommandError, match=f"row {rows[4].pk} with the expected hash is gone"):
        call_command("verify_audit", expect_head=[head])
    with pytest.raises(CommandError, match="not a head"):
        call_command("verify_audit", expect_head=["nonsense"])


def test_login_logout_and_failed_login_are_audited(client, owner):
    from tests.conftest import PASSWORD

    response = client.post("/accounts/login/", {"username": "owner", "password": "wrong"})
    assert response.status_code == 200
    client.post("/accounts/login/", {"username": "owner", "password": PASSWORD})
    client.post("/accounts/logout/")
    actions = list(AuditEvent.objects.order_by("id").values_list("action", "actor_name", "ip"))
    assert [a for a, _, _ in actions] == ["auth.login_failed", "auth.login", "auth.logout"]
    assert actions[1][1] == "owner" and actions[1][2] == "127.0.0.1"
    failed = AuditEvent.objects.get(action="auth.login_failed")
    assert failed.data == {"username": "owner"}  # never the password


def test_audit_admin_is_read_only(client, staff, owner):
    audit.record_sync(actor=owner, action="test.admin")
    event = AuditEvent.objects.get()
    client.force_login(staff)
    assert client.get("/admin/autobot/auditevent/").status_code == 200
    assert client.get("/admin/autobot/auditevent/add/").status_code == 403
    client.post(f"/admin/autobot/auditevent/{event.pk}/delete/", {"post": "yes"})
    assert AuditEvent.objects.filter(pk=event.pk).exists()
    assert client.get("/admin/autobot/auditevent/?q=test.admin").status_code == 200


def test_deleting_a_user_keeps_the_chain_intact(owner, colleague):
    audit.record_sync(actor=colleague, action="test.before")
    audit.record_sync(actor=owner, action="test.other")
    colleague.delete()
    report = audit.verify()
    assert report.ok, report.problem
    assert AuditEvent.objects.filter(actor_name="colleague").exists()


@pytest.mark.parametrize("data", [
    {"big": 1e100, "negzero": -0.0, "tiny": 1e-7, "nan": float("nan")},
    {"nul": "a\x00b", "nested": [{"k": 1.5}, None, True]},
    {"long": "x" * 10000},
])
def test_awkward_data_is_stored_and_still_verifies(owner, data):
    audit.record_sync(actor=owner, action="test.data" + "x" * 200, target_id="t" * 300, data=data)
    report = audit.verify()
    assert report.ok, report.problem


@pytest.mark.postgres
def test_awkward_data_verifies_on_postgres(owner):
    assert connection.vendor == "postgresql"
    audit.record_sync(actor=owner, action="test.data", target_id="t" * 300,
                      data={"big": 1e100, "negzero": -0.0, "nul": "a\x00b", "f": 0.1, "i": 10**20})
    report = audit.verify()
    assert report.ok, report.problem


def test_dashboard_shows_counts_and_only_my_events_to_non_staff(client, owner, stranger):
    audit.record_sync(actor=owner, action="test.mine")
    audit.record_sync(actor=stranger, action="test.theirs")
    client.force_login(owner)
    page = client.get("/").content.decode()
    assert "chat sessions" in page and "knowledge entries" in page
    assert "test.mine" in page and "test.theirs" not in page
    assert ">users<" not in page  # the user count is for staff
