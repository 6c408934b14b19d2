-- Supabase Storage's schema (stand-in), as a project has it before supabase/migrations run.
--
-- Written from the facts of supabase/storage's tenant migrations (our own SQL, named after
-- the migration each fact comes from): 0002-storage-schema (tables, foldername/filename/
-- extension, RLS, grants, the supabase_storage_admin owner), 0003-pathtoken-column,
-- 0007-add-rls-to-buckets, 0008-add-public-to-buckets, 0011-add-trigger-to-auto-update-
-- updated_at-column, 0012-add-automatic-avif-detection-flag, 0013-add-bucket-custom-limits +
-- 0014-use-bytes-for-max-size (file_size_limit in bytes), 0016-add-version,
-- 0018-add_owner_id_column_deprecate_owner, 0019-alter-default-value-objects-id,
-- 0025-custom-metadata, 0037-add-bucket-name-length-trigger, 0038-iceberg-catalog-flag-on-buckets
-- + 0044-vector-bucket-type (buckets.type), 0046/0049-buckets-objects-grants(-postgres),
-- 0055-prevent-direct-deletes, 0060/0061 (immutable path helpers), 0062-object-versioning-core,
-- 0063-fix-search-name-relative-to-prefix (storage.search's contract).
--
-- As on the platform, everything here belongs to supabase_storage_admin, not to a superuser
-- and not to postgres: a migration may create policies on storage.objects (postgres holds
-- ALL with GRANT OPTION) but may not ALTER the table.

-- Roles are cluster-wide and test processes bootstrap databases in parallel: hold the
-- cluster-wide lock on pg_authid while creating the role, and create it only if missing.
-- The platform's role logs in (the Storage server connects as it); the stand-in connects as
-- the admin user, so this one need not.
lock table pg_catalog.pg_authid in share row exclusive mode;
do $$
begin
  if not exists (select from pg_catalog.pg_roles where rolname = 'supabase_storage_admin') then
    create role supabase_storage_admin nologin noinherit createrole;
  end if;
end $$;

create schema if not exists storage authorization supabase_storage_admin;
grant usage on schema storage to anon, authenticated, service_role;

-- What follows is created by the owner itself, as the Storage server's migrations are.
set local role supabase_storage_admin;

create type storage.buckettype as enum ('STANDARD', 'ANALYTICS', 'VECTOR');

create table storage.buckets (
  id text not null primary key,
  name text not null,
  owner uuid,
  created_at timestamptz default now(),
  updated_at timestamptz default now(),
  public boolean default false,
  avif_autodetection boolean default false,
  file_size_limit bigint,  -- bytes; null = the server's global limit
  allowed_mime_types text[],
  owner_id text,
  type storage.buckettype not null default 'STANDARD',
  versioning_status text not null default 'DISABLED'
    constraint buckets_versioning_dark_check check (versioning_status = 'DISABLED')
);
create unique index bname on storage.buckets using btree (name);
comment on column storage.buckets.owner is 'Field is deprecated, use owner_id instead';

create table storage.objects (
  id uuid not null default gen_random_uuid() primary key,
  bucket_id text constraint "objects_bucketId_fkey" references storage.buckets (id),
  name text,
  owner uuid,
  created_at timestamptz default now(),
  updated_at timestamptz default now(),
  last_accessed_at timestamptz default now(),
  metadata jsonb,  -- the server's: eTag, size, mimetype, cacheControl, lastModified, ...
  path_tokens text[] generated always as (string_to_array(name, '/')) stored,
  version text,
  owner_id text,  -- the token's sub, verbatim (Clerk ids are not uuids)
  user_metadata jsonb,
  archived_at timestamptz,
  is_delete_marker boolean not null default false,
  is_versioned boolean not null default false
);
create unique index bucketid_objname on storage.objects using btree (bucket_id, name);
create index name_prefix_search on storage.objects (name text_pattern_ops);
comment on column storage.objects.owner is 'Field is deprecated, use owner_id instead';

alter table storage.buckets enable row level security;
alter table storage.objects enable row level security;

-- Path helpers: what policies use to match folders by exact parts.
create or replace function storage.foldername(name text) returns text[]
language plpgsql immutable as $$
declare
  _parts text[];
begin
  select string_to_array(name, '/') into _parts;
  return _parts[1 : array_length(_parts, 1) - 1];
end
$$;

create or replace function storage.filename(name text) returns text
language plpgsql immutable as $$
declare
  _parts text[];
begin
  select string_to_array(name, '/') into _parts;
  return _parts[array_length(_parts, 1)];
end
$$;

create or replace function storage.extension(name text) returns text
language plpgsql immutable as $$
declare
  _parts text[];
  _filename text;
begin
  select string_to_array(name, '/') into _parts;
  select _parts[array_length(_parts, 1)] into _filename;
  return reverse(split_part(reverse(_filename), '.', 1));
end
$$;

create or replace function storage.update_updated_at_column() returns trigger
language plpgsql as $$
begin
  new.updated_at = now();
  return new;
end
$$;
create trigger update_objects_updated_at before update on storage.objects
  for each row execute function storage.update_updated_at_column();

create or replace function storage.enforce_bucket_name_length() returns trigger
language plpgsql as $$
begin
  if length(new.name) > 100 then
    raise exception 'bucket name "%" is too long (% characters). Max is 100.', new.name, length(new.name);
  end if;
  return new;
end
$$;
create trigger enforce_bucket_name_length_trigger before insert or update of name on storage.buckets
  for each row execute function storage.enforce_bucket_name_length();

-- Rows go with their bytes: only the Storage API (which sets storage.allow_delete_query in
-- its request transaction) may delete them.
create or replace function storage.protect_delete() returns trigger
language plpgsql as $$
begin
  if coalesce(current_setting('storage.allow_delete_query', true), 'false') != 'true' then
    raise exception 'Direct deletion from storage tables is not allowed. Use the Storage API instead.'
      using hint = 'This prevents accidental data loss from orphaned objects.', errcode = '42501';
  end if;
  return null;
end
$$;
create trigger protect_buckets_delete before delete on storage.buckets
  for each statement execute function storage.protect_delete();
create trigger protect_objects_delete before delete on storage.objects
  for each statement execute function storage.protect_delete();

create or replace function storage.get_size_by_bucket()
returns table (size bigint, bucket_id text)
language sql stable as $$
  select sum((obj.metadata ->> 'size')::bigint)::bigint, obj.bucket_id
  from storage.objects as obj
  group by obj.bucket_id
$$;

-- The list endpoint's function (POST /object/list/:bucket calls it as the caller, so RLS
-- decides what is listed). Same signature and rows as upstream's (0063): the entries one
-- level below prefix || search, names relative to prefix, folders with null id. Prefixes
-- are matched by starts_with on lower(), never LIKE: object names carry '_' and '%'.
create or replace function storage.search(
  prefix text, bucketname text, limits int default 100, levels int default 1,
  offsets int default 0, search text default '', sortcolumn text default 'name',
  sortorder text default 'asc'
) returns table (
  name text, id uuid, updated_at timestamptz, created_at timestamptz,
  last_accessed_at timestamptz, metadata jsonb
)
language plpgsql stable security invoker set search_path = '' as $$
declare
  v_prefix text := coalesce(prefix, '') || coalesce(search, '');
  v_start int := coalesce(array_length(string_to_array(coalesce(prefix, ''), '/'), 1), 1);
  v_levels int := coalesce(array_length(string_to_array(v_prefix, '/'), 1), 1);
  v_dir text := case when lower(coalesce(sortorder, 'asc')) = 'desc' then 'desc' else 'asc' end;
  v_column text := case lower(coalesce(sortcolumn, 'name'))
    when 'updated_at' then 'updated_at' when 'created_at' then 'created_at'
    when 'last_accessed_at' then 'last_accessed_at' else 'name' end;
  v_order text;
begin
  v_order := case when v_column = 'name'
    then format('lower(e.name) collate "C" %s', v_dir)
    else format('e.is_folder desc, e.%I %s, e.name', v_column, v_dir) end;
  return query execute format($sql$
    with matching as (
      select o.* from storage.objects o
      where o.bucket_id = $1 and starts_with(lower(o.name), lower($2))
    ), entries as (
      select distinct array_to_string(m.path_tokens[$3:$4], '/') as name, null::uuid as id,
             null::timestamptz as updated_at, null::timestamptz as created_at,
             null::timestamptz as last_accessed_at, null::jsonb as metadata, true as is_folder
      from matching m where array_length(m.path_tokens, 1) > $4
      union all
      select array_to_string(m.path_tokens[$3:$4], '/'), m.id, m.updated_at, m.created_at,
             m.last_accessed_at, m.metadata, false
      from matching m where array_length(m.path_tokens, 1) = $4
    )
    select e.name, e.id, e.updated_at, e.created_at, e.last_accessed_at, e.metadata
    from entries e order by %s limit $5 offset $6
  $sql$, v_order)
  using bucketname, v_prefix, v_start, v_levels, least(coalesce(limits, 100), 1500),
        coalesce(offsets, 0);
end
$$;

-- Grants as Supabase gives them: the API roles may use everything and RLS decides rows;
-- postgres (the migrations' role) holds ALL WITH GRANT OPTION, so it may create policies.
alter default privileges for role supabase_storage_admin in schema storage
  grant all on tables to anon, authenticated, service_role;
alter default privileges for role supabase_storage_admin in schema storage
  grant all on functions to anon, authenticated, service_role;
alter default privileges for role supabase_storage_admin in schema storage
  grant all on sequences to anon, authenticated, service_role;
grant all on storage.buckets, storage.objects to anon, authenticated, service_role;
grant all on all functions in schema storage to anon, authenticated, service_role;

reset role;

-- The migrations' role: a real project's postgres, played here by postgres itself or by
-- project_postgres (not a superuser) where the bootstrap has one. It may create policies on
-- storage.objects and storage.buckets without owning them (supautils.policy_grants lists
-- both for postgres on the platform; devstack_supautils stands in for it where present).
do $$
declare
  migrator text;
begin
  foreach migrator in array array['postgres', 'project_postgres'] loop
    continue when not exists (select from pg_catalog.pg_roles where rolname = migrator);
    execute format('grant usage on schema storage to %I', migrator);
    execute format('grant all on storage.buckets, storage.objects to %I with grant option',
                   migrator);
    execute format('grant all on all functions in schema storage to %I', migrator);
    if to_regclass('devstack_supautils.policy_grants') is not null then
      insert into devstack_supautils.policy_grants
      values (migrator, 'storage.objects'), (migrator, 'storage.buckets')
      on conflict do nothing;
    end if;
  end loop;
end $$;
