"""A published, RLS-protected table for the Postgres Changes tests.

public.tasks is no longer in the supabase_realtime publication (its DELETEs would reach
every org: supabase/migrations/20261202000300_tasks_out_of_postgres_changes.sql), so the
tests publish a table of their own with the same shape and the same read rule.
"""

from __future__ import annotations

import asyncpg

TABLE = "cdc_tasks"

_SQL = """
create table if not exists public.cdc_tasks (
  like public.tasks including defaults including constraints including identity
    including indexes
);
alter table public.cdc_tasks enable row level security;
do $$
begin
  create policy "members read their org's cdc tasks" on public.cdc_tasks
    for select to authenticated
    using (organization_id = (select private.clerk_org_id()));
exception when duplicate_object then null;
end $$;
do $$
begin
  alter publication supabase_realtime add table public.cdc_tasks;
exception when duplicate_object then null;
end $$;
"""


async def publish(database_url: str) -> None:
    """Create and publish public.cdc_tasks (idempotent)."""
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(_SQL)
    finally:
        await conn.close()
