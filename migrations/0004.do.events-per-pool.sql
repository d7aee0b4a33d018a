-- The event stream carries its pool, renewals, token health and pool changes.
-- Lease events are still written by the usages triggers; token and pool events by the
-- functions that make those changes, with the view at that moment in `body`.

ALTER TABLE pool_events
  ADD COLUMN pool text NOT NULL DEFAULT 'default',
  ADD COLUMN renewable_until timestamptz,
  ADD COLUMN body jsonb,
  -- Pruning keeps at least the last hour (and the last 100,000 events).
  ADD COLUMN created_at timestamptz NOT NULL DEFAULT now(),
  ALTER COLUMN lease_id DROP NOT NULL,
  ALTER COLUMN token_id DROP NOT NULL,
  ALTER COLUMN user_id DROP NOT NULL,
  ALTER COLUMN started_at DROP NOT NULL,
  ALTER COLUMN expires_at DROP NOT NULL;
ALTER TABLE pool_events ALTER COLUMN pool DROP DEFAULT;
ALTER TABLE pool_events DROP CONSTRAINT pool_events_type_check;
ALTER TABLE pool_events DROP CONSTRAINT pool_events_check;
ALTER TABLE pool_events DROP CONSTRAINT pool_events_release_reason_check;
ALTER TABLE pool_events
  ADD CONSTRAINT pool_events_type_check CHECK (type IN (
    'allocated', 'renewed', 'released', 'cleared', 'cooling', 'disabled', 'enabled', 'pool_changed')),
  ADD CONSTRAINT pool_events_release_reason_check
    CHECK (release_reason IN ('expired', 'evicted', 'released', 'cleared', 'cooldown', 'disabled')),
  -- A lease event carries a lease; the others carry their view.
  ADD CONSTRAINT pool_events_shape CHECK (
    CASE WHEN type IN ('allocated', 'renewed', 'released', 'cleared')
         THEN num_nulls(lease_id, token_id, user_id, started_at, expires_at) = 0
              AND (type IN ('released', 'cleared')) = (released_at IS NOT NULL)
         ELSE body IS NOT NULL END);
CREATE INDEX pool_events_age ON pool_events (created_at);

CREATE OR REPLACE FUNCTION tp_usages_inserted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO pool_events (type, pool, lease_id, token_id, user_id, started_at, expires_at, renewable_until, evicted_user_id)
  SELECT 'allocated', n.pool, n.id, n.token_id, n.user_id, n.started_at, n.expires_at, n.renewable_until,
         -- The token's previous usage, if this lease evicted it (ended at this lease's start).
         (SELECT p.user_id
            FROM (SELECT u.user_id, u.released_at, u.release_reason FROM usages u
                   WHERE u.token_id = n.token_id AND u.id < n.id ORDER BY u.id DESC LIMIT 1) p
           WHERE p.release_reason = 'evicted' AND p.released_at = n.started_at)
    FROM new_usages n;
  RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION tp_usages_updated() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO pool_events (type, pool, lease_id, token_id, user_id, started_at, expires_at, renewable_until,
                           released_at, release_reason)
  SELECT CASE WHEN n.released_at IS NULL THEN 'renewed'
              WHEN n.release_reason = 'cleared' THEN 'cleared' ELSE 'released' END,
         n.pool, n.id, n.token_id, n.user_id, n.started_at, n.expires_at, n.renewable_until,
         n.released_at, n.release_reason
    FROM new_usages n JOIN old_usages o ON o.id = n.id
   WHERE o.released_at IS NULL AND (n.released_at IS NOT NULL OR n.expires_at <> o.expires_at);
  RETURN NULL;
END $$;
