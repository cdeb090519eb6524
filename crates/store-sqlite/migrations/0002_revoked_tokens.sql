-- Revoked tokens (`session-buddy token revoke JTI`): the server refuses a token whose `jti` is
-- here. A row can go once its token has expired (`expires_at`, µs since the epoch, UTC; NULL:
-- unknown, kept).
CREATE TABLE revoked_tokens (
    jti        TEXT PRIMARY KEY,
    revoked_at INTEGER NOT NULL,
    expires_at INTEGER
) WITHOUT ROWID;
