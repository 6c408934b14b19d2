-- public.tasks leaves the supabase_realtime publication.
--
-- Postgres Changes applies RLS to INSERT and UPDATE but not to DELETE (the row is gone):
-- every subscriber to public.tasks received every org's DELETE with the deleted id and the
-- commit time. Task changes already reach each org privately, through the tasks_broadcast
-- trigger (realtime.broadcast_changes on org:<org_id>:tasks, under the org's RLS).
alter publication supabase_realtime drop table public.tasks;
