"""The API's JSON renderer: what ninja's encoder writes, written by orjson.

Ninja renders every response with the standard library's `json.dumps` and its `NinjaJSONEncoder`
(Django's `DjangoJSONEncoder` underneath). For a 20-row list that was ~50-70 µs of the event
loop's time a call, against ~5 µs for orjson (docs/performance.md, eleventh round). The output
holds the same values:

- dates, times, durations, decimals, lazy strings, pydantic models, URLs and IP addresses go to
  the same encoder's `default` (`OPT_PASSTHROUGH_DATETIME`: orjson's own format for dates differs
  from Django's, which keeps milliseconds and writes `Z` for UTC);
- UUIDs are written as `str()` writes them, and subclasses of `str` and `int` (Django's choices)
  by their value, as before;
- keys that are not strings are written as strings, as the standard library does;
- one difference: a plain `Enum` member (neither `str` nor `int`) is written as its value, where
  ninja wrote `str(member)` (`"Color.RED"`); none of the API's schemas has one.

What orjson refuses (an integer beyond 64 bits, a string that is not valid Unicode such as a file
name read with surrogate escapes, nesting deeper than 254) goes the standard library's way, so no
response fails that did not fail before. The text differs in its spacing (none) and in writing
non-ASCII characters as UTF-8 rather than `\\u` escapes: the same JSON."""

import json

import orjson
from ninja.renderers import JSONRenderer
from ninja.responses import NinjaJSONEncoder

OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_NON_STR_KEYS
_ENCODER = NinjaJSONEncoder()  # its `default` only: it keeps no state between calls


def dumps(data) -> bytes:
    try:
        return orjson.dumps(data, default=_ENCODER.default, option=OPTIONS)
    except orjson.JSONEncodeError:
        return json.dumps(data, cls=NinjaJSONEncoder).encode()


class FastJSONRenderer(JSONRenderer):
    def render(self, request, data, *, response_status: int) -> bytes:
        return dumps(data)
