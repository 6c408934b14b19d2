-- realtime.*: Realtime Authorization and Broadcast from the database (stand-in), as
-- supabase/realtime v2.129.8 (833cf36c) leaves a tenant database.
--
-- Ownership as on a real project (20260707120000_restrict_realtime_schema.ex): the schema
-- belongs to the platform's superuser, every object in it to supabase_realtime_admin;
-- project_postgres has USAGE (no CREATE) and ALL on realtime.messages but does not own it,
-- so a migration may not ALTER it or create functions in the schema. CREATE POLICY on it
-- works through the policy grants of 02_supautils.sql.
create schema if not exists realtime;
grant usage, create on schema realtime to supabase_realtime_admin;
grant usage on schema realtime to project_postgres with grant option;
grant usage on schema realtime to anon, authenticated, service_role;

-- 20240729143722_partition_messages_table.ex, 20240919163303_add_payload_to_messages.ex,
-- 20260514120000_add_binary_payload_to_messages.ex (column and check, NOT VALID),
-- 20250905041441_create_messages_replay_index.ex (the partial index replay reads).
create table if not exists realtime.messages (
  topic text not null,
  extension text not null,
  payload jsonb,
  event text,
  private boolean default false,
  updated_at timestamp without time zone not null default now(),
  inserted_at timestamp without time zone not null default now(),
  id uuid not null default gen_random_uuid(),
  binary_payload bytea,
  primary key (id, inserted_at)
) partition by range (inserted_at);
do $$
begin
  alter table realtime.messages add constraint messages_payload_exclusive
    check (payload is null or binary_payload is null) not valid;
exception when duplicate_object then null;
end $$;
create index if not exists messages_inserted_at_topic_index
  on realtime.messages (inserted_at desc, topic)
  where extension = 'broadcast' and private is true;
alter table realtime.messages enable row level security;
alter table realtime.messages owner to supabase_realtime_admin;
grant select, insert, update on realtime.messages to anon, authenticated, service_role;
grant all on realtime.messages to project_postgres;
grant select, insert on realtime.messages to project_postgres with grant option;

-- Daily partitions as the server keeps them: Realtime.Tenants.create_messages_partitions/1
-- (UTC, yesterday to today + 3, owned by supabase_realtime_admin) when the tenant
-- connects, and Realtime.Messages.delete_old_messages/1 (drops partitions whose day is
-- before the UTC date 72 hours ago). The Realtime stand-in calls this at start and then
-- periodically; tests call it with another clock. Only the platform may run it.
create or replace function realtime.devstack_maintain_partitions(
  now_utc timestamp default (now() at time zone 'utc')
) returns void
language plpgsql security definer set search_path = '' as $$
declare
  d date;
  old record;
  oldest_kept date := (now_utc - interval '72 hours')::date;
begin
  for d in select generate_series(now_utc::date - 1, now_utc::date + 3, interval '1 day')::date
  loop
    execute format(
      'create table if not exists realtime.%I partition of realtime.messages '
      'for values from (%L) to (%L)',
      'messages_' || to_char(d, 'YYYY_MM_DD'), d, d + 1);
  end loop;
  for old in
    select c.relname from pg_catalog.pg_inherits i
    join pg_catalog.pg_class c on c.oid = i.inhrelid
    where i.inhparent = 'realtime.messages'::regclass
      and c.relname ~ '^messages_\d{4}_\d{2}_\d{2}$'
      and to_date(substr(c.relname, 10), 'YYYY_MM_DD') < oldest_kept
  loop
    execute format('drop table if exists realtime.%I', old.relname);
  end loop;
end $$;
alter function realtime.devstack_maintain_partitions(timestamp) owner to supabase_realtime_admin;
revoke all on function realtime.devstack_maintain_partitions(timestamp) from public;
select realtime.devstack_maintain_partitions();

create or replace function realtime.topic() returns text
language sql stable as $$
  select nullif(current_setting('realtime.topic', true), '')::text;
$$;

-- 20260605120000_rename_broadcast_send_warning.ex: every error (a missing partition
-- included) becomes a WARNING; the broadcast is lost, the caller's transaction commits.
create or replace function realtime.send(payload jsonb, event text, topic text, private boolean default true)
returns void
language plpgsql as $$
declare
  generated_id uuid;
  final_payload jsonb;
begin
  begin
    generated_id := gen_random_uuid();
    if payload ? 'id' then
      final_payload := payload;
    else
      final_payload := jsonb_set(payload, '{id}', to_jsonb(generated_id));
    end if;
    execute format('set local realtime.topic to %L', topic);
    insert into realtime.messages (id, payload, event, topic, private, extension)
    values (generated_id, final_payload, event, topic, private, 'broadcast');
  exception when others then
    raise warning 'WarnSendingBroadcastMessage: %', sqlerrm;
  end;
end;
$$;

create or replace function realtime.send_binary(payload bytea, event text, topic text, private boolean default true)
returns void
language plpgsql as $$
declare
  generated_id uuid;
begin
  begin
    generated_id := gen_random_uuid();
    execute format('set local realtime.topic to %L', topic);
    insert into realtime.messages (id, binary_payload, event, topic, private, extension)
    values (generated_id, payload, event, topic, private, 'broadcast');
  exception when others then
    raise warning 'WarnSendingBroadcastMessage: %', sqlerrm;
  end;
end;
$$;

create or replace function realtime.broadcast_changes(
  topic_name text, event_name text, operation text, table_name text, table_schema text,
  new record, old record, level text default 'ROW'
) returns void
language plpgsql as $$
declare
  row_data jsonb := '{}'::jsonb;
begin
  if level = 'STATEMENT' then
    raise exception 'function can only be triggered for each row, not for each statement';
  end if;
  if operation in ('INSERT', 'UPDATE', 'DELETE') then
    row_data := jsonb_build_object('old_record', old, 'record', new, 'operation', operation,
                                   'table', table_name, 'schema', table_schema);
    perform realtime.send(row_data, event_name, topic_name);
  else
    raise exception 'Unexpected operation type: %s', operation;
  end if;
exception when others then
  raise exception 'Failed to process the record: %', sqlerrm;
end;
$$;

alter function realtime.topic() owner to supabase_realtime_admin;
alter function realtime.send(jsonb, text, text, boolean) owner to supabase_realtime_admin;
alter function realtime.send_binary(bytea, text, text, boolean) owner to supabase_realtime_admin;
alter function realtime.broadcast_changes(text, text, text, text, text, record, record, text)
  owner to supabase_realtime_admin;
grant execute on function realtime.topic() to anon, authenticated, service_role;
