-- Signed checkpoints: Ed25519 signatures over the log's size and head hash at a moment.

-- A checkpoint is only worth something once an auditor keeps a copy outside this database; the
-- table is where the service keeps its own and serves the latest from. The signature covers
-- `{"head_hash", "key_id", "log_size", "signed_at"}` as canonical JSON (see events/checkpoints.py),
-- so a row changed here no longer verifies. The public key is kept beside each signature so that a
-- checkpoint stays checkable after the signing key is rotated; its id is derived from it.
CREATE TABLE checkpoints (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    log_size    bigint      NOT NULL CHECK (log_size >= 0),
    head_hash   bytea       NOT NULL CHECK (length(head_hash) = 32),
    signed_at   timestamptz NOT NULL,
    key_id      text        NOT NULL,
    signature   bytea       NOT NULL CHECK (length(signature) = 64),
    public_key  bytea       NOT NULL CHECK (length(public_key) = 32),
    -- One signature per size and key: a second replica signing the same head stores nothing.
    CONSTRAINT checkpoints_log_size_key_id_key UNIQUE (log_size, key_id)
);

-- The service signs and reads checkpoints; it never changes or removes one.
GRANT SELECT, INSERT ON checkpoints TO credledger_app;
