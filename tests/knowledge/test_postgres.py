"""The knowledge tests that touch the database again, on PostgreSQL (tsvector + GIN +
ts_rank_cd search): they run in make test's PostgreSQL pass. Importing them here collects them
a second time, with this module's mark."""

import pytest

from tests.knowledge.test_api import *  # noqa: F403
from tests.knowledge.test_crawl_cap import *  # noqa: F403
from tests.knowledge.test_crawls import *  # noqa: F403
from tests.knowledge.test_documents import *  # noqa: F403
from tests.knowledge.test_search import *  # noqa: F403

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
