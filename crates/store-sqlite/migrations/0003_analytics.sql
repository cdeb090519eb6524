-- Analytics scan one component's sessions in a start-time range: a covering index with every
-- column they aggregate, so no analytics query reads table rows. (sessions_by_component stays:
-- it orders list-sessions --component by start and session id without a sort.)
CREATE INDEX sessions_analytics ON sessions (
    component, started_at, status, duration_us, error_count, command_count, exit_code, signal,
    end_reason
);
