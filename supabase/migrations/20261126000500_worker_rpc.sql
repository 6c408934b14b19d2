-- RPCs the worker calls through the data API. All are SECURITY INVOKER: they run as the
-- worker's own token, so RLS decides what each org's worker can see and move.

-- Outbox events after an id, for the caller's org, oldest first, one page at a time.
create or replace function public.org_events_after(
  after_id bigint,
  max_rows integer default 500,
  topics text[] default null
) returns setof public.org_events
language sql stable security invoker set search_path = '' as $$
  select e.*
  from public.org_events e
  where e.org_id = (select private.clerk_org_id())
    and e.id > after_id
    and (topics is null or e.topic = any (topics))
  order by e.id
  limit least(greatest(coalesce(max_rows, 500), 1), 1000)
$$;

-- The newest outbox id the caller's org can see (0 when there is none): the lag reference.
create or replace function public.org_events_head(topics text[] default null)
returns bigint
language sql stable security invoker set search_path = '' as $$
  select coalesce(max(e.id), 0)
  from public.org_events e
  where e.org_id = (select private.clerk_org_id())
    and (topics is null or e.topic = any (topics))
$$;

-- The consumer's checkpoint for the caller's org (0 when it has none yet).
create or replace function public.get_worker_checkpoint(consumer text)
returns bigint
language sql stable security invoker set search_path = '' as $$
  select coalesce(
    (select c.last_event_id from public.worker_checkpoints c
      where c.org_id = (select private.clerk_org_id()) and c.consumer = get_worker_checkpoint.consumer),
    0)
$$;

-- Move the consumer's checkpoint forward (never back) for the caller's org.
create or replace function public.save_worker_checkpoint(consumer text, last_event_id bigint)
returns bigint
language plpgsql volatile security invoker set search_path = '' as $$
#variable_conflict use_column
declare
  org text := private.clerk_org_id();
  saved bigint;
begin
  if org is null then
    raise exception 'the token carries no organization (no o.id or org_id claim)'
      using errcode = '42501';
  end if;
  if last_event_id is null or last_event_id < 0 then
    raise exception 'last_event_id must be a non-negative integer' using errcode = '22023';
  end if;
  insert into public.worker_checkpoints as c (org_id, consumer, last_event_id)
  values (org, save_worker_checkpoint.consumer, save_worker_checkpoint.last_event_id)
  on conflict (org_id, consumer) do update
    set last_event_id = greatest(c.last_event_id, excluded.last_event_id),
        updated_at = now()
  returning c.last_event_id into saved;
  return saved;
end $$;

revoke execute on function public.org_events_after(bigint, integer, text[]),
  public.org_events_head(text[]), public.get_worker_checkpoint(text),
  public.save_worker_checkpoint(text, bigint) from public, anon;
grant execute on function public.org_events_after(bigint, integer, text[]),
  public.org_events_head(text[]), public.get_worker_checkpoint(text),
  public.save_worker_checkpoint(text, bigint) to authenticated, service_role;
