-- Org-scoped tables. Every row carries the Clerk org id it belongs to; RLS does the rest.

-- The outbox: every org event the workers must handle. Ids are the delivery order and
-- the checkpoint unit; identity values are taken before commit, so rows can become
-- visible out of id order (workers re-read a trailing window to cope).
create table public.org_events (
  id bigint generated always as identity primary key,
  org_id text not null check (org_id ~ '^[A-Za-z0-9_-]+$'),
  topic text not null check (topic ~ '^[A-Za-z0-9_.-]+$'),
  event text not null check (length(event) between 1 and 200),
  payload jsonb not null default '{}'::jsonb check (jsonb_typeof(payload) = 'object'),
  created_at timestamptz not null default now()
);
create index org_events_org_id_id on public.org_events (org_id, id);
create index org_events_org_topic_id on public.org_events (org_id, topic, id);

-- An example domain table whose changes are broadcast to the org.
create table public.tasks (
  id bigint generated always as identity primary key,
  organization_id text not null,
  title text not null check (length(title) between 1 and 500),
  status text not null default 'open' check (status in ('open', 'in_progress', 'done')),
  created_by text default (auth.jwt() ->> 'sub'),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create index tasks_organization_id on public.tasks (organization_id);

-- A sensitive table: readable only by members whose session passed a second factor.
create table public.org_billing (
  organization_id text primary key,
  plan text not null default 'free',
  card_last4 text,
  updated_at timestamptz not null default now()
);

-- Where each (org, consumer) worker has got to in the outbox: every id <= last_event_id
-- has been handled (or dead-lettered).
create table public.worker_checkpoints (
  org_id text not null,
  consumer text not null check (consumer ~ '^[A-Za-z0-9_.:-]{1,100}$'),
  last_event_id bigint not null default 0 check (last_event_id >= 0),
  updated_at timestamptz not null default now(),
  primary key (org_id, consumer)
);
