-- Postgres Changes capture (stand-in hook, devstack only).
--
-- The real server reads committed changes from a temporary wal2json slot. wal2json is not
-- available in the embedded PostgreSQL, so the stand-in captures row changes with an
-- AFTER ROW trigger instead: the trigger stores the row images here and NOTIFYs the new
-- capture id. NOTIFY is delivered only after commit and in commit order, so listeners see
-- exactly the committed changes, in the order a WAL reader would, and nothing of a
-- transaction that rolled back. TRUNCATE fires no row trigger, so it is never delivered,
-- as on the real server.
--
-- Only the function and the capture table live here. The triggers are installed at
-- runtime by devstack/realtime/postgres_changes.py (PostgresChanges.start() and each
-- subscribe) on every table in publication supabase_realtime: the published tables are
-- created by supabase/migrations, which run after this file.

create schema if not exists devstack_cdc;
revoke all on schema devstack_cdc from public;

-- Unlogged: a capture row is read within milliseconds of its commit and pruned after a
-- minute; surviving a crash is not needed.
create unlogged table if not exists devstack_cdc.changes (
  id bigint generated always as identity primary key,
  relid oid not null,
  action text not null check (action in ('INSERT', 'UPDATE', 'DELETE')),
  record jsonb,
  old_record jsonb,
  -- The real payload's format: UTC, millisecond precision, 'Z' suffix.
  commit_timestamp text not null,
  captured_at timestamptz not null default clock_timestamp()
);
revoke all on devstack_cdc.changes from public;

-- security definer: the trigger fires as whichever role wrote the row (authenticated,
-- service_role, ...), none of which may touch the capture table.
create or replace function devstack_cdc.capture() returns trigger
language plpgsql security definer set search_path = '' as $$
declare
  change_id bigint;
begin
  insert into devstack_cdc.changes (relid, action, record, old_record, commit_timestamp)
  values (
    tg_relid,
    tg_op,
    case when tg_op in ('INSERT', 'UPDATE') then to_jsonb(new) end,
    case when tg_op in ('UPDATE', 'DELETE') then to_jsonb(old) end,
    to_char(clock_timestamp() at time zone 'utc', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))
  returning id into change_id;
  perform pg_notify('devstack_cdc', change_id::text);
  return null;
end $$;
revoke all on function devstack_cdc.capture() from public;
