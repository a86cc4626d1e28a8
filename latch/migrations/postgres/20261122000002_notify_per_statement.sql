-- Announces updates once per statement instead of once per row. The writer updates many
-- sessions in one multi-row statement; a row-level trigger ran a PL/pgSQL call and a pg_notify
-- per row, which halved write throughput. Now each update statement sends one notification per
-- 100 changed live sessions: "<application_name> <hex of id_hash>,<hex of id_hash>,…" (at most
-- about 6.5 kB, under the 8,000-byte payload limit). Listeners read the one-ID form too.
--
-- Deletes keep the row-level trigger: the purge deletes a thousand expired rows per statement,
-- and the per-row WHEN test skips those without copying them into a transition table, while live
-- sessions are deleted a few logouts at a time.
drop trigger sessions_notify_change on sessions;

create function latch_notify_session_updates() returns trigger
language plpgsql as $$
declare
    sender text := coalesce(current_setting('application_name', true), '');
    now_ms bigint := (extract(epoch from now()) * 1000)::bigint;
    payload text;
begin
    for payload in
        select sender || ' ' || string_agg(encode(id_hash, 'hex'), ',')
        from (
            select id_hash, (row_number() over () - 1) / 100 as chunk
            from changed
            where expires_at > now_ms
        ) live
        group by chunk
    loop
        perform pg_notify('latch_sessions', payload);
    end loop;
    return null;
end;
$$;

create trigger sessions_notify_update
    after update on sessions
    referencing old table as changed
    for each statement
    execute function latch_notify_session_updates();

create trigger sessions_notify_delete
    after delete on sessions
    for each row
    when (old.expires_at > (extract(epoch from now()) * 1000)::bigint)
    execute function latch_notify_session_change();
