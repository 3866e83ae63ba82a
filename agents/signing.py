"""HMAC-SHA256 signatures over canonical JSON (pure: no Django, no Channels).

Canonical JSON is what both ends can reproduce in any language: keys sorted, no whitespace,
UTF-8 with non-ASCII characters written as-is, and the header's ``signature`` key removed.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
from typing import Any


def canonical_json(obj: Any) -> bytes:
    return json.dumps(
        obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def _key(secret: str | bytes) -> bytes:
    return secret.encode("utf-8") if isinstance(secret, str) else secret


def _without_signature(wire: dict) -> dict:
    header = wire.get("header")
    if not isinstance(header, dict) or "signature" not in header:
        return wire
    stripped = dict(wire)
    stripped["header"] = {k: v for k, v in header.items() if k != "signature"}
    return stripped


def digest(obj: Any, secret: str | bytes) -> str:
    """Hex HMAC-SHA256 of any JSON-able object's canonical encoding."""
    return hmac.new(_key(secret), canonical_json(obj), hashlib.sha256).hexdigest()


def digest_matches(obj: Any, secret: str | bytes, signature: object) -> bool:
    if not isinstance(signature, str):
        return False
    # compare_digest keeps the comparison constant-time in the signature's content.
    return hmac.compare_digest(digest(obj, secret), signature.lower())


def wire_signature(wire: dict, secret: str | bytes) -> str:
    """Signature of a wire-format message (a dict); its own ``signature`` is excluded."""
    return digest(_without_signature(wire), secret)


def sign_wire(wire: dict, secret: str | bytes) -> dict:
    signed = copy.deepcopy(wire)
    signed.setdefault("header", {})["signature"] = wire_signature(wire, secret)
    return signed


def verify_wire(wire: dict, secret: str | bytes) -> bool:
    header = wire.get("header") if isinstance(wire, dict) else None
    if not isinstance(header, dict):
        return False
    return digest_matches(_without_signature(wire), secret, header.get("signature"))
