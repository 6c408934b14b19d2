-- Realtime Authorization: the row's topic must be the topic being authorised.
--
-- The policies of 20261126000400_realtime.sql judged only realtime.topic(), the setting
-- Realtime puts in place for its probe rows. A session that can set realtime.topic itself
-- (any SQL through a security-invoker path, or a future RPC) could then read the retained
-- broadcasts of every org (replay) and insert rows on another org's topic while naming its
-- own. Comparing realtime.messages.topic with realtime.topic() closes that: Realtime's own
-- probes, replays and sends always use the same topic for both.

alter policy "org members receive their org's channels" on realtime.messages
  using (
    realtime.messages.extension in ('broadcast', 'presence')
    and realtime.messages.topic = (select realtime.topic())
    and (select private.topic_is_own_org(realtime.topic()))
  );

alter policy "org members track presence, admins and workers broadcast" on realtime.messages
  with check (
    realtime.messages.topic = (select realtime.topic())
    and (select private.topic_is_own_org(realtime.topic()))
    and (
      realtime.messages.extension = 'presence'
      or (realtime.messages.extension = 'broadcast' and (select private.clerk_can_publish()))
    )
  );
