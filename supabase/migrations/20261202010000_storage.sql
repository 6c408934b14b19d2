-- Storage: one private bucket of org-scoped files, secured by the same Clerk claims as the
-- tables and Realtime topics (both token formats, via private.*).
--
-- Layout of bucket org-files:
--   <org_id>/...           readable by every member of the org; written (insert, update,
--                          move, delete) by its admins and worker service users only
--   <org_id>/billing/...   additionally needs a passed second factor (fva), restrictively
--   anything else          (the bucket root, a folder that is no org's) nobody's
-- Folders are compared by exact parts with storage.foldername(name), never with LIKE: Clerk
-- ids contain '_' (a LIKE wildcard) and one org id can be a prefix of another.
--
-- Runs as postgres on a real project, where storage.objects belongs to supabase_storage_admin:
-- postgres may create policies on it (supautils.policy_grants) and insert the bucket (ALL
-- WITH GRANT OPTION, BYPASSRLS), but not alter the table; nothing here needs more.

insert into storage.buckets (id, name, public, file_size_limit)
values ('org-files', 'org-files', false, 10 * 1024 * 1024)
on conflict (id) do nothing;

-- The org that owns an object of org-files: the first folder of its name, exactly.
create or replace function private.org_file_org_id(bucket_id text, name text) returns text
language sql immutable set search_path = '' as $$
  select case when bucket_id = 'org-files' then (storage.foldername(name))[1] end
$$;

-- True when the object lies in its org's billing folder (<org_id>/billing/...).
create or replace function private.org_file_is_sensitive(bucket_id text, name text) returns boolean
language sql immutable set search_path = '' as $$
  select coalesce(bucket_id = 'org-files' and (storage.foldername(name))[2] = 'billing', false)
$$;

-- True when the object belongs to the token's org (NULL-safe: no org claim, root -> false).
create or replace function private.org_file_is_own_org(bucket_id text, name text) returns boolean
language sql stable set search_path = '' as $$
  select coalesce(private.org_file_org_id(bucket_id, name) = private.clerk_org_id(), false)
$$;

grant execute on function private.org_file_org_id(text, text),
  private.org_file_is_sensitive(text, text),
  private.org_file_is_own_org(text, text) to anon, authenticated, service_role;

create policy "members read their org's files" on storage.objects
  for select to authenticated
  using (private.org_file_is_own_org(bucket_id, name));

create policy "admins and workers add their org's files" on storage.objects
  for insert to authenticated
  with check (private.org_file_is_own_org(bucket_id, name) and (select private.clerk_can_publish()));

-- USING picks the rows that may change, WITH CHECK the result: a move stays inside the org.
create policy "admins and workers change their org's files" on storage.objects
  for update to authenticated
  using (private.org_file_is_own_org(bucket_id, name) and (select private.clerk_can_publish()))
  with check (private.org_file_is_own_org(bucket_id, name) and (select private.clerk_can_publish()));

create policy "admins and workers remove their org's files" on storage.objects
  for delete to authenticated
  using (private.org_file_is_own_org(bucket_id, name) and (select private.clerk_can_publish()));

-- The seed document's second-factor rule, for every operation on the billing folder.
create policy "billing files need a passed second factor" on storage.objects
  as restrictive
  for all to authenticated
  using (not private.org_file_is_sensitive(bucket_id, name)
         or (select private.clerk_second_factor_verified()))
  with check (not private.org_file_is_sensitive(bucket_id, name)
              or (select private.clerk_second_factor_verified()));
