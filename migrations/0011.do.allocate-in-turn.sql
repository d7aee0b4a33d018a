-- Allocation with waiting (rules 2-10, 12, 14), per pool; replaces 0007's tp_allocate.
DROP FUNCTION tp_allocate(text, uuid[]);

-- Allocates in p_pool for a batch of users in one transaction (one commit, one round
-- trip, a handful of set-based statements however large the batch). Users in p_queue
-- may wait. Those of them not in p_fresh are a node trying its waiters again: they are
-- served only from their place in the queue, and a user no longer in it (served, gone,
-- or lapsed meanwhile) is answered 'gone', never granted or queued anew. p_node is the
-- calling process, whose queue rows stay alive p_alive_ms past their last heartbeat.
--
-- While nobody waits, the m least-used free tokens go to the m users, and under
-- evict_oldest the oldest leases are evicted for the rest, in rounds (as the same
-- requests one after another would). Once anyone waits, nobody evicts and tokens go
-- in turn: the whole queue by place, whichever node each waiter is on, then newcomers;
-- with k tokens free, the first k of that order get them. A waiter of another node is
-- granted here ('granted', a row for a user not asked for) and marked so in the queue;
-- its node answers it with that lease on its next try, or gives it back.
--
-- outcome: 'new' | 'existing' | 'exhausted' | 'quota' (with retry_after_ms) | 'no_pool'
--   | 'queued': waiting, with its position, the number waiting, its served-by time
--     (estimated_grant_at), when its node should try again (wake_at: the next deadline)
--     and retry_after_ms for a time-out
--   | 'requeue': only without p_exclusive, for a p_queue user that would wait or meets
--     a queue: the caller runs it again with p_exclusive.
--   | 'gone': a user tried again that is not in the queue any more
--   | 'granted': not one of p_users: a waiter of another node granted in this turn.
CREATE FUNCTION tp_allocate(p_pool text, p_users uuid[], p_fresh uuid[], p_queue uuid[], p_node uuid,
                            p_exclusive boolean, p_alive_ms integer)
RETURNS TABLE (
  user_id uuid, outcome text, lease_id bigint, token_id uuid, started_at timestamptz,
  expires_at timestamptz, renewable_until timestamptz, evicted_user_id uuid, retry_after_ms bigint,
  "position" integer, waiting integer, estimated_grant_at timestamptz, wake_at timestamptz
)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  v_pool pools%ROWTYPE;
  v_turns bigint := hashtextextended('turns ' || p_pool, 7412);
  v_exclusive boolean := p_exclusive;
  v_window timestamptz;
  v_users uuid[];
  v_new uuid[];
  v_stale bigint[];
  v_refused uuid[];
  v_queue uuid[] := '{}';
  v_order uuid[];
  v_g_users uuid[];
  v_g_leases bigint[];
  v_g_tokens uuid[];
  v_g_starts timestamptz[];
  v_g_ends timestamptz[];
  v_g_caps timestamptz[];
  v_tokens uuid[];
  v_prior bigint[];
  v_more record;
  v_now timestamptz;
  v_granted integer := 0;
  v_free integer := 0;
  v_left uuid[] := '{}';
  v_join uuid[];
  v_deadlines timestamptz[];
  v_wake timestamptz;
  v_gone uuid[];
BEGIN
  SELECT * INTO v_pool FROM pools p WHERE p.name = p_pool AND NOT p.deleted;
  IF NOT FOUND THEN
    RETURN QUERY SELECT DISTINCT x, 'no_pool', NULL::bigint, NULL::uuid, NULL::timestamptz, NULL::timestamptz,
                        NULL::timestamptz, NULL::uuid, NULL::bigint, NULL::int, NULL::int, NULL::timestamptz,
                        NULL::timestamptz FROM unnest(p_users) x;
    RETURN;
  END IF;

  -- Rule 12's turn: exclusive while anyone waits, shared otherwise (see 0010).
  v_exclusive := v_exclusive
    OR EXISTS (SELECT 1 FROM waiters w WHERE w.pool = p_pool AND w.alive_until > clock_timestamp());
  IF v_exclusive THEN
    PERFORM pg_advisory_xact_lock(v_turns);
  ELSE
    PERFORM pg_advisory_xact_lock_shared(v_turns);
    -- Someone joined the queue between the look above and the lock: step back.
    IF EXISTS (SELECT 1 FROM waiters w WHERE w.pool = p_pool AND w.alive_until > clock_timestamp()) THEN
      RETURN QUERY SELECT DISTINCT x, 'requeue', NULL::bigint, NULL::uuid, NULL::timestamptz, NULL::timestamptz,
                          NULL::timestamptz, NULL::uuid, NULL::bigint, NULL::int, NULL::int, NULL::timestamptz,
                          NULL::timestamptz FROM unnest(p_users) x;
      RETURN;
    END IF;
  END IF;

  v_window := tp_window(p_pool);
  SELECT array_agg(d.x ORDER BY hashtextextended(p_pool || d.x::text, 7411)) INTO v_users
    FROM (SELECT DISTINCT x FROM unnest(p_users) x) d;
  -- Rule 6: one allocation per user and pool at a time, so "allocate again" returns the same
  -- lease. Exclusive batches of the pool already run one at a time.
  IF NOT v_exclusive THEN
    PERFORM pg_advisory_xact_lock(hashtextextended(p_pool || x::text, 7411)) FROM unnest(v_users) x;
  END IF;
  v_now := date_trunc('milliseconds', clock_timestamp());

  IF v_exclusive THEN
    -- A dead node's rows count for nothing from their alive_until on.
    PERFORM tp_forget_dead_waiters(p_pool, v_now);
    v_queue := tp_queue(p_pool, v_now);
  END IF;

  -- Each user's open usage in the pool (a waiter's included: a turn on another node may
  -- have granted it), one index probe per user (LIMIT 1 keeps the
  -- planner from turning it into a join over every open usage).
  RETURN QUERY
  SELECT o.user_id, 'existing', o.id, o.token_id, o.started_at, o.expires_at,
         coalesce(o.renewable_until, o.expires_at), NULL::uuid, NULL::bigint, NULL::int, NULL::int,
         NULL::timestamptz, NULL::timestamptz
    FROM unnest(v_users) x
    CROSS JOIN LATERAL (SELECT * FROM usages u WHERE u.pool = p_pool AND u.user_id = x AND u.released_at IS NULL LIMIT 1) o
   WHERE o.expires_at > v_now;
  SELECT coalesce(array_agg(x) FILTER (WHERE o.id IS NULL OR o.expires_at <= v_now), '{}'),
         coalesce(array_agg(o.id) FILTER (WHERE o.expires_at <= v_now), '{}')
    INTO v_new, v_stale
    FROM unnest(v_users) x
    LEFT JOIN LATERAL (SELECT u.id, u.expires_at FROM usages u
                        WHERE u.pool = p_pool AND u.user_id = x AND u.released_at IS NULL LIMIT 1) o ON true;
  IF cardinality(v_stale) > 0 THEN
    -- Their leases that ran out and the sweep has not written yet.
    UPDATE usages u SET released_at = u.expires_at, release_reason = 'expired'
     WHERE u.id = ANY (v_stale) AND u.released_at IS NULL;
  END IF;

  -- A waiter tried again that holds no lease and has no place any more: it left, or its
  -- place lapsed, since it was sent.
  SELECT coalesce(array_agg(x), '{}') INTO v_gone FROM unnest(v_new) x
   WHERE x = ANY (p_queue) AND x <> ALL (p_fresh) AND x <> ALL (v_queue);
  IF cardinality(v_gone) > 0 THEN
    RETURN QUERY SELECT x, 'gone', NULL::bigint, NULL::uuid, NULL::timestamptz, NULL::timestamptz,
                        NULL::timestamptz, NULL::uuid, NULL::bigint, NULL::int, NULL::int, NULL::timestamptz,
                        NULL::timestamptz FROM unnest(v_gone) x;
    SELECT coalesce(array_agg(x), '{}') INTO v_new FROM unnest(v_new) x WHERE x <> ALL (v_gone);
  END IF;

  -- Rule 14: a user at its quota for this window gets no new lease, and does not queue.
  -- Checked when a request arrives: a waiter already in the queue passed it.
  IF v_pool.user_quota IS NOT NULL AND cardinality(v_new) > 0 THEN
    SELECT coalesce(array_agg(x), '{}') INTO v_refused
      FROM unnest(v_new) x
      JOIN user_window_leases q ON q.pool = p_pool AND q.user_id = x
     WHERE q.window_started_at = v_window AND q.leases >= v_pool.user_quota AND x <> ALL (v_queue);
    IF v_pool.user_quota = 0 THEN
      SELECT coalesce(array_agg(x), '{}') INTO v_refused FROM unnest(v_new) x WHERE x <> ALL (v_queue);
    END IF;
    IF cardinality(v_refused) > 0 THEN
      RETURN QUERY
      SELECT x, 'quota', NULL::bigint, NULL::uuid, NULL::timestamptz, NULL::timestamptz, NULL::timestamptz, NULL::uuid,
             greatest(1, ceil(extract(epoch FROM v_window + make_interval(secs => v_pool.usage_window_hours * 3600) - v_now) * 1000))::bigint,
             NULL::int, NULL::int, NULL::timestamptz, NULL::timestamptz
        FROM unnest(v_refused) x;
      SELECT coalesce(array_agg(x), '{}') INTO v_new FROM unnest(v_new) x WHERE x <> ALL (v_refused);
    END IF;
  END IF;

  IF cardinality(v_new) > 0 AND cardinality(v_queue) = 0 AND v_pool.on_exhausted = 'evict_oldest' THEN
    -- Nobody waits. In rounds: a batch larger than what the pool can give at once
    -- grants what it can, then the rest evict the oldest leases, those just granted in
    -- this batch included.
    LOOP
      SELECT * INTO v_tokens, v_prior FROM tp_pick(p_pool, v_window, v_now, cardinality(v_new));
      IF cardinality(v_tokens) < cardinality(v_new) THEN
        SELECT * INTO v_more FROM tp_pick_evictable(p_pool, v_now, cardinality(v_new) - cardinality(v_tokens), v_tokens);
        v_tokens := v_tokens || v_more.picked;
        v_prior := v_prior || v_more.prior;
        -- Every candidate is locked by concurrent batches (or the batch outgrew the pool):
        -- wait for the oldest, one at a time, and take what it holds once committed.
        WHILE cardinality(v_tokens) < cardinality(v_new) LOOP
          SELECT t.id, t.lease_id INTO v_more FROM tokens t
           WHERE t.pool = p_pool AND NOT t.retired AND NOT t.disabled
             AND (t.cooling_until IS NULL OR t.cooling_until <= v_now) AND t.id <> ALL (v_tokens)
           ORDER BY t.lease_started_at NULLS FIRST
           LIMIT 1 FOR NO KEY UPDATE;
          EXIT WHEN NOT FOUND;
          v_tokens := v_tokens || v_more.id;
          v_prior := v_prior || v_more.lease_id;
        END LOOP;
      END IF;
      v_granted := cardinality(v_tokens);
      IF v_granted > 0 THEN
        RETURN QUERY
        SELECT g.user_id, 'new', g.lease_id, g.token_id, g.started_at, g.expires_at, g.renewable_until,
               g.evicted_user_id, NULL::bigint, NULL::int, NULL::int, NULL::timestamptz, NULL::timestamptz
          FROM tp_grant(v_pool, v_window, v_new, v_tokens, v_prior) g;
      END IF;
      EXIT WHEN v_granted = 0 OR v_granted = cardinality(v_new);
      v_new := v_new[v_granted + 1:];
    END LOOP;
    v_left := v_new[v_granted + 1:];
  ELSIF cardinality(v_new) > 0 THEN
    -- In turn: the whole queue by place, whichever node each waiter is on, then this
    -- batch's newcomers in the order they came; with k tokens free the first k get them.
    -- A waiter of another node is granted here too, and its node answers it.
    SELECT v_queue || coalesce(array_agg(x ORDER BY array_position(p_users, x)), '{}') INTO v_order
      FROM unnest(v_new) x WHERE x <> ALL (v_queue);
    -- Only this batch's users can be answered: nobody after the last of them needs a token now.
    SELECT max(array_position(v_order, x)) INTO v_granted FROM unnest(v_new) x;
    v_order := v_order[1:v_granted];
    -- A waiter of another node that got a lease some other way is not granted a second
    -- (nor does it take a token from those behind).
    SELECT coalesce(array_agg(x ORDER BY i), '{}') INTO v_order FROM unnest(v_order) WITH ORDINALITY o(x, i)
     WHERE x = ANY (v_new) OR NOT EXISTS (SELECT 1 FROM usages u WHERE u.pool = p_pool AND u.user_id = x
                                           AND u.released_at IS NULL AND u.expires_at > v_now);
    SELECT * INTO v_tokens, v_prior FROM tp_pick(p_pool, v_window, v_now, cardinality(v_order));
    v_free := cardinality(v_tokens);
    v_order := v_order[1:v_free];
    v_granted := cardinality(v_order);
    IF v_granted > 0 THEN
      SELECT array_agg(g.user_id), array_agg(g.lease_id), array_agg(g.token_id), array_agg(g.started_at),
             array_agg(g.expires_at), array_agg(g.renewable_until)
        INTO v_g_users, v_g_leases, v_g_tokens, v_g_starts, v_g_ends, v_g_caps
        FROM tp_grant(v_pool, v_window, v_order, v_tokens[1:v_granted], v_prior[1:v_granted]) g;
      RETURN QUERY
      SELECT g.u, CASE WHEN g.u = ANY (v_new) THEN 'new' ELSE 'granted' END, g.l, g.t, g.s, g.e, g.c, NULL::uuid,
             NULL::bigint, NULL::int, NULL::int, NULL::timestamptz, NULL::timestamptz
        FROM unnest(v_g_users, v_g_leases, v_g_tokens, v_g_starts, v_g_ends, v_g_caps) g(u, l, t, s, e, c);
      -- The others' nodes find their lease on their next try (the grant's event wakes them).
      UPDATE waiters w SET granted_token = g.t
        FROM unnest(v_g_users, v_g_tokens) g(u, t)
       WHERE w.pool = p_pool AND w.user_id = g.u AND g.u <> ALL (v_new);
      -- A user of this batch that also waits on another node: answered here, it waits there
      -- no more (that node's next try finds the lease).
      DELETE FROM waiters w WHERE w.pool = p_pool AND w.node <> p_node AND w.user_id = ANY (v_g_users)
         AND w.user_id = ANY (v_new);
    END IF;
    SELECT coalesce(array_agg(x), '{}') INTO v_left FROM unnest(v_new) x WHERE x <> ALL (v_order);
  END IF;

  IF NOT v_exclusive THEN
    RETURN QUERY
    SELECT x, CASE WHEN x = ANY (p_queue) THEN 'requeue' ELSE 'exhausted' END, NULL::bigint, NULL::uuid,
           NULL::timestamptz, NULL::timestamptz, NULL::timestamptz, NULL::uuid, tp_retry_after_ms(p_pool, v_now),
           NULL::int, NULL::int, NULL::timestamptz, NULL::timestamptz
      FROM unnest(v_left) x ORDER BY array_position(p_users, x);
    RETURN;
  END IF;

  -- Those answered leave this node's queue; those left over that may wait join it (a
  -- user already waiting on any node keeps its place).
  DELETE FROM waiters w WHERE w.pool = p_pool AND w.node = p_node AND w.user_id = ANY (v_users)
     AND w.user_id <> ALL (v_left);
  SELECT coalesce(array_agg(x ORDER BY array_position(p_users, x)), '{}') INTO v_join
    FROM unnest(v_left) x WHERE x = ANY (p_queue);
  INSERT INTO waiters (pool, user_id, place, node, alive_until)
  SELECT p_pool, j.x,
         coalesce((SELECT min(w.place) FROM waiters w WHERE w.pool = p_pool AND w.user_id = j.x), nextval('waiter_places')),
         p_node, v_now + make_interval(secs => p_alive_ms / 1000.0)
    FROM unnest(v_join) WITH ORDINALITY j(x, i) ORDER BY j.i
  ON CONFLICT (pool, user_id, node) DO UPDATE SET alive_until = excluded.alive_until;

  RETURN QUERY
  SELECT x, 'exhausted', NULL::bigint, NULL::uuid, NULL::timestamptz, NULL::timestamptz, NULL::timestamptz,
         NULL::uuid, tp_retry_after_ms(p_pool, v_now), NULL::int, NULL::int, NULL::timestamptz, NULL::timestamptz
    FROM unnest(v_left) x WHERE x <> ALL (v_join);
  IF cardinality(v_join) = 0 THEN
    RETURN;
  END IF;

  v_queue := tp_queue(p_pool, v_now);
  v_deadlines := tp_deadlines(p_pool, v_now,
                              (SELECT max(array_position(v_queue, x)) FROM unnest(v_join) x));
  v_wake := v_deadlines[1];
  RETURN QUERY
  SELECT x, 'queued', NULL::bigint, NULL::uuid, NULL::timestamptz, NULL::timestamptz, NULL::timestamptz, NULL::uuid,
         CASE WHEN cardinality(v_deadlines) > 0
              THEN greatest(1, ceil(extract(epoch FROM v_deadlines[1] - v_now) * 1000))::bigint END,
         array_position(v_queue, x), cardinality(v_queue), v_deadlines[array_position(v_queue, x)], v_wake
    FROM unnest(v_join) x;
END $$;
