"""Knowledge search benchmark: 100,000 synthetic chunks, Zipf-distributed words.

Prints median / p90 / p99 latency of `knowledge.services.entry_search` (visibility filter,
bounded ranking, snippets, entry lookup, the async→sync hop) beside a raw FTS5 bm25 query
(`... MATCH ? ORDER BY rank LIMIT 10`) on the same data in the same run, and their ratio.
Targets (issue 4): service median < 20 ms and within 3x of raw, p99 < 100 ms.

Runs on a throw-away SQLite database in a temporary folder. Not a test: it asserts nothing.
    .venv/bin/python bench/knowledge.py [--chunks 100000] [--queries 400]
"""

import argparse
import asyncio
import itertools
import random
import statistics
import tempfile
import time

from common import percentile, setup_django  # first: it puts the project root on sys.path
from report import record


class Zipf:
    """Words w0…wN with frequency ∝ 1/rank^s: a few very common words and a long tail."""

    def __init__(self, size: int, s: float, rng: random.Random) -> None:
        self.words = [self._word(i) for i in range(size)]
        self.cum = list(itertools.accumulate(1 / (rank + 1) ** s for rank in range(size)))
        self.rng = rng

    @staticmethod
    def _word(i: int) -> str:
        letters = "bcdfghjklmnpqrstvwxz"
        vowels = "aeiou"
        out = ""
        i += 1
        while i:
            i, r = divmod(i, 100)
            out += letters[r % 20] + vowels[r // 20]
        return out + "x"  # no English stem suffixes: the porter stemmer leaves them alone

    def sample(self, k: int) -> list[str]:
        return self.rng.choices(self.words, cum_weights=self.cum, k=k)


def load(n_chunks: int, zipf: Zipf, rng: random.Random):
    from django.contrib.auth import get_user_model
    from django.db import transaction

    from knowledge.models import KnowledgeChunk, KnowledgeEntry

    users = get_user_model().objects
    me = users.create_user("bench-me", password="x")
    other = users.create_user("bench-other", password="x")
    per_entry = 10
    started = time.perf_counter()
    with transaction.atomic():
        for batch_start in range(0, n_chunks // per_entry, 1000):
            entries = []
            for i in range(batch_start, min(batch_start + 1000, n_chunks // per_entry)):
                owner, shared = (me, False) if i % 2 == 0 else (other, i % 4 == 1)
                entries.append(KnowledgeEntry(
                    owner=owner, shared=shared, title=" ".join(zipf.sample(4)), content="(synthetic)",
                    source_type="note", content_hash=f"{i:064d}", chunk_count=per_entry,
                ))
            KnowledgeEntry.objects.bulk_create(entries)
            chunks = [
                KnowledgeChunk(entry=entry, position=p, text=" ".join(zipf.sample(rng.randint(110, 170))),
                               heading_path=" ".join(zipf.sample(3)), search_heading=entry.title)
                for entry in entries for p in range(per_entry)
            ]
            KnowledgeChunk.objects.bulk_create(chunks, batch_size=2000)
    print(f"loaded {n_chunks} chunks ({n_chunks // per_entry} entries) in {time.perf_counter() - started:.1f} s")
    return me


def queries(zipf: Zipf, rng: random.Random, n: int) -> list[str]:
    # Half one word, the rest two or three; words drawn with their corpus frequency, so common
    # words come up as often as users would type them.
    return [" ".join(zipf.sample(rng.choices([1, 2, 3], weights=[5, 3, 2])[0])) for _ in range(n)]


def raw_fts(q: str) -> list:
    from django.db import connection

    match = " ".join(f'"{w}"' for w in q.split())
    with connection.cursor() as cursor:
        cursor.execute("SELECT rowid FROM knowledge_fts WHERE knowledge_fts MATCH %s ORDER BY rank LIMIT 10", [match])
        return cursor.fetchall()


async def timed_service(user, qs: list[str]) -> list[float]:
    from knowledge import services

    out = []
    for q in qs:
        started = time.perf_counter()
        await services.entry_search(user=user, q=q, limit=10)
        out.append((time.perf_counter() - started) * 1000)
    return out


def timed_raw(qs: list[str]) -> list[float]:
    out = []
    for q in qs:
        started = time.perf_counter()
        raw_fts(q)
        out.append((time.perf_counter() - started) * 1000)
    return out


def report(name: str, values: list[float]) -> dict:
    figures = {"median": statistics.median(values), "p90": percentile(values, 90), "p99": percentile(values, 99),
               "max": max(values)}
    print(f"{name:<22} median {figures['median']:7.2f} ms   p90 {figures['p90']:7.2f} ms   "
          f"p99 {figures['p99']:7.2f} ms   max {figures['max']:7.2f} ms")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=400)
    parser.add_argument("--vocabulary", type=int, default=30_000)
    parser.add_argument("--zipf", type=float, default=1.07)
    parser.add_argument("--cap", type=int, default=0, help="override knowledge.search.CANDIDATE_CAP (experiments)")
    args = parser.parse_args()
    rng = random.Random(42)
    with tempfile.TemporaryDirectory(prefix="autobot-bench-") as folder:
        setup_django(folder)
        if args.cap:
            from knowledge import search

            search.CANDIDATE_CAP = args.cap
        from knowledge.search import CANDIDATE_CAP
        zipf = Zipf(args.vocabulary, args.zipf, rng)
        user = load(args.chunks, zipf, rng)
        qs = queries(zipf, rng, args.queries)
        # Warm both paths (page cache, statement cache, the sync_to_async thread).
        timed_raw(qs[:20])
        asyncio.run(timed_service(user, qs[:20]))
        # Interleave halves so neither side profits from running second.
        half = len(qs) // 2
        raw = timed_raw(qs[:half])
        service = asyncio.run(timed_service(user, qs))
        raw += timed_raw(qs[half:])
        print(f"{len(qs)} queries (1-3 Zipf words; vocabulary {args.vocabulary}, s={args.zipf}; "
              f"candidate cap {CANDIDATE_CAP})")
        r = report("raw FTS5 bm25 top-10", raw)
        s = report("entry_search", service)
        ratio = s["median"] / r["median"] if r["median"] else float("inf")
        print(f"service / raw (median): {ratio:.2f}x")
        verdict = s["median"] < 20 and ratio <= 3 and s["p99"] < 100
        print("targets (median < 20 ms, <= 3x raw, p99 < 100 ms):", "met" if verdict else "NOT met")
        record(f"entry_search over {args.chunks:,} chunks, median", s["median"], "ms", baseline=r["median"],
               baseline_name="raw FTS5", target="< 20 ms, <= 3x raw", passed=s["median"] < 20 and ratio <= 3)
        record("entry_search p99", s["p99"], "ms", baseline=r["p99"], baseline_name="raw FTS5", target="< 100 ms",
               passed=s["p99"] < 100)


if __name__ == "__main__":
    main()
