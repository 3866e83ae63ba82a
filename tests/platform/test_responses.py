"""autobot.responses.json_datetime writes a datetime exactly as the API's JSON encoder does."""

import json
from datetime import UTC, datetime, timedelta, timezone

from ninja.responses import NinjaJSONEncoder

from autobot.responses import json_datetime

ZONES = [UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5, minutes=-30)), None]
MICROSECONDS = [0, 1, 999, 1000, 123456, 999999]


def test_json_datetime_is_the_encoders_text():
    for zone in ZONES:
        for microsecond in MICROSECONDS:
            for second in (0, 59):
                value = datetime(2026, 12, 5, 8, 9, second, microsecond, tzinfo=zone)
                assert json.dumps(json_datetime(value)) == json.dumps(value, cls=NinjaJSONEncoder), value
