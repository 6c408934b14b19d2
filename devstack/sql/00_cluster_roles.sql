-- Supabase platform roles (stand-in), as supabase/postgres creates them.
--
-- Roles are cluster-wide and the server may be shared by parallel test processes (and by
-- other checkouts): every statement here is idempotent, changes a role only when it differs
-- from the wanted state, and the whole file holds a lock on pg_authid (a shared catalog,
-- so the lock is cluster-wide) so that two bootstraps never update the same role row at
-- once ("tuple concurrently updated").
--
-- project_postgres plays the part of a real project's `postgres` (here `postgres` is the
-- cluster's bootstrap superuser, which cannot be demoted): supabase/postgres
-- migrations/db/init-scripts/00000000000000-initial-schema.sql and
-- 10000000000000_demote-postgres.sql leave it NOSUPERUSER CREATEDB CREATEROLE REPLICATION
-- BYPASSRLS, member of the API roles, search_path "$user", public, extensions. The
-- migrations and the seed run as that role (devstack/schema.py).
lock table pg_catalog.pg_authid in share row exclusive mode;

create or replace function pg_temp.ensure_role(name text, attributes text) returns void
language plpgsql as $$
begin
  if not exists (select from pg_catalog.pg_roles where rolname = name) then
    execute format('create role %I %s', name, attributes);
  end if;
end $$;

-- API roles are INHERIT on today's platform (supabase/postgres
-- 20230529180330_alter_api_roles_for_inherit.sql); service_role bypasses RLS.
select pg_temp.ensure_role('anon', 'nologin inherit');
select pg_temp.ensure_role('authenticated', 'nologin inherit');
select pg_temp.ensure_role('service_role', 'nologin inherit bypassrls');
select pg_temp.ensure_role('authenticator', 'login noinherit');
-- Owner of realtime.* (supabase/realtime 20260707120000_restrict_realtime_schema.ex).
select pg_temp.ensure_role('supabase_realtime_admin', 'nologin noinherit noreplication');
select pg_temp.ensure_role('project_postgres',
  'login nosuperuser createdb createrole replication bypassrls inherit');

-- Attributes of roles that an older bootstrap created differently.
create or replace function pg_temp.ensure_attributes() returns void
language plpgsql as $$
declare r record;
begin
  for r in
    select rolname, wanted from (values
      ('anon', 'inherit'), ('authenticated', 'inherit'), ('service_role', 'inherit bypassrls'),
      ('project_postgres', 'login nosuperuser createdb createrole replication bypassrls inherit')
    ) as w(rolname, wanted)
    join pg_catalog.pg_roles using (rolname)
    where not (rolinherit and (rolname <> 'service_role' or rolbypassrls)
               and (rolname <> 'project_postgres'
                    or (rolcanlogin and not rolsuper and rolcreatedb and rolcreaterole
                        and rolreplication and rolbypassrls)))
  loop
    execute format('alter role %I %s', r.rolname, r.wanted);
  end loop;
end $$;
select pg_temp.ensure_attributes();

create or replace function pg_temp.ensure_member(role_name text, member text) returns void
language plpgsql as $$
begin
  if not pg_catalog.pg_has_role(member, role_name, 'member') then
    execute format('grant %I to %I', role_name, member);
  end if;
end $$;
select pg_temp.ensure_member(r, m)
from unnest(array['anon', 'authenticated', 'service_role']) as r,
     unnest(array['authenticator', 'project_postgres']) as m;

-- Per-role settings of a real project (supabase/postgres 00000000000000-initial-schema.sql
-- and 20221028101028_set_authenticator_timeout.sql): the data API applies the impersonated
-- role's statement_timeout to each request, as PostgREST does. authenticator's
-- session_preload_libraries=safeupdate is left out: the extension is not installed here.
create or replace function pg_temp.ensure_setting(role_name text, setting text, value text)
returns void language plpgsql as $$
begin
  if not exists (
    select from pg_catalog.pg_db_role_setting s
    where s.setrole = role_name::regrole and s.setdatabase = 0
      and setting || '=' || value = any (s.setconfig)
  ) then
    execute format('alter role %I set %I = %L', role_name, setting, value);
  end if;
end $$;
select pg_temp.ensure_setting('anon', 'statement_timeout', '3s');
select pg_temp.ensure_setting('authenticated', 'statement_timeout', '8s');
select pg_temp.ensure_setting('authenticator', 'statement_timeout', '8s');
select pg_temp.ensure_setting('authenticator', 'lock_timeout', '8s');
select pg_temp.ensure_setting('project_postgres', 'search_path', '"$user", public, extensions');
