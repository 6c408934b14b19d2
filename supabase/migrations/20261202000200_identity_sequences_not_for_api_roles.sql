-- The API roles may not touch the identity sequences.
--
-- The schema's default privileges grant every new sequence to anon and authenticated, so
-- anyone with the publishable key could `select setval('org_events_id_seq', 1)`: every
-- later outbox insert then collided with an existing id and failed, for every org. Identity
-- columns take their values without any privilege on the sequence, so inserts that RLS
-- allows keep working.
revoke all on sequence public.org_events_id_seq, public.tasks_id_seq from anon, authenticated;
