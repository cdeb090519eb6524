-- Export (`session-buddy export`) pages through every event in time order.
CREATE INDEX events_by_time ON events (ts, event_id);
