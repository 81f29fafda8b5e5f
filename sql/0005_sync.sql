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
