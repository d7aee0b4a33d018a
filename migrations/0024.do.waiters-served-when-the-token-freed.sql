-- A waiter served because its token's lease or cooldown ran out is served as of that
-- deadline, not the few milliseconds later that its node's timer and the grant's statement
-- ran: so it is never served after the served-by time it was told (estimated_grant_at, the
-- k-th earliest of those deadlines). Only a live waiter, only a deadline (not a release, an
-- enable or a new token), only a lag of at most 100 ms or a tenth of the TTL, and never
-- before the token's last lease ended: no two usages of a token overlap.

-- When p_token freed by a deadline a waiter could have been told, if it did: its lease ran
-- out (the mirror still names it) or its cooldown ran out after its last lease ended. NULL
-- when it freed otherwise (a release, an enable, a new token), whose moment no waiter was told.
CREATE FUNCTION tp_freed_at(t tokens, p_now timestamptz) RETURNS timestamptz
LANGUAGE sql STABLE AS $$
  SELECT CASE
    WHEN t.lease_expires_at <= p_now
      THEN greatest(t.lease_expires_at, CASE WHEN t.cooling_until <= p_now THEN t.cooling_until END)
    WHEN t.lease_id IS NULL AND t.cooling_until <= p_now
         AND t.cooling_until >= coalesce((SELECT coalesce(u.released_at, u.expires_at) FROM usages u
                                           WHERE u.token_id = t.id ORDER BY u.id DESC LIMIT 1), '-infinity')
      THEN t.cooling_until
  END
$$;

-- Grants p_tokens[i] (locked by the caller) to p_users[i] in p_pool: ends each token's
-- previous lease (expired at its own end, or evicted now), writes the new usages, the
-- tokens' mirror and the quota counts, and returns one row per grant.
CREATE OR REPLACE FUNCTION tp_grant(p_pool pools, p_window timestamptz, p_users uuid[], p_tokens uuid[], p_prior bigint[])
RETURNS TABLE (user_id uuid, lease_id bigint, token_id uuid, started_at timestamptz,
               expires_at timestamptz, renewable_until timestamptz, evicted_user_id uuid)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  v_ttl interval := make_interval(secs => p_pool.lease_ttl_seconds);
  v_max interval := make_interval(secs => p_pool.lease_max_seconds);
  -- Rule 10: leases start once their tokens are ours (a waiter's: when its deadline freed it),
  -- never before a token's last use began.
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
      SELECT g.token_id, g.user_id,
             -- A waiter whose token freed by a deadline just before (the timer's and the
             -- statement's lag: at most a tenth of the TTL and 100 ms) starts then.
             greatest(CASE WHEN w.waited AND f.freed > v_start - least(interval '100 milliseconds', v_ttl / 10)
                           THEN f.freed ELSE v_start END,
                      t.lease_started_at) AS s,
             CASE WHEN t.lease_expires_at > greatest(v_start, t.lease_started_at) THEN t.lease_user_id END AS evicted,
             tp_count(t, p_window) + 1 AS count
        FROM unnest(p_tokens, p_users[1:cardinality(p_tokens)]) WITH ORDINALITY AS g(token_id, user_id, i)
        JOIN tokens t ON t.id = g.token_id
        CROSS JOIN LATERAL (SELECT EXISTS (SELECT 1 FROM waiters w WHERE w.pool = p_pool.name AND w.user_id = g.user_id
                                              AND w.alive_until > v_start AND w.granted_token IS NULL)) w(waited)
        CROSS JOIN LATERAL (SELECT CASE WHEN w.waited THEN tp_freed_at(t, v_start) END) f(freed)
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
