-- The event stream behind GET /api/events: every change to usages, by any node,
-- written by triggers in the transaction that made it, so an event exists if and
-- only if its change committed. This table is the truth; the writing node sends a
-- NOTIFY after its commit only to wake the readers (src/pool/commit-hint.ts). Not from
-- these triggers: a transaction that notifies takes PostgreSQL's global notify lock at
-- commit and holds it through the WAL flush, so notifying allocations commit one at a
-- time (measured: a third of allocation throughput, BENCHMARKS.md).

CREATE TABLE pool_events (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  -- Ids are taken before commit, so a reader that follows id alone could pass an id
  -- whose transaction commits later. Readers follow (xid, id) instead and only read
  -- below the oldest running transaction, where the set of events is final.
  xid xid8 NOT NULL DEFAULT pg_current_xact_id(),
  type text NOT NULL CHECK (type IN ('allocated', 'released', 'cleared')),
  lease_id bigint NOT NULL,
  token_id uuid NOT NULL,
  user_id uuid NOT NULL,
  started_at timestamptz NOT NULL,
  expires_at timestamptz NOT NULL,
  released_at timestamptz,
  release_reason text CHECK (release_reason IN ('expired', 'evicted', 'released', 'cleared')),
  evicted_user_id uuid,
  CHECK ((type = 'allocated') = (released_at IS NULL))
);
CREATE INDEX pool_events_order ON pool_events (xid, id);

-- Statement-level with transition tables: one trigger call per statement however many
-- rows it touched.
CREATE FUNCTION tp_usages_inserted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO pool_events (type, lease_id, token_id, user_id, started_at, expires_at, evicted_user_id)
  SELECT 'allocated', n.id, n.token_id, n.user_id, n.started_at, n.expires_at,
         -- The token's previous usage, if this lease evicted it (ended at this lease's start).
         (SELECT p.user_id
            FROM (SELECT u.user_id, u.released_at, u.release_reason FROM usages u
                   WHERE u.token_id = n.token_id AND u.id < n.id ORDER BY u.id DESC LIMIT 1) p
           WHERE p.release_reason = 'evicted' AND p.released_at = n.started_at)
    FROM new_usages n;
  RETURN NULL;
END $$;

CREATE FUNCTION tp_usages_updated() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO pool_events (type, lease_id, token_id, user_id, started_at, expires_at, released_at, release_reason)
  SELECT CASE WHEN n.release_reason = 'cleared' THEN 'cleared' ELSE 'released' END,
         n.id, n.token_id, n.user_id, n.started_at, n.expires_at, n.released_at, n.release_reason
    FROM new_usages n JOIN old_usages o ON o.id = n.id
   WHERE o.released_at IS NULL AND n.released_at IS NOT NULL;
  RETURN NULL;
END $$;

CREATE TRIGGER usages_events_inserted AFTER INSERT ON usages
  REFERENCING NEW TABLE AS new_usages
  FOR EACH STATEMENT EXECUTE FUNCTION tp_usages_inserted();

CREATE TRIGGER usages_events_updated AFTER UPDATE ON usages
  REFERENCING OLD TABLE AS old_usages NEW TABLE AS new_usages
  FOR EACH STATEMENT EXECUTE FUNCTION tp_usages_updated();
