-- Analytics rollups (session_buddy_store::analytics::ROLLUP_US; the same design as SQLite's
-- 0009_rollups.sql): per component and hour of started_at, the integer sums the analytics read
-- and the count of each error, and the hours whose rollup is out of date. Triggers mark the
-- hour of every session row inserted, changed in a column the analytics read, or deleted, and
-- of every command event rewritten (redaction). A mark that is already there is not written
-- again (the NOT EXISTS), so concurrent ingest into the same hour takes no row lock on it.
CREATE TABLE rollup_hours (
    component       TEXT   NOT NULL,
    hour            BIGINT NOT NULL,
    sessions        BIGINT NOT NULL,
    active          BIGINT NOT NULL,
    finished        BIGINT NOT NULL,
    duration_us     BIGINT NOT NULL,
    failed          BIGINT NOT NULL,
    abandoned       BIGINT NOT NULL,
    commands        BIGINT NOT NULL,
    failed_commands BIGINT NOT NULL,
    last_started    BIGINT,
    PRIMARY KEY (component, hour)
);

CREATE TABLE rollup_errors (
    component TEXT   NOT NULL,
    hour      BIGINT NOT NULL,
    error     TEXT   NOT NULL,
    n         BIGINT NOT NULL,
    PRIMARY KEY (component, hour, error)
);

-- A window's hours, every component: a range of this index.
CREATE INDEX rollup_hours_by_hour ON rollup_hours (hour);
CREATE INDEX rollup_errors_by_hour ON rollup_errors (hour);

CREATE TABLE rollup_dirty (
    component TEXT   NOT NULL,
    hour      BIGINT NOT NULL,
    PRIMARY KEY (component, hour)
);

-- started_at / 1 h, rounded down.
CREATE FUNCTION rollup_hour(started_at BIGINT) RETURNS BIGINT
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT (started_at - (((started_at % 3600000000) + 3600000000) % 3600000000)) / 3600000000
$$;

-- The hours of the rows a statement inserted or deleted (its transition table).
CREATE FUNCTION rollup_mark_rows() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO rollup_dirty (component, hour)
    SELECT DISTINCT r.component, rollup_hour(r.started_at) FROM rollup_rows r
    WHERE NOT EXISTS (SELECT 1 FROM rollup_dirty d
                      WHERE d.component = r.component AND d.hour = rollup_hour(r.started_at))
    ORDER BY 1, 2
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END $$;

CREATE FUNCTION rollup_mark_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
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

CREATE FUNCTION rollup_mark_rewritten() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO rollup_dirty (component, hour)
    SELECT component, rollup_hour(started_at) FROM sessions WHERE session_id = NEW.session_id
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END $$;

CREATE TRIGGER sessions_rollup_insert AFTER INSERT ON sessions
    REFERENCING NEW TABLE AS rollup_rows FOR EACH STATEMENT EXECUTE FUNCTION rollup_mark_rows();
CREATE TRIGGER sessions_rollup_delete AFTER DELETE ON sessions
    REFERENCING OLD TABLE AS rollup_rows FOR EACH STATEMENT EXECUTE FUNCTION rollup_mark_rows();
CREATE TRIGGER sessions_rollup_update AFTER UPDATE OF
    component, started_at, status, duration_us, error_count, command_count, exit_code, signal,
    end_reason
ON sessions FOR EACH ROW EXECUTE FUNCTION rollup_mark_updated();
CREATE TRIGGER events_rollup_rewrite AFTER UPDATE OF payload ON events
    FOR EACH ROW WHEN (NEW.event_type = 'command') EXECUTE FUNCTION rollup_mark_rewritten();

-- Every hour already stored is marked; connecting builds their rollups.
INSERT INTO rollup_dirty (component, hour)
SELECT DISTINCT component, rollup_hour(started_at) FROM sessions
ON CONFLICT DO NOTHING;
