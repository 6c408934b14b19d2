-- Local development seed (applied by `python -m devstack up` and `supabase db reset`).
-- Org ids come from the Clerk stand-in at run time, so the seed only adds a fixed demo
-- org's billing row and a first task; `make demo` provisions the rest through the APIs.
insert into public.org_billing (organization_id, plan) values ('org_seed_demo', 'pro')
  on conflict do nothing;
insert into public.tasks (organization_id, title) values ('org_seed_demo', 'Try the worker');
