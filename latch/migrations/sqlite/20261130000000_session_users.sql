-- Sessions that know their user: who signed in, from where, and when last seen, so an app can
-- list one user's sessions and sign out one device, all others, or all of them.
--
-- All of it is null for anonymous sessions, which the partial index leaves out: tutorial and
-- anonymous sessions pay nothing for it.
alter table sessions add column user_id text;
-- An opaque name for the session in lists and revocations: random, never derived from the ID.
alter table sessions add column handle blob;
alter table sessions add column signed_in_at integer;
-- The client at sign-in: its User-Agent (truncated) and address (truncated to /24 or /48).
alter table sessions add column user_agent text;
alter table sessions add column address text;
-- The user's auth epoch when the session signed in; bumping it ends older sessions.
alter table sessions add column auth_epoch integer;
-- Moved forward by every write and every (throttled) touch.
alter table sessions add column last_seen integer;

create index sessions_user_id_idx on sessions (user_id) where user_id is not null;

-- One row per user who ever signed in: the auth epoch (see `bump_auth_epoch`).
create table latch_users (
    user_id    text    primary key not null,
    auth_epoch integer not null default 0
) without rowid;
