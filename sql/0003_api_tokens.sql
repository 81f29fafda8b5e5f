-- Bearer tokens for auditors and admins, projected from token.created / token.revoked events.

-- The log holds the truth (who issued or withdrew which token, when); this table only makes the
-- per-request lookup by token_id cheap. It holds the SHA-256 of each token, never the token: a
-- copy of the database lets nobody in.
CREATE TABLE api_tokens (
    token_id          text        PRIMARY KEY,
    name              text        NOT NULL,
    role              text        NOT NULL CHECK (role IN ('auditor', 'admin')),
    digest            text        NOT NULL,
    created_at        timestamptz NOT NULL,
    created_position  bigint      NOT NULL,
    revoked_at        timestamptz,
    revoked_position  bigint
);

-- Written by the append hook in the append's transaction, which runs as the service role.
GRANT SELECT, INSERT, UPDATE ON api_tokens TO credledger_app;
