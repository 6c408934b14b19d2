-- Realtime: private org channels 'org:<org_id>:<topic>' and broadcasts from the database.
--
-- Realtime authorizes a private join by inserting probe rows into realtime.messages and
-- selecting them back as the token's role with realtime.topic() set to the channel's
-- sub-topic; a send is authorized by an INSERT under the same settings. These policies are
-- re-run on every token refresh, so they stay cheap: one claim read, exact topic parts.

create policy "org members receive their org's channels" on realtime.messages
  for select to authenticated
  using (
    realtime.messages.extension in ('broadcast', 'presence')
    and (select private.topic_is_own_org(realtime.topic()))
  );

-- Members may track presence on their org's channels; only admins and workers broadcast.
create policy "org members track presence, admins and workers broadcast" on realtime.messages
  for insert to authenticated
  with check (
    (select private.topic_is_own_org(realtime.topic()))
    and (
      realtime.messages.extension = 'presence'
      or (realtime.messages.extension = 'broadcast' and (select private.clerk_can_publish()))
    )
  );

-- Outbox -> private broadcast on org:<org_id>:<topic>. The payload carries the outbox id,
-- so a worker can tell a live copy from a caught-up one and checkpoint by id.
-- security definer: the broadcast must go out whoever inserted the row, and realtime.send
-- swallows errors (a denied insert into realtime.messages would silently lose it).
create or replace function private.broadcast_org_event() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
  perform realtime.send(
    jsonb_build_object('id', new.id, 'org_id', new.org_id, 'topic', new.topic,
                       'event', new.event, 'payload', new.payload,
                       'created_at', new.created_at),
    new.event,
    'org:' || new.org_id || ':' || new.topic,
    true);
  return null;
end $$;
revoke execute on function private.broadcast_org_event() from public, anon, authenticated;

create trigger org_events_broadcast
  after insert on public.org_events
  for each row execute function private.broadcast_org_event();

-- tasks -> realtime.broadcast_changes on org:<organization_id>:tasks (always private).
create or replace function private.broadcast_task_change() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
  perform realtime.broadcast_changes(
    'org:' || coalesce(new.organization_id, old.organization_id) || ':tasks',
    tg_op, tg_op, tg_table_name, tg_table_schema, new, old, tg_level);
  return null;
end $$;
revoke execute on function private.broadcast_task_change() from public, anon, authenticated;

create trigger tasks_broadcast
  after insert or update or delete on public.tasks
  for each row execute function private.broadcast_task_change();

-- Postgres Changes on tasks (per-subscriber RLS applies).
alter publication supabase_realtime add table public.tasks;
