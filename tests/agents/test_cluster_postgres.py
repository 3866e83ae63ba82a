"""The cross-process suite again with PostgreSQL as the shared database (make test's PostgreSQL pass)."""

import pytest

from tests.agents.test_cluster import *  # noqa: F403 - the same tests and the `cluster` fixture

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
