"""`CompiledInsert` (autobot/compiled.py) writes the row `save()` and `bulk_create` write: the
same stored values, the new key read back, the instance marked saved. Used by the audit trail
and the chat question's store (docs/performance.md, eleventh round)."""

import uuid
from datetime import UTC, datetime

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection

from autobot import audit
from autobot.compiled import CompiledInsert
from autobot.models import AuditEvent
from chat.models import ChatMessage, ChatSession

pytestmark = pytest.mark.django_db(transaction=True)

DATA = {"text": "Ünïcode ☃ \"quoted\" \\ back", "n": 3, "f": 0.5, "nested": {"list": [1, None, True]}, "empty": []}


def _stored(model, pk, skip=("id",)) -> dict:
    row = model.objects.filter(pk=pk).values().get()
    return {name: value for name, value in row.items() if name not in skip}


def _audit_pair(owner, **fields):
    created = datetime(2026, 12, 7, 14, 0, 0, 123456, tzinfo=UTC)
    values = {"created": created, "actor_id": owner.pk, "actor_name": owner.get_username(), "action": "test.insert",
              "target_type": "chat_session", "target_id": "x", "data": DATA, "prev_hash": "0" * 64, **fields}
    by_orm = AuditEvent(**values, hash=uuid.uuid4().hex * 2)
    by_orm.save(force_insert=True)
    compiled = AuditEvent(**values, hash=uuid.uuid4().hex * 2)
    assert CompiledInsert(AuditEvent).insert(compiled) is compiled
    return by_orm, compiled


def _check_same_rows(owner):
    for ip in (None, "127.0.0.1", "2001:db8::1"):
        by_orm, compiled = _audit_pair(owner, ip=ip, correlation_id="c" * 64)
        assert isinstance(compiled.pk, int) and compiled.pk > by_orm.pk
        assert not compiled._state.adding and compiled._state.db == "default"
        assert _stored(AuditEvent, compiled.pk, ("id", "hash")) == _stored(AuditEvent, by_orm.pk, ("id", "hash"))
    session = ChatSession.objects.create(owner=owner)
    fields = {"session": session, "role": ChatMessage.Role.ASSISTANT, "status": ChatMessage.Status.STREAMING,
              "content": "Ünïcode ☃", "model": "ollama/x", "use_knowledge": False, "worker": "w",
              "correlation_id": "c1", "citations": [{"title": "t", "entry_id": 1}]}
    first, second = ChatMessage.objects.bulk_create([ChatMessage(**fields)])[0], ChatMessage(**fields)
    CompiledInsert(ChatMessage).insert(second)
    assert second.pk == first.pk + 1 and second.created is not None and second.updated is not None
    dates = ("id", "created", "updated")
    assert _stored(ChatMessage, second.pk, dates) == _stored(ChatMessage, first.pk, dates)
    assert ChatMessage.objects.get(pk=second.pk).created == second.created


def test_a_compiled_insert_stores_what_the_orm_stores(owner):
    _check_same_rows(owner)


@pytest.mark.postgres
def test_a_compiled_insert_stores_what_the_orm_stores_on_postgres(owner):
    assert connection.vendor == "postgresql"
    _check_same_rows(owner)


def test_the_audit_chain_written_through_it_verifies(owner):
    for n in range(5):
        audit.record_sync(actor=owner, action="test.chain", data={**DATA, "n": n}, ip="::1")
    report = audit.verify()
    assert report.ok and report.checked == 5, report.problem


def test_an_expression_is_refused(owner):
    from django.db.models.functions import Now

    event = AuditEvent(created=Now(), action="x", prev_hash="0" * 64, hash="1" * 64)
    with pytest.raises(TypeError):
        CompiledInsert(AuditEvent).insert(event)
    assert not AuditEvent.objects.exists()


def test_a_model_without_an_automatic_key_is_refused():
    with pytest.raises(ImproperlyConfigured):
        CompiledInsert(ChatSession)
