"""The replay window's fail-open path again on PostgreSQL: there the message log's unique id is
what refuses the copy (make test's PostgreSQL pass)."""

import pytest

from tests.agents.test_seen import (  # noqa: F401 - the fixture and the test
    own_redis,
    test_with_redis_unreachable_a_message_is_accepted_and_counted,
)

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
