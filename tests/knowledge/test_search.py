"""Search through the service, on whichever database the run uses (SQLite FTS5 by default;
test_search_postgres.py runs these same tests against PostgreSQL)."""

import pytest

from autobot.errors import InvalidInput
from knowledge import search, services

pytestmark = pytest.mark.django_db(transaction=True)

GUIDE = """# Deployment guide

Start here.

## Nginx

Configure nginx as a reverse proxy in front of the daphne server.

## Backups

Run the nightly backup with restic and keep thirty snapshots.
"""


async def note(user, content, **kwargs):
    return await services.entry_create(user=user, title=kwargs.pop("title", None), content=content, **kwargs)


async def test_it_finds_the_best_chunk_with_its_heading_and_snippet(owner):
    entry = await note(owner, GUIDE, title="Ops handbook")
    [hit] = await services.entry_search(user=owner, q="how do I configure the reverse proxy")
    assert set(hit) >= {"entry_id", "title", "source_type", "source", "snippet", "content", "heading_path", "score"}
    assert hit["entry_id"] == entry.pk
    assert hit["title"] == "Ops handbook"
    assert hit["heading_path"] == "Deployment guide > Nginx"
    assert "reverse proxy" in hit["content"]
    assert "<mark>reverse</mark>" in hit["snippet"] and "<mark>proxy</mark>" in hit["snippet"]
    assert hit["score"] > 0


async def test_the_better_match_ranks_first(owner):
    await note(owner, "Backups are mentioned once here, among many other unrelated words about cooking pasta.")
    best = await note(owner, "Backup backup backups: the backup schedule and backup retention.", title="Backups")
    results = await services.entry_search(user=owner, q="backup")
    assert results[0]["entry_id"] == best.pk
    assert len(results) == 2


async def test_stemming_matches_other_word_forms(owner):
    await note(owner, "We are installing the packages.")
    assert await services.entry_search(user=owner, q="install")


async def test_prefix_search_matches_a_word_being_typed(owner):
    await note(owner, "Kubernetes cluster upgrades.")
    assert await services.entry_search(user=owner, q="kuber", prefix=True)
    assert not await services.entry_search(user=owner, q="kuber")


@pytest.mark.parametrize(
    "q",
    ['"', "'", '"unbalanced', "AND", "OR NOT", "*", "(", ")", "NEAR(a b", "a:b", "-x", "^y", "{x}", "col:nginx",
     "'; DROP TABLE knowledge_knowledgeentry; --", "nginx\" OR \"x", "%", "_", "\\", "💥 émoji", "a" * 600,
     "!!!", "nginx & | ! <-> :*", "\x00"],
)
async def test_user_text_never_breaks_the_query(owner, q):
    await note(owner, GUIDE)
    results = await services.entry_search(user=owner, q=q)
    assert isinstance(results, list)


async def test_syntax_characters_are_searched_as_words(owner):
    await note(owner, GUIDE)
    assert await services.entry_search(user=owner, q='nginx" OR "nothing')
    assert await services.entry_search(user=owner, q="(nginx)")


@pytest.mark.parametrize("q", ["", "   ", "\n"])
async def test_an_empty_query_is_invalid(owner, q):
    with pytest.raises(InvalidInput):
        await services.entry_search(user=owner, q=q)


async def test_snippets_escape_html_in_the_content(owner):
    await note(owner, "The <script>alert('nginx')</script> tag & nginx.")
    [hit] = await services.entry_search(user=owner, q="nginx")
    assert "<script>" not in hit["snippet"]
    assert "&amp;" in hit["snippet"]
    assert "<mark>nginx</mark>" in hit["snippet"]


async def test_private_entries_are_found_only_by_their_owner_and_staff(owner, stranger, staff):
    await note(owner, "The vault unseal procedure.")
    assert await services.entry_search(user=owner, q="vault")
    assert await services.entry_search(user=staff, q="vault")
    assert await services.entry_search(user=stranger, q="vault") == []


async def test_shared_entries_are_found_by_everyone(owner, colleague):
    await note(owner, "Shared runbook for the vault.", shared=True)
    assert await services.entry_search(user=colleague, q="vault")


async def test_filters_by_category_and_tag(owner):
    await note(owner, "Redis tuning notes.", category="ops", tags=["Cache", "perf"])
    await note(owner, "Redis client library notes.", category="dev", tags=["client"])
    assert [r["category"] for r in await services.entry_search(user=owner, q="redis", category="ops")] == ["ops"]
    assert [r["tags"] for r in await services.entry_search(user=owner, q="redis", tag="cache")] == [["cache", "perf"]]
    assert await services.entry_search(user=owner, q="redis", tag="ca%") == []


async def test_one_result_per_entry_with_its_best_chunk(owner):
    parts = [f"## Part {i}\n\n" + ("filler words " * 60) + ("zebra " if i == 7 else "") for i in range(12)]
    long_text = "\n\n".join(parts)
    entry = await note(owner, "# Zoo\n\n" + long_text)
    assert entry.chunk_count > 5
    [hit] = await services.entry_search(user=owner, q="zebra filler")
    assert hit["heading_path"] == "Zoo > Part 7"


async def test_updates_and_deletes_are_reflected_at_once(owner):
    entry = await note(owner, "Old words: walrus.", title="Animals")
    await services.entry_update(user=owner, entry_id=entry.pk, content="New words: narwhal.")
    assert await services.entry_search(user=owner, q="walrus") == []
    assert await services.entry_search(user=owner, q="narwhal")
    await services.entry_update(user=owner, entry_id=entry.pk, title="Arctic")
    assert (await services.entry_search(user=owner, q="arctic"))[0]["title"] == "Arctic"
    await services.entry_delete(user=owner, entry_id=entry.pk)
    assert await services.entry_search(user=owner, q="narwhal") == []


async def test_limit_is_respected(owner):
    for i in range(8):
        await note(owner, f"Common topic number {i}.")
    assert len(await services.entry_search(user=owner, q="topic", limit=3)) == 3


async def test_common_words_are_ranked_within_a_bounded_candidate_set(owner, stranger, monkeypatch):
    # With a tiny cap every word is "common": the newest matching chunks are ranked and the
    # visibility rules still hold.
    monkeypatch.setattr(search, "CANDIDATE_CAP", 3)
    for i in range(6):
        await note(stranger, f"Lantern story {i} from a stranger.")
    for i in range(6):
        await note(owner, f"Lantern note {i}" + " lantern" * i)
    results = await services.entry_search(user=owner, q="lantern", limit=5)
    assert len(results) == 3
    assert all("note" in r["content"] for r in results)
    several = await services.entry_search(user=owner, q="lantern note stranger")
    assert several and all("note" in r["content"] for r in several)


async def test_rare_words_win_over_common_ones(owner, monkeypatch):
    monkeypatch.setattr(search, "CANDIDATE_CAP", 4)
    for i in range(6):
        await note(owner, f"The service restarts every night, run {i}.")
    target = await note(owner, "The service uses the kestrel scheduler.")
    results = await services.entry_search(user=owner, q="the service kestrel")
    assert results[0]["entry_id"] == target.pk


def test_tokenise_drops_stop_words_and_syntax():
    assert search.tokenise('How do I "configure" NGINX (reverse-proxy)?') == ["configure", "nginx", "reverse", "proxy"]
    assert search.tokenise("the who") == ["the", "who"]
    assert search.tokenise("*:^()") == []


async def test_a_chatty_question_still_finds_the_topic(owner):
    await note(owner, GUIDE)
    question = "Hi there, could you please tell me about how we should be doing the nightly restic thing again?"
    [hit] = await services.entry_search(user=owner, q=question)
    assert hit["heading_path"] == "Deployment guide > Backups"
