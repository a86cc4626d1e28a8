-- Tells every app instance (LISTEN latch_sessions) that a live session changed or went away, so
-- the instances' in-memory caches drop their copy at once. The payload is
-- "<application_name> <hex of id_hash>": each instance names its connections uniquely and skips
-- its own changes, which it has already applied to its cache. Rows past their deadline (what the
-- purge deletes) are skipped: no cache ever serves an expired session.
create function latch_notify_session_change() returns trigger
language plpgsql as $$
begin
    perform pg_notify(
        'latch_sessions',
        coalesce(current_setting('application_name', true), '') || ' ' || encode(old.id_hash, 'hex')
    );
    return null;
end;
$$;

create trigger sessions_notify_change
    after update or delete on sessions
    for each row
    when (old.expires_at > (extract(epoch from now()) * 1000)::bigint)
    execute function latch_notify_session_change();
