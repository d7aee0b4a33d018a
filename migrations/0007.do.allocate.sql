-- Allocation (rules 2-10, 14), per pool.

-- Rule 4: up to p_n free tokens of p_pool, least used in the window p_window first,
-- uniformly at random among ties, each locked (SKIP LOCKED: a token another batch is
-- granting is not free). Count 0 is first: tokens whose count the sweep has forgotten
-- (one index range, read from a random point of its shuffle order and around: the
-- successor of a uniform point among i.i.d. shuffles is a uniform pick, and it avoids
-- walking the dead index entries that every grant leaves at the range's start), then
-- counts of an older window not yet forgotten, then this window's counts, lowest first.
-- Each read orders by the tokens_pick index's own columns (counted_window NULLS FIRST,
-- usage_count, shuffle), which on the rows it reads is the order meant: ordered any other
-- way PostgreSQL sorted the whole range (1.1-2.7 s at 1,000,000 tokens) instead of
-- reading a few index entries.
CREATE FUNCTION tp_pick(p_pool text, p_window timestamptz, p_now timestamptz, p_n integer,
                        OUT picked uuid[], OUT prior bigint[])
LANGUAGE plpgsql AS $$
DECLARE
  v_from double precision := random();
  v_min integer;
BEGIN
  picked := '{}';
  prior := '{}';
  IF p_n <= 0 THEN
    RETURN;
  END IF;
  SELECT picked || coalesce(array_agg(f.id), '{}'), prior || coalesce(array_agg(f.lease_id), '{}')
    INTO picked, prior FROM (
    SELECT t.id, t.lease_id FROM tokens t
     WHERE t.pool = p_pool AND NOT t.retired AND t.counted_window IS NULL AND t.usage_count = 0
       AND t.shuffle >= v_from AND tp_is_free(t, p_now)
     ORDER BY t.counted_window NULLS FIRST, t.usage_count, t.shuffle LIMIT p_n FOR NO KEY UPDATE SKIP LOCKED) f;
  IF cardinality(picked) < p_n THEN
    SELECT picked || coalesce(array_agg(f.id), '{}'), prior || coalesce(array_agg(f.lease_id), '{}')
      INTO picked, prior FROM (
      SELECT t.id, t.lease_id FROM tokens t
       WHERE t.pool = p_pool AND NOT t.retired AND t.counted_window IS NULL AND t.usage_count = 0
         AND t.shuffle < v_from AND tp_is_free(t, p_now)
       ORDER BY t.counted_window NULLS FIRST, t.usage_count, t.shuffle LIMIT p_n - cardinality(picked) FOR NO KEY UPDATE SKIP LOCKED) f;
  END IF;
  IF cardinality(picked) < p_n THEN
    SELECT picked || coalesce(array_agg(f.id), '{}'), prior || coalesce(array_agg(f.lease_id), '{}')
      INTO picked, prior FROM (
      SELECT t.id, t.lease_id FROM tokens t
       WHERE t.pool = p_pool AND NOT t.retired AND t.counted_window < p_window AND tp_is_free(t, p_now)
       ORDER BY t.counted_window NULLS FIRST, t.usage_count, t.shuffle LIMIT p_n - cardinality(picked) FOR NO KEY UPDATE SKIP LOCKED) f;
  END IF;
  IF cardinality(picked) < p_n THEN
    SELECT t.usage_count INTO v_min FROM tokens t
     WHERE t.pool = p_pool AND NOT t.retired AND t.counted_window = p_window AND tp_is_free(t, p_now)
     ORDER BY t.usage_count, t.shuffle LIMIT 1;
    IF v_min IS NOT NULL THEN
      SELECT picked || coalesce(array_agg(f.id), '{}'), prior || coalesce(array_agg(f.lease_id), '{}')
        INTO picked, prior FROM (
        SELECT t.id, t.lease_id FROM tokens t
         WHERE t.pool = p_pool AND NOT t.retired AND t.counted_window = p_window AND t.usage_count = v_min
           AND t.shuffle >= v_from AND tp_is_free(t, p_now)
         ORDER BY t.shuffle LIMIT p_n - cardinality(picked) FOR NO KEY UPDATE SKIP LOCKED) f;
      IF cardinality(picked) < p_n THEN
        -- Around from the start of that count, then on to the next counts.
        SELECT picked || coalesce(array_agg(f.id), '{}'), prior || coalesce(array_agg(f.lease_id), '{}')
          INTO picked, prior FROM (
          SELECT t.id, t.lease_id FROM tokens t
           WHERE t.pool = p_pool AND NOT t.retired AND t.counted_window = p_window
             AND tp_is_free(t, p_now) AND t.id <> ALL (picked)
           ORDER BY t.usage_count, t.shuffle LIMIT p_n - cardinality(picked) FOR NO KEY UPDATE SKIP LOCKED) f;
      END IF;
    END IF;
  END IF;
END $$;

-- Rule 7, evict_oldest: up to p_n tokens of p_pool holding the oldest active leases,
-- locked. Cooling and disabled tokens are never among them.
CREATE FUNCTION tp_pick_evictable(p_pool text, p_now timestamptz, p_n integer, p_skip uuid[],
                                  OUT picked uuid[], OUT prior bigint[])
LANGUAGE sql AS $$
  SELECT coalesce(array_agg(e.id), '{}'), coalesce(array_agg(e.lease_id), '{}') FROM (
    SELECT t.id, t.lease_id FROM tokens t
     WHERE t.pool = p_pool AND NOT t.retired AND t.lease_id IS NOT NULL AND t.id <> ALL (p_skip)
       AND NOT t.disabled AND (t.cooling_until IS NULL OR t.cooling_until <= p_now)
     ORDER BY t.lease_started_at
     LIMIT greatest(p_n, 0) FOR NO KEY UPDATE SKIP LOCKED) e
$$;

-- Whole milliseconds until the earliest lease expiry or cooldown end of p_pool (what a
-- refused request may wait for); NULL when nothing will free a token (all disabled).
CREATE FUNCTION tp_retry_after_ms(p_pool text, p_now timestamptz) RETURNS bigint
LANGUAGE sql STABLE AS $$
  SELECT greatest(1, ceil(extract(epoch FROM min(d) - p_now) * 1000))::bigint
    FROM (SELECT CASE WHEN t.cooling_until > p_now THEN t.cooling_until ELSE t.lease_expires_at END AS d
            FROM tokens t
           WHERE t.pool = p_pool AND NOT t.retired AND NOT t.disabled
             AND (t.lease_expires_at > p_now OR t.cooling_until > p_now)) x
  HAVING min(d) IS NOT NULL
$$;

-- Allocates in p_pool for a batch of users in one transaction: one commit and one round
-- trip for many requests, and a handful of set-based statements however large the batch.
-- Taking the m least-used free tokens at once is what m picks in a row would take, since
-- a granted token is no longer free; likewise the k oldest leases for k evictions. A batch
-- larger than the pool can give at once grants in rounds (under evict_oldest), as the
-- same requests one after another would. Users
-- are locked in advisory-lock order so that two batches can't deadlock on them.
-- outcome: 'new' | 'existing' | 'exhausted' | 'quota' (with retry_after_ms) | 'no_pool'.
CREATE FUNCTION tp_allocate(p_pool text, p_users uuid[])
RETURNS TABLE (
  user_id uuid, outcome text, lease_id bigint, token_id uuid, started_at timestamptz,
  expires_at timestamptz, renewable_until timestamptz, evicted_user_id uuid, retry_after_ms bigint
)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  v_pool pools%ROWTYPE;
  v_window timestamptz;
  v_ttl interval;
  v_max interval;
  v_users uuid[];
  v_new uuid[];
  v_stale bigint[];
  v_refused uuid[];
  v_tokens uuid[];
  v_prior bigint[];
  v_more record;
  v_now timestamptz;
  v_start timestamptz;
  v_granted integer;
BEGIN
  SELECT * INTO v_pool FROM pools p WHERE p.name = p_pool AND NOT p.deleted;
  IF NOT FOUND THEN
    RETURN QUERY SELECT DISTINCT x, 'no_pool', NULL::bigint, NULL::uuid, NULL::timestamptz, NULL::timestamptz,
                        NULL::timestamptz, NULL::uuid, NULL::bigint FROM unnest(p_users) x;
    RETURN;
  END IF;
  v_window := tp_window(p_pool);
  v_ttl := make_interval(secs => v_pool.lease_ttl_seconds);
  v_max := make_interval(secs => v_pool.lease_max_seconds);
  SELECT array_agg(d.x ORDER BY hashtextextended(p_pool || d.x::text, 7411)) INTO v_users
    FROM (SELECT DISTINCT x FROM unnest(p_users) x) d;
  -- Rule 6: one allocation per user and pool at a time, so "allocate again" returns the same lease.
  PERFORM pg_advisory_xact_lock(hashtextextended(p_pool || x::text, 7411)) FROM unnest(v_users) x;
  v_now := date_trunc('milliseconds', clock_timestamp());

  -- Each user's open usage in the pool, one index probe per user (LIMIT 1 keeps the
  -- planner from turning it into a join over every open usage).
  RETURN QUERY
  SELECT o.user_id, 'existing', o.id, o.token_id, o.started_at, o.expires_at,
         coalesce(o.renewable_until, o.expires_at), NULL::uuid, NULL::bigint
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

  -- Rule 14: a user at its quota for this window gets no new lease.
  IF v_pool.user_quota IS NOT NULL AND cardinality(v_new) > 0 THEN
    SELECT coalesce(array_agg(x), '{}') INTO v_refused
      FROM unnest(v_new) x
      JOIN user_window_leases q ON q.pool = p_pool AND q.user_id = x
     WHERE q.window_started_at = v_window AND q.leases >= v_pool.user_quota;
    IF v_pool.user_quota = 0 THEN
      v_refused := v_new;
    END IF;
    IF cardinality(v_refused) > 0 THEN
      RETURN QUERY
      SELECT x, 'quota', NULL::bigint, NULL::uuid, NULL::timestamptz, NULL::timestamptz, NULL::timestamptz, NULL::uuid,
             greatest(1, ceil(extract(epoch FROM v_window + make_interval(secs => v_pool.usage_window_hours * 3600) - v_now) * 1000))::bigint
        FROM unnest(v_refused) x;
      SELECT coalesce(array_agg(x), '{}') INTO v_new FROM unnest(v_new) x WHERE x <> ALL (v_refused);
    END IF;
  END IF;
  IF cardinality(v_new) = 0 THEN
    RETURN;
  END IF;

  -- In rounds: a batch larger than what the pool can give at once (more users than
  -- tokens) grants what it can, then the rest evict the oldest leases, those just
  -- granted in this batch included, as the same requests one after another would.
  LOOP
    SELECT * INTO v_tokens, v_prior FROM tp_pick(p_pool, v_window, v_now, cardinality(v_new));
    IF cardinality(v_tokens) < cardinality(v_new) AND v_pool.on_exhausted = 'evict_oldest' THEN
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
      -- Rule 10: leases start once their tokens are ours, never before a token's last use began.
      v_start := date_trunc('milliseconds', clock_timestamp());
      -- The previous lease of each token ends first: expired at its own end, or evicted now.
      UPDATE usages u
         SET released_at = CASE WHEN u.expires_at <= greatest(v_start, u.started_at) THEN u.expires_at
                                ELSE greatest(v_start, u.started_at) END,
             release_reason = CASE WHEN u.expires_at <= greatest(v_start, u.started_at) THEN 'expired' ELSE 'evicted' END
       WHERE u.id = ANY (v_prior) AND u.released_at IS NULL;

      RETURN QUERY
      WITH p AS MATERIALIZED (
        SELECT g.token_id, g.user_id, nextval(pg_get_serial_sequence('usages', 'id')) AS id,
               greatest(v_start, t.lease_started_at) AS s,
               CASE WHEN t.lease_expires_at > greatest(v_start, t.lease_started_at) THEN t.lease_user_id END AS evicted,
               tp_count(t, v_window) + 1 AS count
          FROM unnest(v_tokens, v_new[1:v_granted]) AS g(token_id, user_id)
          JOIN tokens t ON t.id = g.token_id
      ), granted AS (
        INSERT INTO usages (id, pool, token_id, user_id, started_at, expires_at, renewable_until) OVERRIDING SYSTEM VALUE
        SELECT p.id, p_pool, p.token_id, p.user_id, p.s, p.s + v_ttl, p.s + v_max FROM p
      ), mirrored AS (
        UPDATE tokens t SET
          lease_id = p.id, lease_user_id = p.user_id, lease_started_at = p.s, lease_expires_at = p.s + v_ttl,
          usage_count = p.count, counted_window = v_window, shuffle = random()
          FROM p WHERE t.id = p.token_id
      ), counted AS (
        INSERT INTO user_window_leases AS q (pool, user_id, window_started_at, leases)
        SELECT p_pool, p.user_id, v_window, 1 FROM p WHERE v_pool.user_quota IS NOT NULL
        ON CONFLICT (pool, user_id) DO UPDATE
          SET leases = CASE WHEN q.window_started_at = v_window THEN q.leases + 1 ELSE 1 END,
              window_started_at = v_window
      )
      SELECT p.user_id, 'new', p.id, p.token_id, p.s, p.s + v_ttl, p.s + v_max, p.evicted, NULL::bigint FROM p;
    END IF;
    EXIT WHEN v_granted = 0 OR v_granted = cardinality(v_new) OR v_pool.on_exhausted <> 'evict_oldest';
    v_new := v_new[v_granted + 1:];
  END LOOP;

  IF v_granted < cardinality(v_new) THEN
    RETURN QUERY
    SELECT x, 'exhausted', NULL::bigint, NULL::uuid, NULL::timestamptz, NULL::timestamptz, NULL::timestamptz,
           NULL::uuid, tp_retry_after_ms(p_pool, v_now)
      FROM unnest(v_new[v_granted + 1:]) x;
  END IF;
END $$;
