-- A waiter is served as of the moment its token freed (a lease ran out, a cooldown ended, a
-- holder released it), when that was within the last second: not the few milliseconds later
-- that the grant's statement ran. So a waiter is never served after the served-by time it was
-- told (estimated_grant_at: the k-th earliest deadline). The lease never starts before the
-- token's last lease ended: no two usages of a token overlap.

-- When p_token last freed before p_now: the end of its last lease (released, or run out) or
-- of its cooldown, whichever is later; NULL if it was never leased nor cooled.
CREATE FUNCTION tp_freed_at(t tokens, p_now timestamptz) RETURNS timestamptz
LANGUAGE sql STABLE AS $$
  SELECT least(p_now, greatest(
           (SELECT coalesce(u.released_at, u.expires_at) FROM usages u WHERE u.token_id = t.id ORDER BY u.id DESC LIMIT 1),
           CASE WHEN t.cooling_until <= p_now THEN t.cooling_until END))
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
      SELECT g.token_id, g.user_id,
             -- A token that freed within the last second (a deadline the waiter was told, or a
             -- release): the lease starts then. Anything older (an enable, a new token) is now.
             greatest(CASE WHEN w.waited AND f.freed > v_start - interval '1 second' THEN f.freed ELSE v_start END,
                      t.lease_started_at) AS s,
             CASE WHEN t.lease_expires_at > greatest(v_start, t.lease_started_at) THEN t.lease_user_id END AS evicted,
             tp_count(t, p_window) + 1 AS count
        FROM unnest(p_tokens, p_users[1:cardinality(p_tokens)]) WITH ORDINALITY AS g(token_id, user_id, i)
        JOIN tokens t ON t.id = g.token_id
        CROSS JOIN LATERAL (SELECT EXISTS (SELECT 1 FROM waiters w WHERE w.pool = p_pool.name AND w.user_id = g.user_id)) w(waited)
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
