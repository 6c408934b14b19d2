-- Row Level Security on every table, from Clerk claims (both token formats, via private.*).

alter table public.org_events enable row level security;
alter table public.tasks enable row level security;
alter table public.org_billing enable row level security;
alter table public.worker_checkpoints enable row level security;

-- org_events: members read their org's events; admins and workers append. No updates or
-- deletes through the API: the outbox is append-only.
create policy "members read their org's events" on public.org_events
  for select to authenticated
  using (org_id = (select private.clerk_org_id()));

create policy "admins and workers append their org's events" on public.org_events
  for insert to authenticated
  with check (org_id = (select private.clerk_org_id()) and (select private.clerk_can_publish()));

revoke update, delete, truncate on public.org_events from anon, authenticated;

-- tasks: the seed document's example made real: only org admins insert, and only for
-- the org in their token. Members read; admins and workers update; admins delete.
create policy "members read their org's tasks" on public.tasks
  for select to authenticated
  using (organization_id = (select private.clerk_org_id()));

create policy "only organization admins can insert tasks" on public.tasks
  for insert to authenticated
  with check (
    (select private.clerk_org_role()) = 'admin'
    and organization_id = (select private.clerk_org_id())
  );

create policy "admins and workers update their org's tasks" on public.tasks
  for update to authenticated
  using (organization_id = (select private.clerk_org_id()) and (select private.clerk_can_publish()))
  with check (organization_id = (select private.clerk_org_id()));

create policy "admins delete their org's tasks" on public.tasks
  for delete to authenticated
  using (organization_id = (select private.clerk_org_id())
         and (select private.clerk_org_role()) = 'admin');

-- org_billing: members of the org read it, and (restrictively) only with a verified
-- second factor; only admins write.
create policy "members read their org's billing" on public.org_billing
  for select to authenticated
  using (organization_id = (select private.clerk_org_id()));

create policy "only users that passed second factor verification read billing" on public.org_billing
  as restrictive
  for select to authenticated
  using ((select private.clerk_second_factor_verified()));

create policy "admins write their org's billing" on public.org_billing
  for all to authenticated
  using (organization_id = (select private.clerk_org_id()) and (select private.clerk_org_role()) = 'admin')
  with check (organization_id = (select private.clerk_org_id()) and (select private.clerk_org_role()) = 'admin');

-- worker_checkpoints: the org's workers (and admins, to inspect or reset) only.
create policy "workers and admins read their org's checkpoints" on public.worker_checkpoints
  for select to authenticated
  using (org_id = (select private.clerk_org_id()) and (select private.clerk_can_publish()));

create policy "workers and admins write their org's checkpoints" on public.worker_checkpoints
  for insert to authenticated
  with check (org_id = (select private.clerk_org_id()) and (select private.clerk_can_publish()));

create policy "workers and admins move their org's checkpoints" on public.worker_checkpoints
  for update to authenticated
  using (org_id = (select private.clerk_org_id()) and (select private.clerk_can_publish()))
  with check (org_id = (select private.clerk_org_id()));

revoke delete, truncate on public.worker_checkpoints from anon, authenticated;

-- Nothing is readable without a token.
revoke all on public.org_events, public.tasks, public.org_billing, public.worker_checkpoints from anon;
