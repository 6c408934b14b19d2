-- Clerk session-token claims, read in one place.
--
-- Clerk has two token formats and policies must accept both:
--   v2 (default since 2025-04): "o": {"id": "org_...", "rol": "admin", ...}  (role without prefix)
--   v1:                          "org_id": "org_...", "org_role": "org:admin"
-- Traps avoided here:
--   * auth.jwt()->>'o.id' is always NULL (no top-level key "o.id"); the org is nested.
--   * Clerk user ids ("user_...") are not UUIDs, so auth.uid() raises: use the 'sub' claim.
--   * Topics are compared by exact parts: Clerk ids contain '_' (a LIKE wildcard) and one
--     org id can be a prefix of another.

create schema if not exists private;
-- Policies call these helpers as the requesting role; the schema itself is not exposed by the API.
grant usage on schema private to anon, authenticated, service_role;

create or replace function private.clerk_org_id() returns text
language sql stable set search_path = '' as $$
  select coalesce(auth.jwt() -> 'o' ->> 'id', auth.jwt() ->> 'org_id')
$$;

-- The org role without the v1 'org:' prefix: 'admin', 'member', 'worker', ...
create or replace function private.clerk_org_role() returns text
language sql stable set search_path = '' as $$
  select coalesce(
    auth.jwt() -> 'o' ->> 'rol',
    case when auth.jwt() ->> 'org_role' like 'org:%'
         then substr(auth.jwt() ->> 'org_role', 5)
         else auth.jwt() ->> 'org_role' end)
$$;

create or replace function private.clerk_user_id() returns text
language sql stable set search_path = '' as $$
  select auth.jwt() ->> 'sub'
$$;

-- fva = [minutes since first factor, minutes since second factor]; -1 = never verified.
-- A token without fva counts as not verified.
create or replace function private.clerk_second_factor_verified() returns boolean
language sql stable set search_path = '' as $$
  select coalesce(auth.jwt() -> 'fva' ->> 1, '-1') <> '-1'
$$;

-- True when the token's org may publish: org admins and the org's worker service users.
create or replace function private.clerk_can_publish() returns boolean
language sql stable set search_path = '' as $$
  select coalesce(private.clerk_org_role() in ('admin', 'worker'), false)
$$;

-- Org topics are exactly 'org:<org_id>:<name>' with a non-empty name and no further colon.
create or replace function private.topic_org_id(topic text) returns text
language sql immutable set search_path = '' as $$
  select case
    when split_part(topic, ':', 1) = 'org'
     and split_part(topic, ':', 2) <> ''
     and split_part(topic, ':', 3) <> ''
     and split_part(topic, ':', 4) = ''
     and topic not like '%:'
    then split_part(topic, ':', 2)
  end
$$;

-- True when the topic belongs to the token's org (NULL-safe: no org claim, no topic -> false).
create or replace function private.topic_is_own_org(topic text) returns boolean
language sql stable set search_path = '' as $$
  select coalesce(private.topic_org_id(topic) = private.clerk_org_id(), false)
$$;

grant execute on all functions in schema private to anon, authenticated, service_role;
