-- A lease's holder gives it back or renews it; an admin clears a pool; the sweep
-- writes the end of leases that ran out.

-- The token p_token locked, if it exists and is visible: live, or retired with a lease
-- still running (rule 1), in a pool not deleted.
CREATE FUNCTION tp_lock_token(p_token uuid, p_now timestamptz) RETURNS tokens
LANGUAGE sql AS $$
  SELECT t.* FROM tokens t JOIN pools p ON p.name = t.pool
   WHERE t.id = p_token AND NOT p.deleted AND (NOT t.retired OR t.lease_expires_at > p_now)
     FOR NO KEY UPDATE OF t
$$;

-- Whether p_user holds token t's lease at p_now: the check behind release, renewal and
-- a holder's cooldown (rule 11: only the holder acts on its token).
CREATE FUNCTION tp_holds(t tokens, p_user uuid, p_now timestamptz) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
  SELECT t.lease_user_id IS NOT DISTINCT FROM p_user AND coalesce(t.lease_expires_at > p_now, false)
$$;

-- Ends the active lease of token t now with p_reason, and empties the token's mirror.
-- Returns the ended usage, or nothing when no lease is active.
CREATE FUNCTION tp_end_lease(t tokens, p_now timestamptz, p_reason text)
RETURNS TABLE (lease_id bigint, pool text, token_id uuid, user_id uuid, started_at timestamptz, released_at timestamptz)
LANGUAGE sql AS $$
  WITH ended AS (
    UPDATE usages u SET released_at = greatest(p_now, u.started_at), release_reason = p_reason
     WHERE u.id = t.lease_id AND u.released_at IS NULL AND u.expires_at > p_now
    RETURNING u.id, u.pool, u.token_id, u.user_id, u.started_at, u.released_at
  ), emptied AS (
    UPDATE tokens k SET lease_id = NULL, lease_user_id = NULL, lease_started_at = NULL, lease_expires_at = NULL
     WHERE k.id = t.id AND EXISTS (SELECT 1 FROM ended)
  )
  SELECT * FROM ended
$$;

-- The holder gives its token back early. outcome: 'released' | 'not_holder' | 'not_found'.
CREATE FUNCTION tp_release(
  p_token uuid, p_user uuid,
  OUT outcome text, OUT pool text, OUT lease_id bigint, OUT started_at timestamptz, OUT released_at timestamptz
)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  v_tok tokens;
  v_now timestamptz;
  v_end record;
BEGIN
  v_tok := tp_lock_token(p_token, clock_timestamp());
  v_now := date_trunc('milliseconds', clock_timestamp());
  IF v_tok.id IS NULL THEN
    outcome := 'not_found';
    RETURN;
  END IF;
  pool := v_tok.pool;
  IF NOT tp_holds(v_tok, p_user, v_now) THEN
    outcome := 'not_holder';
    RETURN;
  END IF;
  SELECT * INTO v_end FROM tp_end_lease(v_tok, v_now, 'released');
  outcome := 'released';
  lease_id := v_end.lease_id;
  started_at := v_end.started_at;
  released_at := v_end.released_at;
END $$;

-- Rule 13: the holder moves its lease's end to min(now + TTL, renewable_until); token,
-- lease id and start stay. outcome: 'renewed' | 'not_holder' | 'not_found' | 'limit'.
CREATE FUNCTION tp_renew(
  p_token uuid, p_user uuid,
  OUT outcome text, OUT pool text, OUT lease_id bigint, OUT started_at timestamptz,
  OUT expires_at timestamptz, OUT renewable_until timestamptz
)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  v_tok tokens;
  v_now timestamptz;
  v_ttl interval;
BEGIN
  v_tok := tp_lock_token(p_token, clock_timestamp());
  v_now := date_trunc('milliseconds', clock_timestamp());
  IF v_tok.id IS NULL THEN
    outcome := 'not_found';
    RETURN;
  END IF;
  pool := v_tok.pool;
  IF NOT tp_holds(v_tok, p_user, v_now) THEN
    outcome := 'not_holder';
    RETURN;
  END IF;
  SELECT make_interval(secs => p.lease_ttl_seconds) INTO v_ttl FROM pools p WHERE p.name = v_tok.pool;
  SELECT u.id, u.started_at, u.expires_at, coalesce(u.renewable_until, u.expires_at)
    INTO lease_id, started_at, expires_at, renewable_until
    FROM usages u WHERE u.id = v_tok.lease_id;
  IF expires_at >= renewable_until THEN
    outcome := 'limit';
    RETURN;
  END IF;
  -- Never shortens: a TTL lowered since the grant leaves the current end as it is.
  expires_at := greatest(expires_at, least(v_now + v_ttl, renewable_until));
  UPDATE usages u SET expires_at = tp_renew.expires_at WHERE u.id = v_tok.lease_id AND u.released_at IS NULL;
  IF NOT FOUND THEN
    -- The sweep wrote its end in this very instant.
    outcome := 'not_holder';
    RETURN;
  END IF;
  UPDATE tokens t SET lease_expires_at = tp_renew.expires_at WHERE t.id = p_token;
  outcome := 'renewed';
END $$;

-- Closes every active lease of p_pool now (reason 'cleared'); returns the leases closed.
CREATE FUNCTION tp_clear(p_pool text)
RETURNS TABLE (lease_id bigint, pool text, token_id uuid, user_id uuid, started_at timestamptz, released_at timestamptz)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  v_now timestamptz;
BEGIN
  -- Lock in a fixed order so that concurrent clears queue instead of deadlocking.
  PERFORM 1 FROM tokens t WHERE t.pool = p_pool AND t.lease_expires_at > clock_timestamp() ORDER BY t.id FOR NO KEY UPDATE;
  v_now := date_trunc('milliseconds', clock_timestamp());
  RETURN QUERY
  SELECT e.* FROM tokens t CROSS JOIN LATERAL tp_end_lease(t, v_now, 'cleared') e
   WHERE t.pool = p_pool AND t.lease_expires_at > v_now;
END $$;

-- Bookkeeping only (availability never waits for it): writes released_at = expires_at
-- on leases that ran out. SKIP LOCKED lets every node run it at once.
CREATE FUNCTION tp_sweep(p_limit integer)
RETURNS TABLE (lease_id bigint, pool text, token_id uuid, user_id uuid, started_at timestamptz, released_at timestamptz)
LANGUAGE sql AS $$
  WITH due AS (
    SELECT u.id FROM usages u
     WHERE u.released_at IS NULL AND u.expires_at <= clock_timestamp()
     ORDER BY u.expires_at
     LIMIT p_limit FOR UPDATE SKIP LOCKED
  )
  UPDATE usages u SET released_at = u.expires_at, release_reason = 'expired'
    FROM due WHERE u.id = due.id AND u.released_at IS NULL
  RETURNING u.id, u.pool, u.token_id, u.user_id, u.started_at, u.released_at
$$;
