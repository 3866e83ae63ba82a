"""Responses the API renders without ninja validating them against the operation's schema."""

import hashlib
import inspect
from collections.abc import ItemsView
from datetime import datetime
from http.cookies import SimpleCookie
from itertools import repeat
from operator import add, itemgetter

import orjson
from django.http import HttpResponse
from django.http.response import HttpResponseBase, ResponseHeaders

from autobot.compiled import DatetimeText
from autobot.memo import Memo


def unchecked(request, data, *, status: int = 200) -> HttpResponse:
    """`data` rendered exactly as ninja renders a validated result (the API's JSON renderer and
    encoder, its content type), but without validating it first.

    Ninja validates whatever a view returns against the operation's response schema, item by
    item through its `DjangoGetter` (~15 µs an item, a third of a 20-row list call). A view that
    builds its output dicts itself, with the schema's fields and types, can skip that; the
    operation keeps its `response=` schema, so the OpenAPI document is unchanged. Each use needs a
    test that its output equals the schema-validated one (tests/chat/test_session_list.py,
    tests/knowledge/test_entry_list.py)."""
    from autobot.api import api  # it imports every app's routers, which import this module

    return api.create_response(request, data, status=status)


class FastHeaders(ResponseHeaders):
    """Django's `ResponseHeaders`, answering `in`, `get` and `items` from its store directly.

    `ResponseHeaders` is a `Mapping` whose `in` and `get` are `collections.abc`'s: they look the
    key up and catch the `KeyError` an absent one raises (~1 µs against ~0.2). An API call's
    response is asked for absent headers seven times on its way out (the CSP, security,
    clickjacking and common middleware; Django's own constructor), and its items are listed
    once, by the handler, as (name, value) pairs made one lookup at a time. Same answers: the
    store maps each lower-cased name to its (name as set, value) pair, which is what
    `__getitem__` and `__iter__` read (tests/platform/test_responses.py compares the two classes)."""

    def __contains__(self, key) -> bool:
        return key.lower() in self._store

    def get(self, key, default=None):
        item = self._store.get(key.lower())
        return default if item is None else item[1]

    def items(self):
        return _StoredItems(self)


class _StoredItems(ItemsView):
    __slots__ = ()

    def __iter__(self):
        return iter(self._mapping._store.values())


def fast_headers(response):
    """`response` with `FastHeaders` for headers, if it has Django's own (not a subclass's)."""
    if type(response.headers) is ResponseHeaders:
        response.headers.__class__ = FastHeaders
    return response


def new_response(content: bytes, content_type: str, status: int | None = None) -> HttpResponse:
    """`HttpResponse(content, content_type=content_type, status=status)`, with `FastHeaders`,
    made as a copy of one made that way once per content type.

    An API call makes two (ninja's "temporal" response, which its views may set headers,
    cookies or a status on, and the one sent), and Django's constructor, for what is the same
    object every time but for its content and status, sets and checks its Content-Type header,
    works out its charset with a regular expression and encodes the content (~8 µs each). The copy
    gets fresh mutable parts (headers, cookies, closers, content list) and the rest as it was:
    `tests/platform/test_responses.py` compares copies with Django's own, attribute by attribute,
    and fails when Django's constructors change. Content that is not bytes, or a status Django
    would refuse, goes to Django's constructor."""
    if type(content) is not bytes or not (status is None or type(status) is int and 100 <= status <= 599):
        return fast_headers(HttpResponse(content, content_type=content_type, status=status))
    prototype = _prototypes.get(content_type)
    if prototype is None:
        prototype = HttpResponse(b"", content_type=content_type)
        _prototypes.put(content_type, prototype)
    headers = object.__new__(FastHeaders)
    headers._store = prototype.headers._store.copy()
    response = object.__new__(HttpResponse)
    state = response.__dict__
    state.update(prototype.__dict__)
    state["headers"] = headers
    state["_resource_closers"] = []
    state["cookies"] = SimpleCookie()
    state["_container"] = [content]
    if status is not None:
        state["status_code"] = status
    return response


_prototypes = Memo(16)  # the renderers' content types: one or two

# The sha256 of the sources of the constructors `new_response` stands in for (see its docstring).
DJANGO_RESPONSE_INIT_SHA256 = "c4b8ae9880e74c800af3ef25a23fa98a2d6965a57c6f5ce2d2c26032c8d88707"


def django_response_init_sha256() -> str:
    parts = (HttpResponseBase.__init__, HttpResponse.__init__, HttpResponse.content.fset, ResponseHeaders.__init__,
             ResponseHeaders.__mro__[1].__init__)
    return hashlib.sha256("".join(inspect.getsource(part) for part in parts).encode()).hexdigest()


def json_datetime(value: datetime) -> str:
    """`value` as the API's JSON encoder writes a datetime (Django's `DjangoJSONEncoder`:
    ISO 8601, milliseconds, `Z` for UTC), for views that format their rows themselves: a string
    costs the encoder nothing, a datetime a call back into Python through ninja's and Django's
    `default()` (~2 µs each, 40 a 20-row entry list). tests/platform/test_responses.py checks it
    against the encoder."""
    text = value.isoformat()  # DjangoJSONEncoder.default's steps (isoformat with timespec is slower)
    if value.microsecond:
        text = text[:23] + text[26:]
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _json_datetime_naive_utc(value: datetime) -> str:
    """`json_datetime` of `value` made aware in UTC, without making it. orjson writes the naive
    value as `isoformat` does (microseconds only when there are some) in ~0.25 µs against ~0.65
    (tests/platform/test_compiled_text.py compares them)."""
    text = orjson.dumps(value)  # b'"2026-12-07T17:36:00.123456"'
    return (text[1:24] if value.microsecond else text[1:-1]).decode() + "Z"


_FIRST_23 = itemgetter(slice(0, 23))


def _json_datetime_naive_utc_all(values: list[datetime]) -> list[str]:
    """`_json_datetime_naive_utc` of each value, in C-level steps: orjson writes the list and
    reads back its strings (`isoformat`'s, with six digits of fraction or none), each cut after
    the milliseconds (23 characters) and given its "Z"."""
    return list(map(add, map(_FIRST_23, orjson.loads(orjson.dumps(values))), repeat("Z")))


# A compiled list's datetime column read as `json_datetime` writes it (autobot/compiled.py).
JSON_DATETIME = DatetimeText(json_datetime, _json_datetime_naive_utc, _json_datetime_naive_utc_all)
