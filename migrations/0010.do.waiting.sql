-- Waiting (rule 12): a queue per pool, first come first served across every node.
--
-- The queue is this table; the order is `place`, from one sequence. Who may take a free
-- token is decided inside tp_allocate under a per-pool advisory lock: a batch takes it
-- shared while nobody waits (batches still run side by side), and exclusive once anyone
-- waits or wants to, so that joining the queue and granting to its head are serialised.
-- A batch that took the shared lock and then finds a waiter steps back ('requeue') and
-- runs again exclusive. NOTIFY only wakes nodes up; it is never the record.
--
-- Each row belongs to one node (a process), which keeps it alive with a heartbeat. A row
-- whose alive_until has passed is a dead node's and counts for nothing, so a killed
-- node blocks the queue at most until its rows' alive_until.

CREATE SEQUENCE waiter_places;

CREATE TABLE waiters (
  pool text NOT NULL REFERENCES pools (name),
  user_id uuid NOT NULL,
  -- A user's requests share one place: calling again while waiting joins its own place.
  place bigint NOT NULL,
  node uuid NOT NULL,
  alive_until timestamptz NOT NULL,
  -- Set when a turn taken on any node granted this waiter a token: it waits no more, and
  -- its node answers it with that lease, or gives the lease back if the caller has gone.
  granted_token uuid,
  PRIMARY KEY (pool, user_id, node)
);
CREATE INDEX waiters_queue ON waiters (pool, place);
CREATE INDEX waiters_node ON waiters (node);

-- When each token that will free up does: a lease's end or a cooldown's (a token has at
-- most one of them in the future). Retired and disabled tokens free nothing.
CREATE INDEX tokens_deadline ON tokens (pool, (greatest(lease_expires_at, cooling_until)))
  WHERE NOT retired AND NOT disabled;

-- The p_n earliest of those deadlines in p_pool, earliest first: the k-th is the latest
-- a waiter at position k is served (rule 12's served-by time).
CREATE FUNCTION tp_deadlines(p_pool text, p_now timestamptz, p_n integer) RETURNS timestamptz[]
LANGUAGE sql STABLE AS $$
  SELECT coalesce(array_agg(d.at ORDER BY d.at), '{}') FROM (
    SELECT greatest(t.lease_expires_at, t.cooling_until) AS at FROM tokens t
     WHERE t.pool = p_pool AND NOT t.retired AND NOT t.disabled
       AND greatest(t.lease_expires_at, t.cooling_until) > p_now
     ORDER BY greatest(t.lease_expires_at, t.cooling_until) LIMIT greatest(p_n, 0)) d
$$;

-- Read from the index above instead of a scan of the whole pool.
CREATE OR REPLACE FUNCTION tp_retry_after_ms(p_pool text, p_now timestamptz) RETURNS bigint
LANGUAGE sql STABLE AS $$
  SELECT greatest(1, ceil(extract(epoch FROM d[1] - p_now) * 1000))::bigint
    FROM tp_deadlines(p_pool, p_now, 1) d
   WHERE cardinality(d) > 0
$$;

-- The users waiting in p_pool now, in queue order (dead nodes' rows left out).
CREATE FUNCTION tp_queue(p_pool text, p_now timestamptz) RETURNS uuid[]
LANGUAGE sql STABLE AS $$
  SELECT coalesce(array_agg(q.user_id ORDER BY q.place), '{}') FROM (
    SELECT w.user_id, min(w.place) AS place FROM waiters w
     WHERE w.pool = p_pool AND w.alive_until > p_now AND w.granted_token IS NULL GROUP BY w.user_id) q
$$;

-- How many wait in p_pool: pool views, stats and metrics carry it.
CREATE FUNCTION tp_waiting(p_pool text, p_now timestamptz) RETURNS integer
LANGUAGE sql STABLE AS $$
  SELECT count(DISTINCT w.user_id)::int FROM waiters w
   WHERE w.pool = p_pool AND w.alive_until > p_now AND w.granted_token IS NULL
$$;

-- Takes p_user's request on p_node out of p_pool's queue, in turn (a turn that read the
-- queue before is over, so its grant is on the row). A token a turn granted it meanwhile
-- goes back at once; returns whether one did.
CREATE FUNCTION tp_leave(p_pool text, p_user uuid, p_node uuid) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
  v_token uuid;
BEGIN
  PERFORM pg_advisory_xact_lock(hashtextextended('turns ' || p_pool, 7412));
  DELETE FROM waiters w WHERE w.pool = p_pool AND w.user_id = p_user AND w.node = p_node
  RETURNING w.granted_token INTO v_token;
  IF v_token IS NULL THEN
    RETURN false;
  END IF;
  PERFORM tp_release(v_token, p_user);
  RETURN true;
END $$;

-- Every request of p_node leaves every queue (the node stops).
CREATE FUNCTION tp_leave_all(p_node uuid) RETURNS integer
LANGUAGE sql AS $$
  SELECT count(*) FILTER (WHERE tp_leave(w.pool, w.user_id, w.node))::int
    FROM (SELECT DISTINCT pool, user_id, node FROM waiters WHERE node = p_node ORDER BY pool, user_id) w
$$;

-- Takes the rows of nodes that stopped heartbeating out of p_pool's queue; a lease
-- granted to one of them meanwhile goes back at once (its caller is gone with its node).
CREATE FUNCTION tp_forget_dead_waiters(p_pool text, p_now timestamptz) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  r record;
BEGIN
  FOR r IN DELETE FROM waiters w WHERE w.pool = p_pool AND w.alive_until <= p_now
           RETURNING w.user_id, w.granted_token LOOP
    IF r.granted_token IS NOT NULL THEN
      PERFORM tp_release(r.granted_token, r.user_id);
    END IF;
  END LOOP;
END $$;

CREATE OR REPLACE FUNCTION tp_pool_json(p_pool text) RETURNS jsonb
LANGUAGE sql STABLE AS $$
  SELECT jsonb_build_object(
           'name', p.name, 'size', p.size, 'lease_ttl_seconds', p.lease_ttl_seconds,
           'lease_max_seconds', p.lease_max_seconds, 'usage_window_hours', p.usage_window_hours,
           'on_exhausted', p.on_exhausted, 'max_wait_seconds', p.max_wait_seconds,
           'cooldown_max_seconds', p.cooldown_max_seconds, 'user_quota', p.user_quota,
           'waiting', tp_waiting(p.name, clock_timestamp()))
         || coalesce((SELECT to_jsonb(c) FROM tp_pool_counts(p.name, clock_timestamp()) c), '{}')
    FROM pools p WHERE p.name = p_pool
$$;

-- Grants p_tokens[i] (locked by the caller) to p_users[i] in p_pool: ends each token's
-- previous lease (expired at its own end, or evicted now), writes the new usages, the
-- tokens' mirror and the quota counts, and returns one row per grant.
CREATE FUNCTION tp_grant(p_pool pools, p_window timestamptz, p_users uuid[], p_tokens uuid[], p_prior bigint[])
RETURNS TABLE (user_id uuid, lease_id bigint, token_id uuid, started_at timestamptz,
               expires_at timestamptz, renewable_until timestamptz, evicted_user_id uuid)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  v_ttl interval := make_interval(secs => p_pool.lease_ttl_seconds);
  v_max interval := make_interval(secs => p_pool.lease_max_seconds);
  -- Rule 10: leases start once their tokens are ours, never before a token's last use began.
  v_start timestamptz := date_trunc('milliseconds', clock_timestamp());
BEGIN
  UPDATE usages u
     SET released_at = CASE WHEN u.expires_at <= greatest(v_start, u.started_at) THEN u.expires_at
                            ELSE greatest(v_start, u.started_at) END,
         release_reason = CASE WHEN u.expires_at <= greatest(v_start, u.started_at) THEN 'expired' ELSE 'evicted' END
   WHERE u.id = ANY (p_prior) AND u.released_at IS NULL;

  RETURN QUERY
  WITH p AS MATERIALIZED (
    -- Lease ids in the order of p_users (a queue's order shows in its fencing ids).
    SELECT o.*, nextval(pg_get_serial_sequence('usages', 'id')) AS id FROM (
      SELECT g.token_id, g.user_id, greatest(v_start, t.lease_started_at) AS s,
             CASE WHEN t.lease_expires_at > greatest(v_start, t.lease_started_at) THEN t.lease_user_id END AS evicted,
             tp_count(t, p_window) + 1 AS count
        FROM unnest(p_tokens, p_users[1:cardinality(p_tokens)]) WITH ORDINALITY AS g(token_id, user_id, i)
        JOIN tokens t ON t.id = g.token_id
       ORDER BY g.i) o
  ), granted AS (
    INSERT INTO usages (id, pool, token_id, user_id, started_at, expires_at, renewable_until) OVERRIDING SYSTEM VALUE
    SELECT p.id, p_pool.name, p.token_id, p.user_id, p.s, p.s + v_ttl, p.s + v_max FROM p
  ), mirrored AS (
    UPDATE tokens t SET
      lease_id = p.id, lease_user_id = p.user_id, lease_started_at = p.s, lease_expires_at = p.s + v_ttl,
      usage_count = p.count, counted_window = p_window, shuffle = random()
      FROM p WHERE t.id = p.token_id
  ), counted AS (
    INSERT INTO user_window_leases AS q (pool, user_id, window_started_at, leases)
    SELECT p_pool.name, p.user_id, p_window, 1 FROM p WHERE p_pool.user_quota IS NOT NULL
    ON CONFLICT (pool, user_id) DO UPDATE
      SET leases = CASE WHEN q.window_started_at = p_window THEN q.leases + 1 ELSE 1 END,
          window_started_at = p_window
  )
  SELECT p.user_id, p.id, p.token_id, p.s, p.s + v_ttl, p.s + v_max, p.evicted FROM p;
END $$;
