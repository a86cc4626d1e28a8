-- Server-side session state, one row per live session.
--
-- The key is the SHA-256 of the session ID, never the ID itself: the ID is a bearer token that
-- only the browser holds (inside an encrypted cookie), so a copy of this table cannot be replayed.
-- Times are Unix milliseconds; load and purge compare them the same way.
create table sessions (
    id_hash    bytea  primary key check (octet_length(id_hash) = 32),
    -- a JSON object, one entry per session key; text rather than jsonb because it is only ever
    -- read and written whole, never queried into
    data       text   not null,
    -- bumped by every data write, so concurrent writers detect each other (optimistic locking)
    version    bigint not null default 0,
    -- the absolute timeout counts from creation
    created_at bigint not null,
    -- min(last activity + idle timeout, created_at + absolute timeout)
    expires_at bigint not null
);

-- The purge deletes in batches by expiry.
create index sessions_expires_at_idx on sessions (expires_at);
