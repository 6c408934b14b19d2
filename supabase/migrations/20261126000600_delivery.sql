-- At-least-once delivery: what the worker's outbox catch-up needs from the database.
--
-- Outbox ids are shared by every org and taken before commit, so a lower id can become
-- visible after a higher one. The worker keeps a low-water checkpoint L (every id <= L
-- visible to its org was handled or dead-lettered) and moves it only past ids that are
-- "settled": allocated more than WORKER_SETTLE_SECONDS before the start of a complete
-- catch-up read, by this database's clock. That needs created_at to be the allocation
-- time of the id (not the transaction start, and not a value chosen by the inserter),
-- and the database's clock next to the head of the outbox.

alter table public.org_events alter column created_at set default clock_timestamp();

-- The default alone can be overridden by an insert; a forged old created_at would look
-- settled at once and could let a checkpoint pass an id that commits later. The database
-- stamps every row itself, after the identity value is taken (defaults come first).
create or replace function private.stamp_org_event() returns trigger
language plpgsql set search_path = '' as $$
begin
  new.created_at := clock_timestamp();
  return new;
end $$;
revoke execute on function private.stamp_org_event() from public, anon, authenticated;

create trigger org_events_stamp
  before insert on public.org_events
  for each row execute function private.stamp_org_event();

-- The newest outbox id the caller's org can see and the database's clock, read together.
-- db_now is the transaction start: earlier than the snapshot of any later read, which is
-- what the worker's settle rule needs.
create or replace function public.outbox_position(topics text[] default null)
returns table (head bigint, db_now timestamptz)
language sql stable security invoker set search_path = '' as $$
  select coalesce(max(e.id), 0), now()
  from public.org_events e
  where e.org_id = (select private.clerk_org_id())
    and (topics is null or e.topic = any (topics))
$$;

-- Ids above last_event_id that the consumer already handled (at most 10000, ascending):
-- after a restart they are not handled again. Saving fewer only causes duplicates.
alter table public.worker_checkpoints
  add column handled_above bigint[] not null default '{}'
    check (cardinality(handled_above) <= 10000);

drop function public.save_worker_checkpoint(text, bigint);

-- Move the consumer's checkpoint forward (never back) for the caller's org, with the ids
-- handled above it. A save whose last_event_id is below the stored one changes nothing; at
-- the same last_event_id a worker's handled ids only grow, so a shorter list (a preflight
-- check saving '{}') does not replace a longer one.
create function public.save_worker_checkpoint(
  consumer text,
  last_event_id bigint,
  handled_above bigint[] default '{}'
) returns bigint
language plpgsql volatile security invoker set search_path = '' as $$
#variable_conflict use_column
declare
  org text := private.clerk_org_id();
  above bigint[];
  saved bigint;
begin
  if org is null then
    raise exception 'the token carries no organization (no o.id or org_id claim)'
      using errcode = '42501';
  end if;
  if last_event_id is null or last_event_id < 0 then
    raise exception 'last_event_id must be a non-negative integer' using errcode = '22023';
  end if;
  if cardinality(coalesce(handled_above, '{}')) > 10000 then
    raise exception 'handled_above holds more than 10000 ids' using errcode = '22023';
  end if;
  select coalesce(array_agg(distinct h order by h), '{}') into above
  from unnest(coalesce(save_worker_checkpoint.handled_above, '{}')) as h
  where h > save_worker_checkpoint.last_event_id;
  insert into public.worker_checkpoints as c (org_id, consumer, last_event_id, handled_above)
  values (org, save_worker_checkpoint.consumer, save_worker_checkpoint.last_event_id, above)
  on conflict (org_id, consumer) do update
    set last_event_id = greatest(c.last_event_id, excluded.last_event_id),
        handled_above = case
          when excluded.last_event_id > c.last_event_id then excluded.handled_above
          when excluded.last_event_id = c.last_event_id
           and cardinality(excluded.handled_above) >= cardinality(c.handled_above)
            then excluded.handled_above
          else c.handled_above end,
        updated_at = now()
  returning c.last_event_id into saved;
  return saved;
end $$;

-- The consumer's checkpoint and the ids handled above it ((0, '{}') when it has none yet).
create or replace function public.get_worker_checkpoint_state(consumer text)
returns table (last_event_id bigint, handled_above bigint[])
language sql stable security invoker set search_path = '' as $$
  select coalesce(c.last_event_id, 0), coalesce(c.handled_above, '{}')
  from (select 1) as one
  left join public.worker_checkpoints c
    on c.org_id = (select private.clerk_org_id())
   and c.consumer = get_worker_checkpoint_state.consumer
$$;

revoke execute on function public.outbox_position(text[]),
  public.save_worker_checkpoint(text, bigint, bigint[]),
  public.get_worker_checkpoint_state(text) from public, anon;
grant execute on function public.outbox_position(text[]),
  public.save_worker_checkpoint(text, bigint, bigint[]),
  public.get_worker_checkpoint_state(text) to authenticated, service_role;
