-- Renewals in a batch, set-based, as 0017 made releases: one lock statement, one UPDATE of
-- usages (one trigger call) and one of tokens per batch instead of tp_renew per pair. The
-- rules are tp_renew's: the token is visible and p_user holds it now, else 'not_found' /
-- 'not_holder'; a lease at its cap is 'limit'; otherwise it ends one TTL from now, never
-- past renewable_until and never sooner than it did (a TTL lowered since the grant).
CREATE OR REPLACE FUNCTION tp_renew_many(p_tokens uuid[], p_users uuid[])
RETURNS TABLE (token_id uuid, user_id uuid, outcome text, pool text, lease_id bigint,
               started_at timestamptz, expires_at timestamptz, renewable_until timestamptz)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  v_now timestamptz := tp_lock_tokens(p_tokens);
BEGIN
  RETURN QUERY
  WITH judged AS (
    SELECT a.token_id AS t, a.user_id AS u, a.pool, u.id AS lease_id, u.started_at, u.expires_at AS ends,
           coalesce(u.renewable_until, u.expires_at) AS cap, make_interval(secs => p.lease_ttl_seconds) AS ttl,
           CASE WHEN NOT a.found THEN 'not_found'
                -- The sweep may have written its end just before the lock was ours.
                WHEN u.id IS NULL OR u.released_at IS NOT NULL THEN 'not_holder'
                WHEN u.expires_at >= coalesce(u.renewable_until, u.expires_at) THEN 'limit'
                ELSE 'renewed' END AS outcome
      FROM tp_asked_tokens(p_tokens, p_users, v_now) a
      LEFT JOIN pools p ON p.name = a.pool
      LEFT JOIN usages u ON u.id = a.lease_id AND a.holds
  ), renewed AS (
    UPDATE usages u SET expires_at = greatest(j.ends, least(v_now + j.ttl, j.cap))
      FROM judged j
     WHERE j.outcome = 'renewed' AND u.id = j.lease_id AND u.released_at IS NULL
    RETURNING u.id, u.token_id, u.expires_at
  ), mirrored AS (
    UPDATE tokens k SET lease_expires_at = r.expires_at FROM renewed r WHERE k.id = r.token_id
  )
  -- A lease the sweep (or an allocation) ended between this statement's snapshot and its
  -- UPDATE can't be renewed: not_holder, as if the renewal had come a moment later.
  SELECT o.t, o.u, o.said, o.pool,
         CASE WHEN o.said IN ('renewed', 'limit') THEN o.lease_id END,
         CASE WHEN o.said IN ('renewed', 'limit') THEN o.started_at END,
         CASE WHEN o.said = 'renewed' THEN o.renewed_to WHEN o.said = 'limit' THEN o.ends END,
         CASE WHEN o.said IN ('renewed', 'limit') THEN o.cap END
    FROM (SELECT j.*, r.expires_at AS renewed_to,
                 CASE WHEN j.outcome = 'renewed' AND r.id IS NULL THEN 'not_holder' ELSE j.outcome END AS said
            FROM judged j LEFT JOIN renewed r ON r.id = j.lease_id AND j.outcome = 'renewed') o
   ORDER BY o.t, o.u;
END $$;
