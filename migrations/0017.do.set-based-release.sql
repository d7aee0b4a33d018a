-- Releases in a batch, set-based (issue: every write path as fast as allocation). 0012's
-- tp_release_many called tp_release once per pair: per pair a lock, two UPDATEs and the
-- usages trigger's own statement, 24 ms for a batch of 64 against 9 ms to allocate the same
-- 64 leases (measured without HTTP, BENCHMARKS.md). Now one lock statement, one UPDATE of
-- usages (one trigger call) and one of tokens for the whole batch, with the rules of
-- tp_release unchanged: the token is visible (tp_lock_token's test) and p_user holds it now
-- (tp_holds), else 'not_found' / 'not_holder'; the lease ends now (tp_end_lease).

-- Locks a batch's tokens in id order, as every batch locks (two batches can't wait for each
-- other), and returns the clock once they are ours: no lease starts or ends on them before it.
CREATE FUNCTION tp_lock_tokens(p_tokens uuid[]) RETURNS timestamptz
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM 1 FROM tokens t WHERE t.id = ANY (p_tokens) ORDER BY t.id FOR NO KEY UPDATE;
  RETURN date_trunc('milliseconds', clock_timestamp());
END $$;

-- Each (token, user) pair of a batch once, with its token as a holder's request sees it at
-- p_now: found (tp_lock_token's test, the lock taken already), its pool and lease, and
-- whether p_user holds it (tp_holds).
CREATE FUNCTION tp_asked_tokens(p_tokens uuid[], p_users uuid[], p_now timestamptz)
RETURNS TABLE (token_id uuid, user_id uuid, found boolean, pool text, lease_id bigint, holds boolean)
LANGUAGE sql STABLE AS $$
  SELECT a.t, a.u, k.id IS NOT NULL, k.pool, k.lease_id, coalesce(tp_holds(k, a.u, p_now), false)
    FROM (SELECT DISTINCT x.t, x.u FROM unnest(p_tokens, p_users) x(t, u)) a
    LEFT JOIN LATERAL (SELECT t.* FROM tokens t JOIN pools q ON q.name = t.pool
                        WHERE t.id = a.t AND NOT q.deleted AND (NOT t.retired OR t.lease_expires_at > p_now)) k ON true
$$;

CREATE OR REPLACE FUNCTION tp_release_many(p_tokens uuid[], p_users uuid[])
RETURNS TABLE (token_id uuid, user_id uuid, outcome text, pool text, lease_id bigint,
               started_at timestamptz, released_at timestamptz)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  v_now timestamptz := tp_lock_tokens(p_tokens);
BEGIN
  RETURN QUERY
  WITH judged AS (
    SELECT a.token_id AS t, a.user_id AS u, a.pool, a.lease_id,
           CASE WHEN NOT a.found THEN 'not_found' WHEN a.holds THEN 'released' ELSE 'not_holder' END AS outcome
      FROM tp_asked_tokens(p_tokens, p_users, v_now) a
  ), ended AS (
    UPDATE usages u SET released_at = greatest(v_now, u.started_at), release_reason = 'released'
      FROM judged j
     WHERE j.outcome = 'released' AND u.id = j.lease_id AND u.released_at IS NULL AND u.expires_at > v_now
    RETURNING u.id, u.token_id, u.started_at, u.released_at
  ), emptied AS (
    UPDATE tokens k SET lease_id = NULL, lease_user_id = NULL, lease_started_at = NULL, lease_expires_at = NULL
      FROM ended e WHERE k.id = e.token_id
  )
  -- A lease the sweep (or an allocation) ended between this statement's snapshot and its
  -- UPDATE is no longer the user's to give back: not_holder, as if it had come a moment later.
  SELECT j.t, j.u, CASE WHEN j.outcome = 'released' AND e.id IS NULL THEN 'not_holder' ELSE j.outcome END,
         j.pool, e.id, e.started_at, e.released_at
    FROM judged j LEFT JOIN ended e ON e.token_id = j.t AND j.outcome = 'released'
   ORDER BY j.t, j.u;
END $$;
