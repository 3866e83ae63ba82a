"""The API's JSON renderer (autobot/renderers.py) writes what ninja's standard encoder wrote."""

import datetime
import decimal
import json
import uuid

import pytest
from asgiref.sync import sync_to_async
from django.db import models
from django.utils.translation import gettext_lazy
from ninja.responses import NinjaJSONEncoder

from autobot.renderers import dumps


class Colour(models.TextChoices):
    RED = "red", "Red"


class Size(models.IntegerChoices):
    BIG = 3, "Big"


NOW = datetime.datetime(2026, 12, 7, 14, 5, 6, 789123, tzinfo=datetime.UTC)

VALUES = {
    "text choice": Colour.RED,
    "integer choice": Size.BIG,
    "uuid": uuid.UUID("12345678-1234-5678-1234-567812345678"),
    "aware datetime": NOW,
    "naive datetime": NOW.replace(tzinfo=None),
    "datetime on the second": NOW.replace(microsecond=0),
    "other zone": NOW.astimezone(datetime.timezone(datetime.timedelta(hours=2))),
    "date": NOW.date(),
    "time": NOW.time(),
    "duration": datetime.timedelta(days=1, seconds=3),
    "decimal": decimal.Decimal("1.10"),
    "lazy string": gettext_lazy("Sessions"),
    "non-ASCII": "é ü 文字 😀",
    "control characters": "a\u0000b\nc\"d\\e\u2028",
    "nested": {"items": [{"id": 1, "at": NOW, "tags": ["x"]}], "count": 1},
    "integer keys": {1: "one", 2: "two"},
    "big integer": 2**70,  # beyond orjson's 64 bits: the standard library's way
    "surrogate": "name-\udcff.txt",  # a file name read with surrogate escapes: idem
    "float": 0.1,
}


def stock(value) -> str:
    return json.dumps(value, cls=NinjaJSONEncoder)


def test_every_value_reads_back_as_ninja_wrote_it():
    for name, value in VALUES.items():
        assert json.loads(dumps(value)) == json.loads(stock(value)), name


def test_dates_keep_djangos_format():
    assert dumps({"at": NOW}) == b'{"at":"2026-12-07T14:05:06.789Z"}'


def test_what_orjson_refuses_is_still_written():
    assert dumps(2**70) == b"1180591620717411303424"
    assert json.loads(dumps("\udcff")) == "\udcff"


def test_deep_nesting_is_still_written():
    deep = value = []
    for _ in range(300):  # orjson stops at 254 levels
        value.append([])
        value = value[0]
    assert json.loads(dumps(deep)) == deep


@pytest.mark.django_db(transaction=True)
async def test_an_api_response_is_rendered_by_it(api_client, owner):
    client = await sync_to_async(api_client)(owner)
    response = await client.get("/api/chat/sessions")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json; charset=utf-8"
    assert response.content == b'{"items":[],"count":0}'
