-- A renewal's event says when the renewal was, so that its expires_in_seconds is the whole
-- seconds left at that moment, as the renew answer says (it counted from the lease's start).
ALTER TABLE pool_events ADD COLUMN renewed_at timestamptz;

CREATE OR REPLACE FUNCTION tp_usages_updated() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO pool_events (type, pool, lease_id, token_id, user_id, started_at, expires_at, renewable_until,
                           released_at, release_reason, renewed_at)
  SELECT CASE WHEN n.released_at IS NULL THEN 'renewed'
              WHEN n.release_reason = 'cleared' THEN 'cleared' ELSE 'released' END,
         n.pool, n.id, n.token_id, n.user_id, n.started_at, n.expires_at, n.renewable_until,
         n.released_at, n.release_reason,
         -- The renewing statement's time: the renew answer counts from it too.
         CASE WHEN n.released_at IS NULL THEN date_trunc('milliseconds', now()) END
    FROM new_usages n JOIN old_usages o ON o.id = n.id
   WHERE o.released_at IS NULL AND (n.released_at IS NOT NULL OR n.expires_at <> o.expires_at);
  RETURN NULL;
END $$;
