-- Named pools (v0.2). Every rule now holds per pool, and the constraints say so:
-- one open usage per user per pool, one per token, no overlap on a token. A v0.1
-- database upgrades in place: its tokens, leases and usages become the default pool's,
-- ids and lease ids unchanged. The functions follow, one use case per migration file.

-- The v0.1 functions: each is replaced by a per-pool one in the files after this.
DROP FUNCTION tp_allocate(uuid[], interval, interval, boolean);
DROP FUNCTION tp_grant(uuid, interval, timestamptz, boolean);
DROP FUNCTION tp_release(uuid, uuid);
DROP FUNCTION tp_clear();
DROP FUNCTION tp_sweep(integer);
DROP FUNCTION tp_provision(integer, integer);
DROP FUNCTION tp_tokens(interval);
DROP FUNCTION tp_window_start(interval);
DROP FUNCTION tp_current_window(interval);

-- A pool's settings live here, so every node reads the same ones at every request.
-- `deleted` hides a pool while its tokens keep their ids and histories.
CREATE TABLE pools (
  name text PRIMARY KEY CHECK (name ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
  size integer NOT NULL CHECK (size BETWEEN 1 AND 1000000),
  lease_ttl_seconds double precision NOT NULL CHECK (lease_ttl_seconds > 0),
  lease_max_seconds double precision NOT NULL CHECK (lease_max_seconds <= 86400),
  usage_window_hours double precision NOT NULL CHECK (usage_window_hours > 0),
  on_exhausted text NOT NULL CHECK (on_exhausted IN ('evict_oldest', 'reject')),
  max_wait_seconds double precision NOT NULL CHECK (max_wait_seconds BETWEEN 0 AND 300),
  cooldown_max_seconds double precision NOT NULL CHECK (cooldown_max_seconds > 0 AND cooldown_max_seconds <= 604800),
  user_quota integer CHECK (user_quota >= 0),
  -- Rule 5: the start of the current window, kept across restarts; rolling it is O(1),
  -- because a count stored for an older window reads as 0 (tokens.counted_window).
  window_started_at timestamptz NOT NULL,
  deleted boolean NOT NULL DEFAULT false,
  CHECK (lease_max_seconds >= lease_ttl_seconds)
);
INSERT INTO pools (name, size, lease_ttl_seconds, lease_max_seconds, usage_window_hours, on_exhausted,
                   max_wait_seconds, cooldown_max_seconds, window_started_at)
SELECT 'default', least(greatest((SELECT count(*) FROM tokens WHERE NOT retired), 1), 1000000),
       120, 120, 24, 'evict_oldest', 60, 3600, window_started_at
  FROM pool_state;
DROP TABLE pool_state;

-- A token belongs to one pool forever. Health (rule 11) is two columns: a cooldown
-- deadline (in force while in the future, so it ends exactly on time with nobody
-- writing) and a disabled flag with its optional reason.
ALTER TABLE tokens
  ADD COLUMN pool text NOT NULL DEFAULT 'default' REFERENCES pools (name),
  ADD COLUMN label text CHECK (char_length(label) <= 100),
  ADD COLUMN cooling_until timestamptz,
  ADD COLUMN disabled boolean NOT NULL DEFAULT false,
  ADD COLUMN disabled_reason text CHECK (char_length(disabled_reason) <= 200),
  ADD CONSTRAINT tokens_reason_only_when_disabled CHECK (disabled OR disabled_reason IS NULL);
ALTER TABLE tokens ALTER COLUMN pool DROP DEFAULT;

DROP INDEX tokens_pick;
DROP INDEX tokens_oldest_lease;
DROP INDEX tokens_lease_expiry;
-- Rule 4's pick: a count of an older window is 0; the sweep forgets those (NULL, 0), so
-- "count 0" is one range of this index, ordered by the random shuffle.
CREATE INDEX tokens_pick ON tokens (pool, counted_window NULLS FIRST, usage_count, shuffle) WHERE NOT retired;
CREATE INDEX tokens_oldest_lease ON tokens (pool, lease_started_at) WHERE lease_id IS NOT NULL AND NOT retired;
CREATE INDEX tokens_in_pool ON tokens (pool, position);

-- A usage records its pool (its token's, forever) so that "one lease per user per pool"
-- is a unique index, and its renewal cap so that renewal never passes it.
ALTER TABLE usages
  ADD COLUMN pool text NOT NULL DEFAULT 'default',
  ADD COLUMN renewable_until timestamptz,
  ADD CONSTRAINT usages_within_cap CHECK (renewable_until IS NULL OR expires_at <= renewable_until);
ALTER TABLE usages ALTER COLUMN pool DROP DEFAULT;
ALTER TABLE usages DROP CONSTRAINT usages_release_reason_check;
ALTER TABLE usages ADD CONSTRAINT usages_release_reason_check
  CHECK (release_reason IN ('expired', 'evicted', 'released', 'cleared', 'cooldown', 'disabled'));
DROP INDEX usages_one_open_per_user;
CREATE UNIQUE INDEX usages_one_open_per_user ON usages (pool, user_id) WHERE released_at IS NULL;
-- Export reads a pool's usages oldest first, in pages.
CREATE INDEX usages_by_start ON usages (pool, started_at, id);

-- Rule 14: new leases per user in the pool's current window. Written only for pools
-- with a quota, so the others pay nothing for it.
CREATE TABLE user_window_leases (
  pool text NOT NULL REFERENCES pools (name),
  user_id uuid NOT NULL,
  window_started_at timestamptz NOT NULL,
  leases integer NOT NULL CHECK (leases >= 0),
  PRIMARY KEY (pool, user_id)
);

-- A token is free when no lease, cooldown or flag keeps it: rule 4's candidates.
CREATE FUNCTION tp_is_free(t tokens, p_now timestamptz) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
  SELECT NOT t.retired AND NOT t.disabled
     AND (t.lease_expires_at IS NULL OR t.lease_expires_at <= p_now)
     AND (t.cooling_until IS NULL OR t.cooling_until <= p_now)
$$;

-- A token's state as users see it (rule 11): disabled wins over cooling.
CREATE FUNCTION tp_status(t tokens, p_now timestamptz) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE WHEN t.disabled THEN 'disabled'
              WHEN t.cooling_until > p_now THEN 'cooling'
              WHEN t.lease_expires_at > p_now THEN 'active'
              ELSE 'available' END
$$;

-- A token's count in the window that starts at p_window: one of an older window is 0.
CREATE FUNCTION tp_count(t tokens, p_window timestamptz) RETURNS integer
LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE WHEN t.counted_window = p_window THEN t.usage_count ELSE 0 END
$$;
