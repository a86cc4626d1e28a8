-- Sessions that know their user: who signed in, from where, and when last seen, so an app can
-- list one user's sessions and sign out one device, all others, or all of them.
--
-- All of it is null for anonymous sessions, which the partial index leaves out: tutorial and
-- anonymous sessions pay nothing for it.
alter table sessions
    add column user_id text,
    -- an opaque name for the session in lists and revocations: random, never derived from the ID
    add column handle bytea,
    add column signed_in_at bigint,
    -- the client at sign-in: its User-Agent (truncated) and address (truncated to /24 or /48)
    add column user_agent text,
    add column address text,
    -- the user's auth epoch when the session signed in; bumping it ends older sessions
    add column auth_epoch bigint,
    -- moved forward by every write and every (throttled) touch
    add column last_seen bigint;

create index sessions_user_id_idx on sessions (user_id) where user_id is not null;

-- One row per user who ever signed in: the auth epoch (see `bump_auth_epoch`). Signing in locks
-- the user's row, so a sign-in and a bump of the same user take turns.
create table latch_users (
    user_id    text   primary key,
    auth_epoch bigint not null default 0
);
