"""Building blocks for request schemas: bodies are validated strictly (no `"shared": 0` taken as
false, no `"1"` taken as a number), and query date-times must be ISO 8601, not bare numbers."""

import re
from datetime import datetime
from typing import Annotated

from ninja import Schema
from pydantic import BeforeValidator, ConfigDict

_NUMBER = re.compile(r"^\s*[+-]?\d+(\.\d*)?\s*$")


class StrictSchema(Schema):
    """Base of every JSON request body: values must already have the declared JSON type."""

    model_config = ConfigDict(strict=True)


def _iso_only(value):
    if isinstance(value, int | float) or (isinstance(value, str) and _NUMBER.match(value)):
        raise ValueError("use an ISO 8601 date-time such as 2024-05-01T12:00:00Z, not a number")
    return value


IsoDateTime = Annotated[datetime, BeforeValidator(_iso_only)]


def _integral(value):
    return int(value) if isinstance(value, float) and value.is_integer() else value


# An integer as JSON Schema means it: 3 and 3.0, never "3" or true (strict int refuses 3.0).
JsonInt = Annotated[int, BeforeValidator(_integral)]
NOT_BLANK = r"\S"  # a JSON-Schema pattern (unanchored): at least one non-space character
