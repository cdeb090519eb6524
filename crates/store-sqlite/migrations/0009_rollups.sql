-- Analytics rollups (session_buddy_store::analytics::ROLLUP_US): per component and hour of
-- started_at, the integer sums the analytics read and the count of each error. A trigger marks
-- the hour of every session row inserted, changed in a column the analytics read, or deleted,
-- and of every command event rewritten (redaction); marked hours are read from the sessions
-- until the maintenance step recomputes them. The hour is started_at / 1 h rounded down.
CREATE TABLE rollup_hours (
    component       TEXT    NOT NULL,
    hour            INTEGER NOT NULL,
    sessions        INTEGER NOT NULL,
    active          INTEGER NOT NULL,
    finished        INTEGER NOT NULL,
    duration_us     INTEGER NOT NULL,
    failed          INTEGER NOT NULL,
    abandoned       INTEGER NOT NULL,
    commands        INTEGER NOT NULL,
    failed_commands INTEGER NOT NULL,
    last_started    INTEGER,
    PRIMARY KEY (component, hour)
) WITHOUT ROWID;

CREATE TABLE rollup_errors (
    component TEXT    NOT NULL,
    hour      INTEGER NOT NULL,
    error     TEXT    NOT NULL,
    n         INTEGER NOT NULL,
    PRIMARY KEY (component, hour, error)
) WITHOUT ROWID;

CREATE TABLE rollup_dirty (
    component TEXT    NOT NULL,
    hour      INTEGER NOT NULL,
    PRIMARY KEY (component, hour)
) WITHOUT ROWID;

CREATE TRIGGER sessions_rollup_insert AFTER INSERT ON sessions BEGIN
    INSERT OR IGNORE INTO rollup_dirty (component, hour) VALUES (new.component,
        (new.started_at - (((new.started_at % 3600000000) + 3600000000) % 3600000000)) / 3600000000);
END;

CREATE TRIGGER sessions_rollup_update AFTER UPDATE OF
    component, started_at, status, duration_us, error_count, command_count, exit_code, signal,
    end_reason
ON sessions BEGIN
    INSERT OR IGNORE INTO rollup_dirty (component, hour) VALUES (old.component,
        (old.started_at - (((old.started_at % 3600000000) + 3600000000) % 3600000000)) / 3600000000);
    INSERT OR IGNORE INTO rollup_dirty (component, hour) VALUES (new.component,
        (new.started_at - (((new.started_at % 3600000000) + 3600000000) % 3600000000)) / 3600000000);
END;

CREATE TRIGGER sessions_rollup_delete AFTER DELETE ON sessions BEGIN
    INSERT OR IGNORE INTO rollup_dirty (component, hour) VALUES (old.component,
        (old.started_at - (((old.started_at % 3600000000) + 3600000000) % 3600000000)) / 3600000000);
END;

CREATE TRIGGER events_rollup_rewrite AFTER UPDATE OF payload ON events
WHEN new.event_type = 'command' BEGIN
    INSERT OR IGNORE INTO rollup_dirty (component, hour)
    SELECT component,
           (started_at - (((started_at % 3600000000) + 3600000000) % 3600000000)) / 3600000000
    FROM sessions WHERE session_id = new.session_id;
END;

-- Every hour already stored is marked; opening the store builds their rollups.
INSERT OR IGNORE INTO rollup_dirty (component, hour)
SELECT DISTINCT component,
       (started_at - (((started_at % 3600000000) + 3600000000) % 3600000000)) / 3600000000
FROM sessions;
