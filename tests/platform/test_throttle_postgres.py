"""The shared sign-in throttle again on PostgreSQL (row lock, INSERT … ON CONFLICT): these run in
make test's PostgreSQL pass. Importing them here collects them a second time, with this module's mark."""

import pytest

from tests.platform.test_throttle_shared import *  # noqa: F403

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(120)]
