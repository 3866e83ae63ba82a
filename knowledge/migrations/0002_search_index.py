"""The full-text index over chunks, per database vendor.

SQLite: an FTS5 external-content table over knowledge_knowledgechunk, kept in step by
triggers, so every insert/update/delete of a chunk (services, admin, cascades) updates the
index inside the same transaction. PostgreSQL: a stored generated tsvector column with a GIN
index, which the database keeps in step by definition.
"""

from django.db import migrations

SQLITE_FORWARD = [
    """
    CREATE VIRTUAL TABLE knowledge_fts USING fts5(
        search_heading, text,
        content='knowledge_knowledgechunk', content_rowid='id',
        tokenize='porter unicode61 remove_diacritics 2'
    )
    """,
    # Headings and titles weigh twice the body text in bm25.
    "INSERT INTO knowledge_fts(knowledge_fts, rank) VALUES('rank', 'bm25(2.0, 1.0)')",
    """
    CREATE TRIGGER knowledge_chunk_ai AFTER INSERT ON knowledge_knowledgechunk BEGIN
        INSERT INTO knowledge_fts(rowid, search_heading, text) VALUES (new.id, new.search_heading, new.text);
    END
    """,
    """
    CREATE TRIGGER knowledge_chunk_ad AFTER DELETE ON knowledge_knowledgechunk BEGIN
        INSERT INTO knowledge_fts(knowledge_fts, rowid, search_heading, text)
        VALUES ('delete', old.id, old.search_heading, old.text);
    END
    """,
    """
    CREATE TRIGGER knowledge_chunk_au AFTER UPDATE ON knowledge_knowledgechunk BEGIN
        INSERT INTO knowledge_fts(knowledge_fts, rowid, search_heading, text)
        VALUES ('delete', old.id, old.search_heading, old.text);
        INSERT INTO knowledge_fts(rowid, search_heading, text) VALUES (new.id, new.search_heading, new.text);
    END
    """,
    "INSERT INTO knowledge_fts(knowledge_fts) VALUES('rebuild')",
]
SQLITE_BACKWARD = [
    "DROP TRIGGER IF EXISTS knowledge_chunk_au",
    "DROP TRIGGER IF EXISTS knowledge_chunk_ad",
    "DROP TRIGGER IF EXISTS knowledge_chunk_ai",
    "DROP TABLE IF EXISTS knowledge_fts",
]
POSTGRES_FORWARD = [
    """
    ALTER TABLE knowledge_knowledgechunk ADD COLUMN search_vector tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('english', coalesce(search_heading, '')), 'A')
        || setweight(to_tsvector('english', coalesce(text, '')), 'B')
    ) STORED
    """,
    "CREATE INDEX knowledge_chunk_search_gin ON knowledge_knowledgechunk USING GIN (search_vector)",
]
POSTGRES_BACKWARD = [
    "DROP INDEX IF EXISTS knowledge_chunk_search_gin",
    "ALTER TABLE knowledge_knowledgechunk DROP COLUMN IF EXISTS search_vector",
]


def _run(statements_by_vendor):
    def run(apps, schema_editor):
        for sql in statements_by_vendor.get(schema_editor.connection.vendor, []):
            schema_editor.execute(sql)

    return run


class Migration(migrations.Migration):
    dependencies = [("knowledge", "0001_initial")]

    operations = [
        migrations.RunPython(
            _run({"sqlite": SQLITE_FORWARD, "postgresql": POSTGRES_FORWARD}),
            _run({"sqlite": SQLITE_BACKWARD, "postgresql": POSTGRES_BACKWARD}),
        ),
    ]
