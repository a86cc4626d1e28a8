-- Announces session changes once per statement instead of once per row. The writer changes many
-- sessions in one multi-row statement; a row-level trigger ran a PL/pgSQL call and a pg_notify
-- per row, which halved write throughput. Now each statement sends one notification per 100
-- changed live sessions: "<application_name> <hex of id_hash>,<hex of id_hash>,…" (at most
-- about 6.5 kB, under the 8,000-byte payload limit). Listeners read the one-ID form of the
-- previous trigger too. As before, rows already past their deadline are skipped.
drop trigger sessions_notify_change on sessions;
drop function latch_notify_session_change();

create function latch_notify_session_changes() returns trigger
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

-- A trigger with transition tables serves one event only, hence two.
create trigger sessions_notify_update
    after update on sessions
    referencing old table as changed
    for each statement
    execute function latch_notify_session_changes();

create trigger sessions_notify_delete
    after delete on sessions
    referencing old table as changed
    for each statement
    execute function latch_notify_session_changes();
