"""The bus envelope and the server's unvalidated fast paths: they must give exactly what the
validated pydantic path gives, and refuse what is not sealed with the server key."""

import uuid
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.envelope import Sealer, pack_message, pack_response, unpack_message
from agents.protocol import (
    Message,
    MessageType,
    Priority,
    ProtocolError,
    new_message_id,
    parse_message,
    server_message,
)

KEY = b"server-key"
SEALER = Sealer(KEY)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.text(max_size=20)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
names = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,20}", fullmatch=True)


@st.composite
def messages(draw):
    kind = draw(st.sampled_from(list(MessageType)))
    recipient = draw(st.none() | names)
    capability = draw(st.none() | names)
    if kind is MessageType.REQUEST and not (recipient or capability):
        recipient = "echo"
    correlation = uuid.uuid4() if kind in (MessageType.RESPONSE, MessageType.ERROR) else draw(
        st.none() | st.uuids())
    wire = {
        "header": {
            "message_type": kind.name, "priority": draw(st.sampled_from(list(Priority))).name,
            "sender_id": draw(names), "recipient_id": recipient, "capability": capability,
            "timestamp": draw(st.datetimes(timezones=st.just(UTC))).isoformat(),
            "correlation_id": str(correlation) if correlation else None,
            "ttl_seconds": draw(st.none() | st.integers(1, 86400)),
            "signature": draw(st.none() | st.just("ab" * 32)),
        },
        "payload": {
            "action": draw(st.text(min_size=1, max_size=30)),
            "data": draw(st.dictionaries(st.text(max_size=8), json_values, max_size=4)),
            "context": draw(st.dictionaries(st.text(max_size=8), json_values, max_size=2)),
        },
    }
    return parse_message(wire)


@settings(max_examples=150, deadline=None)
@given(messages())
def test_a_sealed_message_opens_equal_to_the_validated_one(message):
    opened, delivery = SEALER.open(SEALER.seal(message, reply_to="agents.reply.x", origin="o", via="g", seq=3))
    assert opened == message
    assert opened.to_wire() == message.to_wire()
    assert opened.model_fields_set == set(Message.model_fields)
    assert tuple(delivery) == ("agents.reply.x", "o", "g", 3, None)


def test_a_request_envelope_carries_its_askers_deadline():
    message = server_message(MessageType.REQUEST, "echo", sender_id="s", recipient_id="r")
    _, delivery = SEALER.open(SEALER.seal(message, reply_to="agents.reply.x", origin="o", deadline=1_800_000_000.25))
    assert delivery.reply_to == "agents.reply.x" and delivery.deadline == 1_800_000_000.25


def test_an_envelope_from_another_key_or_tampered_is_refused():
    message = server_message(MessageType.REQUEST, "rm-rf", sender_id="s", recipient_id="victim")
    with pytest.raises(ProtocolError) as caught:
        SEALER.open(Sealer(b"other-key").seal(message, reply_to=None, origin="x"))
    assert caught.value.code == "signature_invalid"
    event = SEALER.seal(message, reply_to=None, origin="x")
    tampered = bytearray(event["sealed"])
    tampered[-3] ^= 1
    for bad in ({"type": "agents.message", "sealed": bytes(tampered)}, {"type": "agents.message"},
                {"type": "agents.message", "m": message.to_wire()}, {"sealed": "text"}):
        with pytest.raises(ProtocolError):
            SEALER.open(bad)


def test_values_msgpack_cannot_hold_fall_back_to_json_text():
    message = server_message(MessageType.NOTIFICATION, "big", {"n": 10**30, "when": datetime(2026, 1, 1, tzinfo=UTC)},
                             sender_id="s", recipient_id="r")
    opened = unpack_message(pack_message(message))
    assert opened.payload.data == {"n": 10**30, "when": "2026-01-01T00:00:00Z"}


def test_server_messages_equal_validated_ones():
    made = server_message(MessageType.REQUEST, "search", {"q": "x"}, sender_id="user:ann", capability="search",
                          priority=Priority.HIGH, ttl_seconds=30)
    assert made == parse_message(made.to_wire())
    reply = made.reply(sender_id="knowledge", data={"n": 1})
    assert reply == parse_message(reply.to_wire())
    assert reply.header.recipient_id is None  # "user:ann" is not an agent id


@pytest.mark.parametrize("fields", [
    {"recipient_id": "bad id!"}, {"sender_id": ""}, {"capability": "x" * 65}, {"action": ""},
    {"ttl_seconds": 0}, {"ttl_seconds": True}, {"recipient_id": None},
])
def test_server_messages_keep_the_protocol_rules(fields):
    arguments = {"sender_id": "s", "recipient_id": "r", "action": "a"} | fields
    with pytest.raises(ProtocolError):
        server_message(MessageType.REQUEST, arguments.pop("action"), **arguments)


def test_a_packed_response_equals_the_reply_model():
    request = server_message(MessageType.REQUEST, "echo", {"x": 1}, sender_id="caller", recipient_id="echo",
                             priority=Priority.URGENT)
    packed = unpack_message(pack_response(request, sender_id="echo", data={"y": 2}))
    expected = request.reply(sender_id="echo", data={"y": 2})
    assert packed.header.model_dump(exclude={"message_id", "timestamp"}) == expected.header.model_dump(
        exclude={"message_id", "timestamp"})
    assert packed.payload == expected.payload
    assert packed == parse_message(packed.to_wire())


def test_message_ids_are_unique_random_version_4_uuids():
    ids = [new_message_id() for _ in range(1000)]  # crosses a refill of the random pool
    assert len(set(ids)) == 1000
    for made in ids:
        assert made.version == 4 and made.variant == uuid.RFC_4122
        assert uuid.UUID(str(made)) == made and hash(uuid.UUID(str(made))) == hash(made)
