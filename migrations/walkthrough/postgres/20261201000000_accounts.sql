-- The walkthrough's accounts, for its "Real accounts" step: latch keeps the sessions, the app
-- keeps who its users are.
create table accounts (
    id            bigint generated always as identity primary key,
    -- as typed at registration, for display
    username      text   not null,
    -- lowercased: two usernames that differ only in case are the same account
    username_key  text   not null unique,
    -- argon2id, as a PHC string (algorithm, parameters, salt and hash)
    password_hash text   not null,
    created_at    bigint not null
);

-- Attempts that are throttled, one row per attempt and scope: failed sign-ins per username
-- ("sign-in user:<username_key>") and per client address ("sign-in address:<ip>"), and
-- registrations per client address ("register address:<ip>"). Rows older than the throttling
-- window are deleted as new ones arrive. Kept in the database so the limits hold across
-- instances.
create table throttled_attempts (
    scope text   not null,
    at    bigint not null
);
create index throttled_attempts_scope_idx on throttled_attempts (scope, at);
create index throttled_attempts_at_idx on throttled_attempts (at);
