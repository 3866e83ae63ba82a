"""The wire protocol: parsing, canonical serialisation, validation, signing, freshness, replay."""

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents import signing
from agents.protocol import (
    Message,
    MessageType,
    Priority,
    ProtocolError,
    ReplayWindow,
    check_fresh,
    parse_message,
    verify_signature,
)


def wire(message_type="REQUEST", **header):
    base = {"message_type": message_type, "sender_id": "tester", "recipient_id": "echo"}
    base.update(header)
    return {"header": base, "payload": {"action": "echo", "data": {"x": 1}}}


# --- tolerant enum parsing -------------------------------------------------------------


@pytest.mark.parametrize(
    "spelling", ["broadcast", "BROADCAST", "Broadcast", "MessageType.BROADCAST", " broadcast "]
)
def test_it_accepts_the_spellings_clients_send_for_message_type(spelling):
    message = parse_message(wire(spelling))
    assert message.header.message_type is MessageType.BROADCAST
    assert message.to_wire()["header"]["message_type"] == "BROADCAST"


@pytest.mark.parametrize(
    ("spelling", "expected"),
    [
        ("MessagePriority.NORMAL", Priority.NORMAL),
        ("Priority.HIGH", Priority.HIGH),
        ("urgent", Priority.URGENT),
        ("LOW", Priority.LOW),
        (1, Priority.LOW),
        (4, Priority.URGENT),
        ("3", Priority.HIGH),
    ],
)
def test_it_accepts_the_spellings_clients_send_for_priority(spelling, expected):
    message = parse_message(wire(priority=spelling))
    assert message.header.priority is expected
    assert message.to_wire()["header"]["priority"] == expected.name


def test_priorities_are_ordered():
    assert Priority.LOW < Priority.NORMAL < Priority.HIGH < Priority.URGENT


@pytest.mark.parametrize("value", ["SHOUT", "MessageType.SHOUT", "", 3, None, ["REQUEST"]])
def test_it_rejects_unknown_message_types_naming_field_and_accepted_values(value):
    with pytest.raises(ProtocolError) as caught:
        parse_message(wire(value))
    assert caught.value.field == "header.message_type"
    assert "REQUEST, RESPONSE, BROADCAST, NOTIFICATION, HEARTBEAT, ERROR" in str(caught.value)


@pytest.mark.parametrize("value", [0, 5, "5", "MessagePriority.HUGE", True, 2.5, "high!"])
def test_it_rejects_unknown_priorities(value):
    with pytest.raises(ProtocolError) as caught:
        parse_message(wire(priority=value))
    assert caught.value.field == "header.priority"
    assert "LOW, NORMAL, HIGH, URGENT" in str(caught.value)


# --- strictness ------------------------------------------------------------------------


@pytest.mark.parametrize("raw", ["{not json", b"\xff\xfe", "", "[1, 2"])
def test_it_rejects_malformed_json(raw):
    with pytest.raises(ProtocolError) as caught:
        parse_message(raw)
    assert caught.value.code == "invalid_json"


@pytest.mark.parametrize("raw", ["[]", "42", '"hello"', "null"])
def test_it_rejects_json_that_is_not_an_object(raw):
    with pytest.raises(ProtocolError):
        parse_message(raw)


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda w: w["payload"].update(data=[1, 2]), "payload.data"),
        (lambda w: w["payload"].update(action=7), "payload.action"),
        (lambda w: w["payload"].update(context="x"), "payload.context"),
        (lambda w: w["header"].update(ttl_seconds="10"), "header.ttl_seconds"),
        (lambda w: w["header"].update(ttl_seconds=-1), "header.ttl_seconds"),
        (lambda w: w["header"].update(message_id="not-a-uuid"), "header.message_id"),
        (lambda w: w["header"].update(timestamp="yesterday"), "header.timestamp"),
        (lambda w: w["header"].update(sender_id=""), "header.sender_id"),
        (lambda w: w["header"].update(recipient_id="has space"), "header.recipient_id"),
        (lambda w: w["header"].update(signature="zz"), "header.signature"),
        (lambda w: w["header"].update(surprise=1), "header.surprise"),
        (lambda w: w.pop("payload"), "payload"),
    ],
)
def test_it_rejects_wrong_types_naming_the_field(mutate, field):
    raw = wire()
    mutate(raw)
    with pytest.raises(ProtocolError) as caught:
        parse_message(raw)
    assert caught.value.field == field
    assert str(caught.value).startswith(field)


def test_a_request_needs_a_recipient_or_a_capability():
    with pytest.raises(ProtocolError, match="recipient_id or a capability"):
        parse_message(wire(recipient_id=None))
    assert parse_message(wire(recipient_id=None, capability="search")).header.capability == (
        "search"
    )


@pytest.mark.parametrize("kind", ["RESPONSE", "ERROR"])
def test_responses_and_errors_need_a_correlation_id(kind):
    with pytest.raises(ProtocolError, match="correlation_id"):
        parse_message(wire(kind))
    ok = parse_message(wire(kind, correlation_id=str(uuid.uuid4())))
    assert ok.header.correlation_id


def test_timestamps_must_carry_a_timezone_and_are_normalised_to_utc():
    with pytest.raises(ProtocolError, match="timezone"):
        parse_message(wire(timestamp="2026-01-01T12:00:00"))
    message = parse_message(wire(timestamp="2026-01-01T14:00:00+02:00"))
    assert message.header.timestamp == datetime(2026, 1, 1, 12, tzinfo=UTC)
    assert message.to_wire()["header"]["timestamp"] == "2026-01-01T12:00:00.000000Z"


def test_payload_size_is_capped():
    raw = wire()
    raw["payload"]["data"] = {"blob": "x" * 2000}
    with pytest.raises(ProtocolError) as caught:
        parse_message(raw, max_payload_bytes=1000)
    assert caught.value.code == "too_large"
    assert parse_message(raw, max_payload_bytes=4000)


# --- signing ---------------------------------------------------------------------------


def test_canonical_json_sorts_keys_and_has_no_whitespace():
    assert signing.canonical_json({"b": 1, "a": {"d": [1, 2], "c": "é"}}) == (
        '{"a":{"c":"é","d":[1,2]},"b":1}'.encode()
    )


def test_a_signed_message_verifies_and_a_tampered_one_does_not():
    signed = parse_message(wire()).signed("s3cret").to_wire()
    verify_signature(signed, "s3cret")
    with pytest.raises(ProtocolError) as caught:
        verify_signature(signed, "other")
    assert caught.value.code == "signature_invalid"
    signed["payload"]["data"]["x"] = 2
    with pytest.raises(ProtocolError):
        verify_signature(signed, "s3cret")


def test_the_signature_excludes_itself_and_ignores_key_order():
    raw = wire()
    signature = signing.wire_signature(raw, "k")
    reordered = json.loads(json.dumps({"payload": raw["payload"], "header": raw["header"]}))
    reordered["header"]["signature"] = signature
    verify_signature(reordered, "k")


def test_a_missing_signature_is_reported_as_missing():
    with pytest.raises(ProtocolError) as caught:
        verify_signature(wire(), "k")
    assert caught.value.code == "signature_missing"


# --- freshness and replay --------------------------------------------------------------


def test_a_message_past_its_ttl_is_rejected():
    sent = datetime.now(UTC) - timedelta(seconds=30)
    message = parse_message(wire(ttl_seconds=10, timestamp=sent.isoformat()))
    with pytest.raises(ProtocolError) as caught:
        check_fresh(message)
    assert caught.value.code == "expired"
    check_fresh(parse_message(wire(ttl_seconds=60, timestamp=sent.isoformat())))


def test_a_timestamp_outside_the_allowed_skew_is_rejected():
    future = datetime.now(UTC) + timedelta(minutes=10)
    message = parse_message(wire(timestamp=future.isoformat()))
    with pytest.raises(ProtocolError) as caught:
        check_fresh(message, max_skew_seconds=60)
    assert caught.value.code == "clock_skew"
    check_fresh(message, max_skew_seconds=3600)


def test_a_replayed_id_within_the_window_is_dropped_and_forgotten_after():
    window = ReplayWindow(window_seconds=10)
    message = parse_message(wire())
    window.check(message, now=100.0)
    with pytest.raises(ProtocolError) as caught:
        window.check(message, now=105.0)
    assert caught.value.code == "replayed"
    window.check(message, now=120.0)


def test_the_replay_window_is_bounded():
    window = ReplayWindow(window_seconds=1000, max_entries=50)
    for i in range(500):
        window.seen(uuid.uuid4(), now=float(i))
    assert len(window) == 50


# --- round trip properties -------------------------------------------------------------

names = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,20}", fullmatch=True)
json_leaf = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20)
json_values = st.recursive(
    json_leaf,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=10,
)
json_objects = st.dictionaries(st.text(max_size=8), json_values, max_size=4)
aware_times = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30)), timezone(-timedelta(hours=8))]),
)


@st.composite
def messages(draw):
    kind = draw(st.sampled_from(list(MessageType)))
    recipient = draw(st.none() | names)
    capability = draw(st.none() | names)
    if kind is MessageType.REQUEST and not (recipient or capability):
        recipient = draw(names)
    correlation = draw(st.none() | st.uuids())
    if kind in (MessageType.RESPONSE, MessageType.ERROR) and correlation is None:
        correlation = draw(st.uuids())
    header = {
        "message_id": draw(st.uuids()),
        "message_type": kind,
        "priority": draw(st.sampled_from(list(Priority))),
        "sender_id": draw(names),
        "recipient_id": recipient,
        "capability": capability,
        "timestamp": draw(aware_times),
        "correlation_id": correlation,
        "ttl_seconds": draw(st.none() | st.integers(1, 86400)),
        "signature": draw(st.none() | st.from_regex(r"[0-9a-f]{64}", fullmatch=True)),
    }
    payload = {
        "action": draw(st.text(min_size=1, max_size=30)),
        "data": draw(json_objects),
        "context": draw(json_objects),
    }
    return Message.model_validate({"header": header, "payload": payload})


@settings(max_examples=200, deadline=None)
@given(messages())
def test_round_trip_through_json_preserves_every_field(message):
    again = parse_message(message.to_json())
    assert again == message
    assert again.to_wire() == message.to_wire()


@settings(max_examples=100, deadline=None)
@given(messages(), st.sampled_from(["lower", "prefixed", "int"]))
def test_round_trip_from_tolerant_spellings_gives_canonical_output(message, style):
    raw = message.to_wire()
    header = raw["header"]
    if style == "lower":
        header["message_type"] = header["message_type"].lower()
        header["priority"] = header["priority"].lower()
    elif style == "prefixed":
        header["message_type"] = f"MessageType.{header['message_type']}"
        header["priority"] = f"MessagePriority.{header['priority']}"
    else:
        header["priority"] = int(message.header.priority)
    assert parse_message(raw).to_wire() == message.to_wire()


@settings(max_examples=100, deadline=None)
@given(messages(), st.text(min_size=1, max_size=16))
def test_signatures_survive_the_round_trip(message, secret):
    signed = message.signed(secret)
    verify_signature(json.loads(signed.to_json()), secret)
