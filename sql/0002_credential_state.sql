-- Data keys (the one place rows are deleted: crypto-shredding), the credential projection and
-- projection checkpoints.

-- One data key per provisioned credential, wrapped by a master key. Deleting a row destroys every
-- ciphertext in the log that was sealed under it.
CREATE TABLE user_keys (
    key_id          text        PRIMARY KEY,
    user_id         text        NOT NULL,
    master_key_id   text        NOT NULL,
    nonce           bytea       NOT NULL,
    wrapped_key     bytea       NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    rewrapped_at    timestamptz
);
CREATE INDEX user_keys_user_id_idx ON user_keys (user_id);
CREATE INDEX user_keys_master_key_id_idx ON user_keys (master_key_id);

-- Each user's current credential, folded from the log by projections/credential_state.py.
-- Columns up to last_position are derived from events (rebuild recomputes and compares them);
-- the sync columns after them are bookkeeping written by sync, reset when a new credential arrives.
CREATE TABLE credential_state (
    user_id               text        PRIMARY KEY,
    status                text        NOT NULL
                          CHECK (status IN ('active', 'revoked', 'invalid', 'suspended', 'deleted')),
    login_name            text,
    scopes                jsonb       NOT NULL DEFAULT '[]',
    fingerprint           text,
    key_id                text,
    credential_position   bigint,
    provisioned_at        timestamptz,
    revoked_at            timestamptz,
    reason                text,
    user_disabled         boolean     NOT NULL DEFAULT false,
    last_position         bigint      NOT NULL,
    next_sync_at          timestamptz,
    last_sync_at          timestamptz,
    last_sync_status      text,
    consecutive_failures  integer     NOT NULL DEFAULT 0,
    lease_owner           text,
    lease_until           timestamptz
);

-- A sync tick asks for active users that are due: this keeps the question cheap at any size.
CREATE INDEX credential_state_due_idx ON credential_state (next_sync_at) WHERE status = 'active';

-- How far each projection has read the log, written in the same transaction as its output.
CREATE TABLE projection_checkpoints (
    name        text        PRIMARY KEY,
    position    bigint      NOT NULL,
    hash        bytea       NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

GRANT SELECT, INSERT, UPDATE, DELETE ON user_keys TO credledger_app;
GRANT SELECT, INSERT, UPDATE ON credential_state TO credledger_app;
GRANT SELECT, INSERT, UPDATE ON projection_checkpoints TO credledger_app;
