-- Clerk claim helpers fail closed.
--
-- * The org and the org role come from one token format: v2 ("o": {"id", "rol"}, and
--   "v": 2) or v1 ("org_id", "org_role"), never a mix (a v2 o.id with a v1 org_role made an
--   admin of anyone able to add claims to a session token).
-- * Ids and roles are JSON strings: a numeric o.id is not an org id.
-- * fva is [minutes since first factor, minutes since second factor], -1 = never: only a
--   non-negative whole number counts as a passed second factor ([3,-1.0], [3,"x"],
--   [3,false], [3,[]] do not).
-- * Topics are 'org:<org_id>:<name>' with both parts in the outbox's own alphabets
--   (org_events.org_id and org_events.topic checks): no empty part, no spaces, newlines or
--   LIKE wildcards.

create or replace function private.clerk_token_is_v2() returns boolean
language sql stable set search_path = '' as $$
  select coalesce(auth.jwt() ? 'o' or auth.jwt() ->> 'v' = '2', false)
$$;

create or replace function private.json_text(value jsonb) returns text
language sql immutable set search_path = '' as $$
  select case when jsonb_typeof(value) = 'string' then nullif(value #>> '{}', '') end
$$;

create or replace function private.clerk_org_id() returns text
language sql stable set search_path = '' as $$
  select case when private.clerk_token_is_v2()
    then private.json_text(auth.jwt() -> 'o' -> 'id')
    else private.json_text(auth.jwt() -> 'org_id')
  end
$$;

-- The org role without the v1 'org:' prefix: 'admin', 'member', 'worker', ...
create or replace function private.clerk_org_role() returns text
language sql stable set search_path = '' as $$
  select case when private.clerk_token_is_v2()
    then private.json_text(auth.jwt() -> 'o' -> 'rol')
    else (select case when r like 'org:%' then substr(r, 5) else r end
          from private.json_text(auth.jwt() -> 'org_role') as r)
  end
$$;

create or replace function private.clerk_second_factor_verified() returns boolean
language sql stable set search_path = '' as $$
  select coalesce(
    jsonb_typeof(auth.jwt() -> 'fva') = 'array'
    and jsonb_typeof(auth.jwt() -> 'fva' -> 1) = 'number'
    and (auth.jwt() -> 'fva' ->> 1) ~ '^[0-9]+$',
    false)
$$;

create or replace function private.topic_org_id(topic text) returns text
language sql immutable set search_path = '' as $$
  select case
    when topic ~ '^org:[A-Za-z0-9_-]+:[A-Za-z0-9_.-]+$'
    then split_part(topic, ':', 2)
  end
$$;

grant execute on all functions in schema private to anon, authenticated, service_role;
