"""The registration race again on PostgreSQL: its unique violation is what refuses the second
insert (make test's PostgreSQL pass)."""

import pytest

from tests.agents.test_registration import *  # noqa: F403 - the same tests

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
