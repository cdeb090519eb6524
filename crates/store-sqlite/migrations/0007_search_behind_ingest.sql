-- The text search's session index (`session_text`, FTS5) is filled behind ingest, thousands of
-- sessions at a time (`search::Indexer`), no longer inside every ingest transaction: FTS5
-- writes a new segment per transaction, which cost single-event ingest about a quarter of its
-- throughput. Every session whose start is at or below `indexed_through` (an `events` rowid)
-- is in `session_text`; a search tests the starts above it directly.
CREATE TABLE search_state (
    id              INTEGER PRIMARY KEY CHECK (id = 1),
    indexed_through INTEGER NOT NULL
);
-- Until now every session was indexed as it was stored.
INSERT INTO search_state (id, indexed_through) SELECT 1, coalesce(max(rowid), 0) FROM events;
