"""At most once again on PostgreSQL: the request claims are its rows (make test's PostgreSQL pass)."""

import pytest

from tests.agents.test_at_most_once import *  # noqa: F403 - the same tests (the `layer` fixture is in conftest)

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
