"""Ranked full-text search over knowledge chunks: SQLite FTS5 (bm25) or PostgreSQL (ts_rank_cd).

One entry point, `search_chunks`, synchronous (call it through `sync_to_async`), with the
backend chosen by `connection.vendor`. User text never reaches the query language raw: it is
tokenised into letters-and-digits words, and each word is quoted (FTS5) or passed as a
bound parameter of a tsquery built only from such words (PostgreSQL).

Speed on the tail. With a Zipf-like vocabulary a common word matches tens of thousands of
chunks and ranking all of them costs ~1 µs a row (100 ms at 100k). So the number of rows
ranked is bounded by ``CANDIDATE_CAP``:

1. every word's document frequency is counted, capped (cheap: the count stops at the cap);
2. with several words, chunks containing all of them are tried first (precise, usually few);
3. then chunks containing any of the rarer words, taking words from the rarest up while the
   sum of their frequencies stays within the cap — common words add little to bm25 anyway;
4. when every word is common, only the newest ``CANDIDATE_CAP`` matching chunks are ranked
   (a rowid floor found by walking the index backwards, which FTS5 does without ranking).
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

from django.db import connection

CANDIDATE_CAP = 2000
MAX_TERMS = 16
PREFIX_MIN_CHARS = 3
STOP_WORDS = frozenset("""
a about above after again all am an and any are as at be because been before being below between both but by
can could did do does doing down during each few for from further had has have having he her here hers him his
how i if in into is it its itself just me more most my no nor not now of off on once only or other our ours out
over own please same she should so some such than that the their theirs them then there these they this those
through to too under until up very was we were what when where which while who whom why will with would you your
yours
""".split())
_WORD = re.compile(r"[^\W_]+")
_MARK_OPEN, _MARK_CLOSE = "\x02", "\x03"


@dataclass(frozen=True)
class Scope:
    """Which entries the searcher may see and the filters they asked for."""

    user_id: int | None  # None: staff, sees everything
    category: str | None = None
    tag: str | None = None


@dataclass
class Hit:
    chunk_id: int
    entry_id: int
    score: float
    snippet: str = ""


def tokenise(q: str) -> list[str]:
    """Lower-case letter/digit words, de-duplicated, stop words dropped, at most ``MAX_TERMS``.

    Stop words go first so a chatty question ("could you tell me how I …") keeps its
    meaningful words within the cap; a query made only of stop words keeps them.
    """
    words: list[str] = []
    for word in _WORD.findall(q.lower()):
        if word not in words:
            words.append(word)
    meaningful = [w for w in words if w not in STOP_WORDS]
    return (meaningful or words)[:MAX_TERMS]


def search_chunks(q: str, *, scope: Scope, limit: int = 10, prefix: bool = False) -> list[Hit]:
    """The best chunk of each of the ``limit`` best entries, best first, with snippets.

    ``prefix`` makes the last word match as a prefix (search as you type).
    """
    words = tokenise(q)
    if not words:
        return []
    backend = _Postgres() if connection.vendor == "postgresql" else _Sqlite()
    with connection.cursor() as cursor:
        hits = backend.search(cursor, words, scope=scope, limit=limit, prefix=prefix)
        if hits:
            backend.add_snippets(cursor, hits, words, prefix=prefix)
    return hits


def render_snippet(raw: str) -> str:
    """HTML-escape the chunk text and turn the sentinel markers into <mark> tags."""
    escaped = html.escape(raw, quote=False)
    return escaped.replace(_MARK_OPEN, "<mark>").replace(_MARK_CLOSE, "</mark>")


def _scope_sql(scope: Scope, params: list) -> str:
    """WHERE conditions on the entry ``e`` for visibility and filters."""
    conditions = []
    if scope.user_id is not None:
        conditions.append("(e.owner_id = %s OR e.shared)")
        params.append(scope.user_id)
    if scope.category:
        conditions.append("e.category = %s")
        params.append(scope.category)
    if scope.tag:
        conditions.append("e.tag_index LIKE %s ESCAPE '\\'")
        tag = scope.tag.strip().lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        params.append(f"%,{tag},%")
    return " AND ".join(conditions) or "1=1"


def _best_per_entry(rows: list[tuple[int, int, float]], limit: int, hits: list[Hit]) -> None:
    """Append (chunk, entry, score) rows to ``hits``, keeping one chunk per entry."""
    seen = {hit.entry_id for hit in hits}
    for chunk_id, entry_id, score in rows:
        if len(hits) >= limit:
            return
        if entry_id not in seen:
            seen.add(entry_id)
            hits.append(Hit(chunk_id=chunk_id, entry_id=entry_id, score=float(score)))


class _Sqlite:
    TABLE = "knowledge_fts"

    def search(self, cursor, words: list[str], *, scope: Scope, limit: int, prefix: bool) -> list[Hit]:
        terms = [self._term(w, prefix=prefix and i == len(words) - 1) for i, w in enumerate(words)]
        freq = {t: self._capped_count(cursor, t) for t in terms}
        present = [t for t in terms if freq[t]]
        if not present:
            return []
        hits: list[Hit] = []
        fetch = limit * 4  # several chunks of one entry may rank high
        if len(present) > 1:
            self._rank(cursor, " AND ".join(present), scope, fetch, limit, hits)
        rare = self._within_budget(sorted(present, key=freq.get), freq)
        if len(hits) < limit and rare:
            self._rank(cursor, " OR ".join(rare), scope, fetch, limit, hits, bounded=True)
        if len(hits) < limit and len(rare) < len(present):
            self._rank(cursor, " OR ".join(present), scope, fetch, limit, hits)
        return hits

    @staticmethod
    def _term(word: str, *, prefix: bool) -> str:
        quoted = '"' + word.replace('"', '""') + '"'
        return quoted + "*" if prefix and len(word) >= PREFIX_MIN_CHARS else quoted

    def _capped_count(self, cursor, match: str) -> int:
        cursor.execute(
            f"SELECT count(*) FROM (SELECT 1 FROM {self.TABLE} WHERE {self.TABLE} MATCH %s LIMIT %s)",
            [match, CANDIDATE_CAP + 1],
        )
        return cursor.fetchone()[0]

    @staticmethod
    def _within_budget(terms: list[str], freq: dict[str, int]) -> list[str]:
        chosen, total = [], 0
        for term in terms:
            if total + freq[term] > CANDIDATE_CAP:
                break
            chosen.append(term)
            total += freq[term]
        return chosen

    def _rank(self, cursor, match: str, scope: Scope, fetch: int, limit: int, hits: list[Hit], *, bounded=False):
        params: list = [match]
        where = _scope_sql(scope, params)
        join = (
            f"FROM {self.TABLE} f JOIN knowledge_knowledgechunk c ON c.id = f.rowid "
            "JOIN knowledge_knowledgeentry e ON e.id = c.entry_id "
            f"WHERE {self.TABLE} MATCH %s AND {where}"
        )
        floor = None if bounded else self._floor(cursor, join, params)
        if floor is not None:
            join += " AND f.rowid >= %s"
            params = [*params, floor]
        cursor.execute(f"SELECT f.rowid, c.entry_id, f.rank {join} ORDER BY f.rank LIMIT %s", [*params, fetch])
        _best_per_entry([(r[0], r[1], -r[2]) for r in cursor.fetchall()], limit, hits)

    @staticmethod
    def _floor(cursor, join: str, params: list) -> int | None:
        """The rowid of the CANDIDATE_CAP-th newest match, or None when there are fewer."""
        cursor.execute(f"SELECT f.rowid {join} ORDER BY f.rowid DESC LIMIT 1 OFFSET %s", [*params, CANDIDATE_CAP - 1])
        row = cursor.fetchone()
        return row[0] if row else None

    def add_snippets(self, cursor, hits: list[Hit], words: list[str], *, prefix: bool) -> None:
        terms = [self._term(w, prefix=prefix and i == len(words) - 1) for i, w in enumerate(words)]
        match = " OR ".join(terms)
        for hit in hits:
            cursor.execute(
                f"SELECT snippet({self.TABLE}, 1, %s, %s, '…', 24) FROM {self.TABLE} "
                f"WHERE {self.TABLE} MATCH %s AND rowid = %s",
                [_MARK_OPEN, _MARK_CLOSE, match, hit.chunk_id],
            )
            row = cursor.fetchone()
            hit.snippet = render_snippet(row[0]) if row and row[0] else ""


class _Postgres:
    CONFIG = "english"

    def search(self, cursor, words: list[str], *, scope: Scope, limit: int, prefix: bool) -> list[Hit]:
        terms = [w + ":*" if prefix and i == len(words) - 1 and len(w) >= PREFIX_MIN_CHARS else w
                 for i, w in enumerate(words)]
        hits: list[Hit] = []
        fetch = limit * 4
        if len(terms) > 1:
            self._rank(cursor, " & ".join(terms), scope, fetch, limit, hits)
        if len(hits) < limit:
            self._rank(cursor, " | ".join(terms), scope, fetch, limit, hits)
        return hits

    def _rank(self, cursor, tsquery: str, scope: Scope, fetch: int, limit: int, hits: list[Hit]) -> None:
        # ``tsquery`` is built only from [^\W_]+ words and operators, so to_tsquery cannot fail on it.
        params: list = [self.CONFIG, tsquery]
        where = _scope_sql(scope, params)
        cursor.execute(
            f"""
            WITH q AS (SELECT to_tsquery(%s::regconfig, %s) AS query),
            candidates AS (
                SELECT c.id, c.entry_id, c.search_vector FROM knowledge_knowledgechunk c
                JOIN knowledge_knowledgeentry e ON e.id = c.entry_id, q
                WHERE c.search_vector @@ q.query AND {where}
                ORDER BY c.id DESC LIMIT {CANDIDATE_CAP}
            )
            SELECT candidates.id, candidates.entry_id, ts_rank_cd(candidates.search_vector, q.query, 1) AS score
            FROM candidates, q ORDER BY score DESC, candidates.id DESC LIMIT %s
            """,
            [*params, fetch],
        )
        _best_per_entry(cursor.fetchall(), limit, hits)

    def add_snippets(self, cursor, hits: list[Hit], words: list[str], *, prefix: bool) -> None:
        last = len(words) - 1
        terms = [w + ":*" if prefix and i == last and len(w) >= PREFIX_MIN_CHARS else w for i, w in enumerate(words)]
        options = f"StartSel={_MARK_OPEN}, StopSel={_MARK_CLOSE}, MaxWords=40, MinWords=15"
        cursor.execute(
            "SELECT c.id, ts_headline(%s::regconfig, c.text, to_tsquery(%s::regconfig, %s), %s) "
            "FROM knowledge_knowledgechunk c WHERE c.id = ANY(%s)",
            [self.CONFIG, self.CONFIG, " | ".join(terms), options, [h.chunk_id for h in hits]],
        )
        snippets = dict(cursor.fetchall())
        for hit in hits:
            hit.snippet = render_snippet(snippets.get(hit.chunk_id, ""))
