-- Accounts that hold under attack.
--
-- An opaque id for each account, the one its sessions are signed in under and pages may show: the
-- sequential `id` would count the accounts. And the confusable skeleton (Unicode TR39) of the
-- username, unique, so that two usernames which look alike cannot both be registered. Both are
-- filled in for earlier accounts by the app at start (`accounts::backfill`): neither can be
-- computed in SQL.
alter table accounts add column public_id text;
alter table accounts add column username_skeleton text;
create unique index accounts_public_id_idx on accounts (public_id);
create unique index accounts_username_skeleton_idx on accounts (username_skeleton);

-- Throttled attempts are now claimed before the password is checked, and released when the
-- attempt succeeds: `claim` names the rows of one attempt. The rows only ever cover the last
-- window (minutes), so the table starts afresh rather than being converted.
drop table throttled_attempts;
create table throttled_attempts (
    scope text    not null,
    at    bigint not null,
    claim bigint not null
);
create index throttled_attempts_scope_idx on throttled_attempts (scope, at);
create index throttled_attempts_at_idx on throttled_attempts (at);
create index throttled_attempts_claim_idx on throttled_attempts (claim);
