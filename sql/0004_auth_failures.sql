-- Failed authentication attempts, counted per user and per remote address in fixed windows.
-- Kept in PostgreSQL so that every replica behind the load balancer sees the same counts.
CREATE TABLE auth_failures (
    scope         text        NOT NULL CHECK (scope IN ('user', 'address')),
    key           text        NOT NULL,
    window_start  timestamptz NOT NULL,
    failures      integer     NOT NULL,
    PRIMARY KEY (scope, key)
);

GRANT SELECT, INSERT, UPDATE, DELETE ON auth_failures TO credledger_app;
