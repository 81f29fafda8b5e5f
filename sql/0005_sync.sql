-- What background sync keeps per user, what it found, and the instance-wide pause after a 429.

-- Where each user's sync stands: the root etag last seen and the newest mtime fetched.
CREATE TABLE sync_cursors (
    user_id      text        PRIMARY KEY,
    root_etag    text,
    watermark    timestamptz,
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- The default sink: the files sync found changed, one row per (user, file).
CREATE TABLE sync_items (
    user_id        text        NOT NULL,
    file_id        bigint      NOT NULL,
    path           text        NOT NULL,
    etag           text        NOT NULL,
    size           bigint      NOT NULL,
    last_modified  timestamptz NOT NULL,
    seen_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, file_id)
);

-- Nextcloud throttles per remote address, so one 429 pauses every replica's calls to it.
CREATE TABLE nextcloud_pause (
    instance      text        PRIMARY KEY,
    paused_until  timestamptz NOT NULL,
    reason        text        NOT NULL
);
-- One row per instance from the start, so that pausing is always an UPDATE that can lock it.
INSERT INTO nextcloud_pause (instance, paused_until, reason) VALUES ('nextcloud', 'epoch', 'never paused');

GRANT SELECT, INSERT, UPDATE, DELETE ON sync_cursors, sync_items, nextcloud_pause TO credledger_app;

-- The first passage of a sync's revocation gate in one round trip: take the user's shared lock,
-- then read what the sync needs if the credential is still the active one. In a VOLATILE plpgsql
-- function each statement takes a new snapshot (READ COMMITTED), so the read happens after the
-- lock is held and sees every revocation that committed before it: the order the gate needs.
CREATE FUNCTION sync_gate_open(p_lock_class integer, p_user_id text, p_position bigint)
RETURNS TABLE (login_name text, key_id text, data text, schema_version integer,
               master_key_id text, nonce bytea, wrapped_key bytea,
               root_etag text, watermark timestamptz)
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM pg_advisory_lock_shared(p_lock_class, hashtext(p_user_id));
    RETURN QUERY
        SELECT s.login_name, s.key_id, e.data::text, e.schema_version,
               k.master_key_id, k.nonce, k.wrapped_key, c.root_etag, c.watermark
        FROM credential_state s
        JOIN events e ON e.position = s.credential_position
        LEFT JOIN user_keys k ON k.key_id = s.key_id AND k.user_id = s.user_id
        LEFT JOIN sync_cursors c ON c.user_id = s.user_id
        WHERE s.user_id = p_user_id AND s.status = 'active' AND s.credential_position = p_position;
END
$$;

GRANT EXECUTE ON FUNCTION sync_gate_open(integer, text, bigint) TO credledger_app;
