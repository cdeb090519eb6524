-- The rollup refresh without a lock on the sessions and events (analytics.rs, refresh_rollups).
--
-- Before: the refresh took SHARE locks on sessions and events for the whole recomputation, so
-- ingest stood still while it ran (seconds per batch at millions of sessions, a quarter of an
-- hour for the build of a migrated database) and autovacuum of either table (which holds SHARE
-- UPDATE EXCLUSIVE) kept it from running at all.
--
-- Now the refresh first claims marked hours in a short transaction: it moves their marks from
-- rollup_dirty to rollup_building under a SHARE lock of rollup_dirty alone, then recomputes them
-- from a snapshot taken after that, without any lock ingest waits for. The mark triggers lock
-- rollup_dirty in ROW EXCLUSIVE mode (a weak, fast-path lock) before they look for an existing
-- mark, so the claim waits for every write that saw a mark and skipped writing its own, and a
-- write that starts after the claim finds the mark gone and writes a new one. A query treats an
-- hour in either table as out of date and reads it from the sessions.
CREATE TABLE rollup_building (
    component TEXT   NOT NULL,
    hour      BIGINT NOT NULL,
    PRIMARY KEY (component, hour)
);

CREATE OR REPLACE FUNCTION rollup_mark_rows() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    LOCK TABLE rollup_dirty IN ROW EXCLUSIVE MODE;
    INSERT INTO rollup_dirty (component, hour)
    SELECT DISTINCT r.component, rollup_hour(r.started_at) FROM rollup_rows r
    WHERE NOT EXISTS (SELECT 1 FROM rollup_dirty d
                      WHERE d.component = r.component AND d.hour = rollup_hour(r.started_at))
    ORDER BY 1, 2
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION rollup_mark_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    LOCK TABLE rollup_dirty IN ROW EXCLUSIVE MODE;
    IF NOT EXISTS (SELECT 1 FROM rollup_dirty
                   WHERE component = NEW.component AND hour = rollup_hour(NEW.started_at)) THEN
        INSERT INTO rollup_dirty (component, hour)
        VALUES (NEW.component, rollup_hour(NEW.started_at)) ON CONFLICT DO NOTHING;
    END IF;
    IF (OLD.component, OLD.started_at) IS DISTINCT FROM (NEW.component, NEW.started_at) THEN
        INSERT INTO rollup_dirty (component, hour)
        VALUES (OLD.component, rollup_hour(OLD.started_at)) ON CONFLICT DO NOTHING;
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION rollup_mark_rewritten() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    LOCK TABLE rollup_dirty IN ROW EXCLUSIVE MODE;
    INSERT INTO rollup_dirty (component, hour)
    SELECT component, rollup_hour(started_at) FROM sessions WHERE session_id = NEW.session_id
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END $$;
