-- High availability per organization: one lease per (org, consumer), with a fencing epoch.
--
-- Every replica of an org's worker asks for the lease; only its holder dispatches, catches
-- up and saves the checkpoint. Expiry is judged by this database's clock alone: a holder
-- renews before `expires_at`, a standby takes the lease once it has passed. Each take
-- (acquire) raises the epoch by one, so epochs only grow; a checkpoint save that carries
-- an epoch is refused once a newer one exists (a worker that lost the lease and comes back
-- can move the checkpoint neither back nor forward).
--
-- The API roles may read their org's lease (workers and admins only) but never write the
-- table: the epoch must only grow, so every write goes through the RPCs below, which check
-- the caller's org and role from its token (security definer, empty search_path).

create table public.worker_leases (
  org_id text not null,
  consumer text not null check (length(consumer) between 1 and 200),
  holder text not null check (length(holder) between 1 and 200),
  epoch bigint not null check (epoch > 0),
  expires_at timestamptz not null,
  acquired_at timestamptz not null default clock_timestamp(),
  renewed_at timestamptz not null default clock_timestamp(),
  primary key (org_id, consumer)
);

alter table public.worker_leases enable row level security;

create policy "workers and admins read their org's leases" on public.worker_leases
  for select to authenticated
  using (org_id = (select private.clerk_org_id()) and (select private.clerk_can_publish()));

-- New tables are granted to the API roles by the schema's default privileges.
revoke all on public.worker_leases from anon, authenticated;
grant select on public.worker_leases to authenticated;

-- The caller's org, or an error: the lease is only for the org's workers and admins.
create or replace function private.lease_org() returns text
language plpgsql stable set search_path = '' as $$
declare
  org text := private.clerk_org_id();
begin
  if org is null then
    raise exception 'the token carries no organization (no o.id or org_id claim)'
      using errcode = '42501';
  end if;
  if not private.clerk_can_publish() then
    raise exception 'only the organization''s workers and admins may hold its lease'
      using errcode = '42501';
  end if;
  return org;
end $$;

create or replace function private.check_lease_args(holder text, ttl_seconds double precision)
returns void language plpgsql immutable set search_path = '' as $$
begin
  if holder is null or length(holder) not between 1 and 200 then
    raise exception 'holder must be 1 to 200 characters' using errcode = '22023';
  end if;
  if ttl_seconds is null or ttl_seconds <= 0 or ttl_seconds > 3600 then
    raise exception 'ttl_seconds must be in (0, 3600]' using errcode = '22023';
  end if;
end $$;

revoke execute on function private.lease_org(), private.check_lease_args(text, double precision)
  from public, anon;
grant execute on function private.lease_org(), private.check_lease_args(text, double precision)
  to authenticated, service_role;

-- Take the lease when it is free, expired, or already the caller's; each take raises the
-- epoch. `acquired` says whether the caller holds it now; the other columns describe the
-- lease as it is (who holds it, until when, by the database's clock `db_now`).
create function public.acquire_worker_lease(
  consumer text, holder text, ttl_seconds double precision
) returns table (
  acquired boolean, lease_epoch bigint, lease_holder text, lease_expires_at timestamptz,
  db_now timestamptz
)
language plpgsql volatile security definer set search_path = '' as $$
#variable_conflict use_column
declare
  org text := private.lease_org();
  at timestamptz := clock_timestamp();
  got public.worker_leases;
begin
  perform private.check_lease_args(holder, ttl_seconds);
  insert into public.worker_leases as l (org_id, consumer, holder, epoch, expires_at)
  values (org, acquire_worker_lease.consumer, acquire_worker_lease.holder, 1,
          at + make_interval(secs => ttl_seconds))
  on conflict (org_id, consumer) do update
    set holder = excluded.holder, epoch = l.epoch + 1, expires_at = excluded.expires_at,
        acquired_at = at, renewed_at = at
    where l.expires_at <= at or l.holder = excluded.holder
  returning * into got;
  if got.org_id is not null then
    return query select true, got.epoch, got.holder, got.expires_at, at;
    return;
  end if;
  return query
    select false, l.epoch, l.holder, l.expires_at, at from public.worker_leases l
    where l.org_id = org and l.consumer = acquire_worker_lease.consumer;
end $$;

-- Extend the caller's lease at `epoch` by ttl_seconds from now, if it still holds it (not
-- expired, same holder and epoch). `acquired` is false when it does not: the lease is lost.
create function public.renew_worker_lease(
  consumer text, holder text, epoch bigint, ttl_seconds double precision
) returns table (
  acquired boolean, lease_epoch bigint, lease_holder text, lease_expires_at timestamptz,
  db_now timestamptz
)
language plpgsql volatile security definer set search_path = '' as $$
#variable_conflict use_column
declare
  org text := private.lease_org();
  at timestamptz := clock_timestamp();
  got public.worker_leases;
begin
  perform private.check_lease_args(holder, ttl_seconds);
  update public.worker_leases l
    set expires_at = at + make_interval(secs => ttl_seconds), renewed_at = at
    where l.org_id = org and l.consumer = renew_worker_lease.consumer
      and l.holder = renew_worker_lease.holder and l.epoch = renew_worker_lease.epoch
      and l.expires_at > at
  returning * into got;
  if got.org_id is not null then
    return query select true, got.epoch, got.holder, got.expires_at, at;
    return;
  end if;
  return query
    select false, l.epoch, l.holder, l.expires_at, at from public.worker_leases l
    where l.org_id = org and l.consumer = renew_worker_lease.consumer;
end $$;

-- Let the lease go at once (a clean shutdown, after the drain and the last save): a
-- standby takes it at its next attempt. True when the caller held it at `epoch`.
create function public.release_worker_lease(consumer text, holder text, epoch bigint)
returns boolean
language plpgsql volatile security definer set search_path = '' as $$
#variable_conflict use_column
declare
  org text := private.lease_org();
  at timestamptz := clock_timestamp();
begin
  update public.worker_leases l set expires_at = at, renewed_at = at
    where l.org_id = org and l.consumer = release_worker_lease.consumer
      and l.holder = release_worker_lease.holder and l.epoch = release_worker_lease.epoch
      and l.expires_at > at;
  return found;
end $$;

revoke execute on function
  public.acquire_worker_lease(text, text, double precision),
  public.renew_worker_lease(text, text, bigint, double precision),
  public.release_worker_lease(text, text, bigint) from public, anon;
grant execute on function
  public.acquire_worker_lease(text, text, double precision),
  public.renew_worker_lease(text, text, bigint, double precision),
  public.release_worker_lease(text, text, bigint) to authenticated, service_role;

-- The caller's org's lease epoch for `consumer`, locked until the caller's transaction ends: a take cannot commit
-- between a save's check and its write (FOR SHARE needs a write privilege, hence definer).
create or replace function private.lease_epoch(consumer text) returns bigint
language sql volatile security definer set search_path = '' as $$
  select l.epoch from public.worker_leases l
  where l.org_id = (select private.clerk_org_id()) and l.consumer = lease_epoch.consumer
  for share
$$;
revoke execute on function private.lease_epoch(text) from public, anon;
grant execute on function private.lease_epoch(text) to authenticated, service_role;

-- Fenced checkpoint saves: with an epoch, the save is refused (SQLSTATE PT409, HTTP 409
-- through the data API) unless that epoch is the lease's current one. Without an epoch
-- (HA off, `realtime-worker check`) it behaves as before.
drop function public.save_worker_checkpoint(text, bigint, bigint[]);

create function public.save_worker_checkpoint(
  consumer text,
  last_event_id bigint,
  handled_above bigint[] default '{}',
  epoch bigint default null
) returns bigint
language plpgsql volatile security invoker set search_path = '' as $$
#variable_conflict use_column
declare
  org text := private.clerk_org_id();
  above bigint[];
  current_epoch bigint;
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
  if save_worker_checkpoint.epoch is not null then
    current_epoch := private.lease_epoch(save_worker_checkpoint.consumer);
    if current_epoch is distinct from save_worker_checkpoint.epoch then
      raise exception 'checkpoint save refused: epoch % is not the lease''s (%)',
        save_worker_checkpoint.epoch, coalesce(current_epoch::text, 'none')
        using errcode = 'PT409';
    end if;
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

revoke execute on function public.save_worker_checkpoint(text, bigint, bigint[], bigint)
  from public, anon;
grant execute on function public.save_worker_checkpoint(text, bigint, bigint[], bigint)
  to authenticated, service_role;
