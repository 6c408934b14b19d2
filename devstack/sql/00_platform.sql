-- Supabase platform bootstrap (stand-in).
--
-- The minimum that every Supabase project already has BEFORE supabase/migrations run,
-- reproduced so that the migrations apply unchanged both here and on a real project.
-- Definitions follow supabase/postgres (roles, auth.*) and supabase/realtime
-- (realtime.messages, realtime.topic/send/broadcast_changes). Nothing here belongs
-- in supabase/migrations: a real project already has all of it.

-- Roles (cluster-wide) come from 00_cluster_roles.sql; this file is per database.

-- The migration role gets what a project's `postgres` has on its database and schemas
-- (supabase/postgres 10000000000000_demote-postgres.sql: GRANT ALL ON DATABASE postgres
-- TO postgres, ...).
do $$
begin
  execute format('grant all on database %I to project_postgres', current_database());
end $$;

-- The public schema as Supabase exposes it: usable by the API roles; RLS decides rows.
-- Objects the migrations create (owned by project_postgres) and objects the platform
-- creates (the superuser here, supabase_admin there) grant the API roles by default.
grant all on schema public to project_postgres;
grant usage on schema public to anon, authenticated, service_role;
alter default privileges in schema public grant all on tables to anon, authenticated, service_role;
alter default privileges in schema public grant all on functions to anon, authenticated, service_role;
alter default privileges in schema public grant all on sequences to anon, authenticated, service_role;
alter default privileges for role project_postgres in schema public
  grant all on tables to anon, authenticated, service_role;
alter default privileges for role project_postgres in schema public
  grant all on functions to anon, authenticated, service_role;
alter default privileges for role project_postgres in schema public
  grant all on sequences to anon, authenticated, service_role;

-- The extensions schema (pgcrypto and uuid-ossp where the server ships them; the embedded
-- server does not, and gen_random_uuid() is core).
create schema if not exists extensions;
grant usage on schema extensions to project_postgres, anon, authenticated, service_role;
do $$
declare e text;
begin
  foreach e in array array['pgcrypto', 'uuid-ossp'] loop
    if exists (select from pg_catalog.pg_available_extensions where name = e) then
      execute format('create extension if not exists %I with schema extensions', e);
    end if;
  end loop;
end $$;

-- auth.*: claims come from the request, set per transaction by the API gateway.
-- nullif(..., '') matters: a setting once set with is_local stays '' afterwards.
create schema if not exists auth;
grant usage on schema auth to project_postgres, anon, authenticated, service_role;

create or replace function auth.jwt() returns jsonb
language sql stable as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim', true), ''),
    nullif(current_setting('request.jwt.claims', true), '')
  )::jsonb
$$;

create or replace function auth.uid() returns uuid
language sql stable as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim.sub', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
  )::uuid
$$;

create or replace function auth.role() returns text
language sql stable as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim.role', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role')
  )::text
$$;

grant execute on function auth.jwt(), auth.uid(), auth.role() to anon, authenticated, service_role;

-- Postgres Changes reads this publication; projects add tables to it (its owner on a real
-- project is postgres, so migrations may alter it).
do $$
begin
  create publication supabase_realtime;
exception when duplicate_object then null;
end $$;
alter publication supabase_realtime owner to project_postgres;
