-- The append-only, hash-chained event log and the role the service works as.

-- The service connects (or SETs ROLE) as credledger_app, which may only read and append the log.
-- Roles are cluster-wide, so creating it must tolerate another database having done so already.
DO $$
BEGIN
    CREATE ROLE credledger_app NOLOGIN;
EXCEPTION
    WHEN duplicate_object OR unique_violation THEN NULL;
END
$$;

-- Lets the connecting (owning) user switch to the service role even when it is not a superuser.
DO $$
BEGIN
    EXECUTE format('GRANT credledger_app TO %I', current_user);
EXCEPTION
    WHEN invalid_grant_operation OR duplicate_object THEN NULL;
END
$$;

CREATE TABLE events (
    position        bigint      PRIMARY KEY CHECK (position > 0),
    event_id        text        NOT NULL,
    source          text        NOT NULL,
    stream          text        NOT NULL,
    stream_version  bigint      NOT NULL CHECK (stream_version > 0),
    type            text        NOT NULL,
    schema_version  integer     NOT NULL CHECK (schema_version > 0),
    data            jsonb       NOT NULL,
    metadata        jsonb       NOT NULL,
    occurred_at     timestamptz NOT NULL,
    recorded_at     timestamptz NOT NULL,
    prev_hash       bytea       NOT NULL CHECK (length(prev_hash) = 32),
    hash            bytea       NOT NULL CHECK (length(hash) = 32),
    -- The sender's delivery id is the idempotency key, forever (not for a time window).
    CONSTRAINT events_source_event_id_key UNIQUE (source, event_id),
    CONSTRAINT events_stream_version_key UNIQUE (stream, stream_version)
);

CREATE INDEX events_type_position_idx ON events (type, position);
-- recorded_at grows with position, so a BRIN index answers time ranges for almost no write cost.
CREATE INDEX events_recorded_at_idx ON events USING brin (recorded_at);

-- Append-only for everyone, owner included: the privileges below stop the service role, these
-- triggers stop the owner. Only a superuser who disables them can rewrite history, and the hash
-- chain makes that visible to `credledger verify`.
CREATE FUNCTION events_reject_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the event log is append-only: % is not allowed on events', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER events_no_update_or_delete
    BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_reject_change();

CREATE TRIGGER events_no_truncate
    BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_reject_change();

REVOKE ALL ON events FROM PUBLIC;
GRANT SELECT, INSERT ON events TO credledger_app;

-- Readiness checks ask, as the service role, whether the schema is current.
GRANT SELECT ON schema_migrations TO credledger_app;
