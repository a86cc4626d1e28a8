-- The walkthrough's accounts, for its "Real accounts" step: latch keeps the sessions, the app
-- keeps who its users are.
create table accounts (
    id            integer primary key autoincrement,
    -- as typed at registration, for display
    username      text    not null,
    -- lowercased: two usernames that differ only in case are the same account
    username_key  text    not null unique,
    -- argon2id, as a PHC string (algorithm, parameters, salt and hash)
    password_hash text    not null,
    created_at    integer not null
);

-- Failed sign-ins, one row per failure and scope ("user:<username_key>", "addr:<address>"),
-- for throttling; rows older than the throttling window are deleted as new ones arrive.
create table sign_in_failures (
    scope     text    not null,
    failed_at integer not null
);
create index sign_in_failures_scope_idx on sign_in_failures (scope, failed_at);
create index sign_in_failures_failed_at_idx on sign_in_failures (failed_at);
