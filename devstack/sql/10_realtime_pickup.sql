-- Realtime stand-in hook: tell the stand-in about database broadcasts after commit.
--
-- The real server reads committed inserts into realtime.messages over logical replication
-- (publication supabase_realtime_messages_publication, pgoutput). The stand-in listens
-- instead: NOTIFY is delivered only at commit, in commit order, and never for rolled-back
-- transactions, so the probe rows of the authorization checks (rolled back, and with a
-- null payload) are never seen. Only broadcast rows with a payload are announced. The
-- notification carries the row itself when it fits (NOTIFY payloads stop at 8000 bytes),
-- so the stand-in needs no query per broadcast; a larger row is announced by id and read
-- back.
create or replace function realtime.devstack_notify_message() returns trigger
language plpgsql as $$
declare
  announced text;
begin
  if new.extension = 'broadcast' and new.payload is not null then
    announced := jsonb_build_object('id', new.id, 'topic', new.topic, 'event', new.event,
                                    'payload', new.payload, 'private', new.private)::text;
    if octet_length(announced) > 7900 then
      announced := new.id::text;
    end if;
    perform pg_notify('realtime_messages', announced);
  end if;
  return null;
end $$;

drop trigger if exists devstack_realtime_pickup on realtime.messages;
create trigger devstack_realtime_pickup
  after insert on realtime.messages
  for each row execute function realtime.devstack_notify_message();
