-- A stand-in for supautils' policy grants (supabase/supautils README, "Table Ownership
-- Bypass: Manage Policies"; supabase/postgres sets supautils.policy_grants so that
-- `postgres` may manage the policies of platform tables such as realtime.messages).
--
-- Only a table's owner may CREATE/ALTER/DROP POLICY on it. supautils lets a listed role do
-- exactly that on listed tables, and nothing else: ALTER TABLE, DROP TABLE or a trigger
-- still fail with "must be owner of table ...". The stand-in makes the listed role a
-- member of the table owner's role for the duration of one policy command (an event
-- trigger at ddl_command_start grants, one at ddl_command_end revokes; an error rolls the
-- grant back with the command) and then checks that the policy is on a listed table.
--
-- Other platform components add their tables here, e.g. from their own devstack/sql file:
--   insert into devstack_supautils.policy_grants values ('project_postgres', 'storage.objects')
--   on conflict do nothing;
create schema if not exists devstack_supautils;
revoke all on schema devstack_supautils from public;

create table if not exists devstack_supautils.policy_grants (
  grantee name not null,
  relation text not null,  -- 'schema.table', resolved when a policy command runs
  primary key (grantee, relation)
);
revoke all on devstack_supautils.policy_grants from public;
insert into devstack_supautils.policy_grants values ('project_postgres', 'realtime.messages')
on conflict do nothing;

-- The owners of the tables the session's role may manage policies on, that it is not
-- already a member of.
create or replace function devstack_supautils.owners_to_lend() returns setof name
language sql stable set search_path = '' as $$
  select distinct r.rolname
  from devstack_supautils.policy_grants g
  join pg_catalog.pg_class c on c.oid = pg_catalog.to_regclass(g.relation)
  join pg_catalog.pg_roles r on r.oid = c.relowner
  where g.grantee = session_user
    and not pg_catalog.pg_has_role(session_user, c.relowner, 'member')
$$;

create or replace function devstack_supautils.lend_ownership() returns event_trigger
language plpgsql security definer set search_path = '' as $$
declare
  owner name;
  lent text[] := '{}';
begin
  if tg_tag not in ('CREATE POLICY', 'ALTER POLICY', 'DROP POLICY') then
    return;
  end if;
  for owner in select devstack_supautils.owners_to_lend() loop
    execute format('grant %I to %I', owner, session_user);
    lent := lent || owner::text;
  end loop;
  perform pg_catalog.set_config('devstack_supautils.lent', array_to_string(lent, ','), true);
end $$;

create or replace function devstack_supautils.take_back_ownership() returns event_trigger
language plpgsql security definer set search_path = '' as $$
declare
  owner text;
  cmd record;
begin
  if tg_tag not in ('CREATE POLICY', 'ALTER POLICY', 'DROP POLICY') then
    return;
  end if;
  for owner in
    select unnest(string_to_array(
      nullif(pg_catalog.current_setting('devstack_supautils.lent', true), ''), ','))
  loop
    execute format('revoke %I from %I', owner, session_user);
  end loop;
  perform pg_catalog.set_config('devstack_supautils.lent', '', true);
  -- A lent membership covers every table of that owner: refuse policies on the others.
  for cmd in
    select p.polrelid::regclass::text as relation
    from pg_catalog.pg_event_trigger_ddl_commands() d
    join pg_catalog.pg_policy p on p.oid = d.objid
    where d.classid = 'pg_catalog.pg_policy'::regclass
      and not pg_catalog.pg_has_role(session_user, (
        select c.relowner from pg_catalog.pg_class c where c.oid = p.polrelid), 'usage')
      and p.polrelid::regclass::text not in (
        select g.relation from devstack_supautils.policy_grants g where g.grantee = session_user)
  loop
    raise exception 'must be owner of table %', cmd.relation using errcode = '42501';
  end loop;
end $$;
revoke all on function devstack_supautils.owners_to_lend(), devstack_supautils.lend_ownership(),
  devstack_supautils.take_back_ownership() from public;

drop event trigger if exists devstack_supautils_policy_start;
create event trigger devstack_supautils_policy_start on ddl_command_start
  when tag in ('CREATE POLICY', 'ALTER POLICY', 'DROP POLICY')
  execute function devstack_supautils.lend_ownership();
drop event trigger if exists devstack_supautils_policy_end;
create event trigger devstack_supautils_policy_end on ddl_command_end
  when tag in ('CREATE POLICY', 'ALTER POLICY', 'DROP POLICY')
  execute function devstack_supautils.take_back_ownership();
