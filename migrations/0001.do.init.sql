-- Token Pool schema. The invariants of ../shared/API.md live here as constraints,
-- so that no code path (or second node) can break them; the functions below make
-- each use case one round trip.

CREATE EXTENSION IF NOT EXISTS btree_gist WITH SCHEMA public;

-- One row: the start of the current usage window (rule 5), kept across restarts.
CREATE TABLE pool_state (
  singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  window_started_at timestamptz NOT NULL
);
INSERT INTO pool_state (window_started_at) VALUES (date_trunc('milliseconds', now()));

-- The pool. The current lease is mirrored here (lease_*) so that the pick is one
-- index scan; usages stays the record of truth and carries the constraints.
CREATE TABLE tokens (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  position bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
  retired boolean NOT NULL DEFAULT false,
  usage_count integer NOT NULL DEFAULT 0 CHECK (usage_count >= 0),
  counted_window timestamptz,
  -- Redrawn on every allocation: the smallest of i.i.d. draws is a uniform pick among ties.
  shuffle double precision NOT NULL DEFAULT random(),
  lease_id bigint,
  lease_user_id uuid,
  lease_started_at timestamptz,
  lease_expires_at timestamptz,
  CHECK (num_nulls(lease_id, lease_user_id, lease_started_at, lease_expires_at) IN (0, 4))
);
CREATE INDEX tokens_pick ON tokens (usage_count, shuffle) WHERE NOT retired;
CREATE INDEX tokens_oldest_lease ON tokens (lease_started_at) WHERE lease_id IS NOT NULL AND NOT retired;
CREATE INDEX tokens_lease_expiry ON tokens (lease_expires_at) WHERE lease_id IS NOT NULL;

-- Every lease ever granted. id is the lease_id: a fencing token that only grows.
CREATE TABLE usages (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  token_id uuid NOT NULL REFERENCES tokens (id),
  user_id uuid NOT NULL,
  started_at timestamptz NOT NULL,
  expires_at timestamptz NOT NULL,
  released_at timestamptz,
  release_reason text CHECK (release_reason IN ('expired', 'evicted', 'released', 'cleared')),
  CHECK (expires_at > started_at),
  CHECK ((released_at IS NULL) = (release_reason IS NULL)),
  CHECK (released_at IS NULL OR (released_at >= started_at AND released_at <= expires_at)),
  CHECK (release_reason IS DISTINCT FROM 'expired' OR released_at = expires_at),
  -- Never two holders: the lifetimes of one token's usages can't overlap.
  CONSTRAINT usages_no_overlap EXCLUDE USING gist (
    token_id WITH =,
    tstzrange(started_at, coalesce(released_at, expires_at), '[)') WITH &&
  )
);
CREATE UNIQUE INDEX usages_one_open_per_token ON usages (token_id) WHERE released_at IS NULL;
CREATE UNIQUE INDEX usages_one_open_per_user ON usages (user_id) WHERE released_at IS NULL;
CREATE INDEX usages_history ON usages (token_id, id DESC);
CREATE INDEX usages_open_by_expiry ON usages (expires_at) WHERE released_at IS NULL;

-- The window that holds now; rolls it forward (zeroing counts) when it has ended.
-- Idempotent and safe on every node at once: the pool_state row lock serialises the roll.
CREATE FUNCTION tp_current_window(p_window interval) RETURNS timestamptz
LANGUAGE plpgsql AS $$
DECLARE
  v_start timestamptz;
  v_now timestamptz := clock_timestamp();
BEGIN
  SELECT window_started_at INTO v_start FROM pool_state;
  IF v_now < v_start + p_window THEN
    RETURN v_start;
  END IF;
  SELECT window_started_at INTO v_start FROM pool_state FOR UPDATE;
  IF v_now >= v_start + p_window THEN
    v_start := v_start + p_window * floor(extract(epoch FROM v_now - v_start) / extract(epoch FROM p_window));
    UPDATE pool_state SET window_started_at = v_start;
    UPDATE tokens SET usage_count = 0
     WHERE usage_count > 0 AND counted_window IS DISTINCT FROM v_start;
  END IF;
  RETURN v_start;
END $$;

-- Moves the pool towards exactly p_size live tokens, by at most p_step tokens a call
-- (so that a million tokens are made in calls that each fit a statement timeout): grows
-- by reviving retired ids first (oldest first), shrinks by retiring the newest.
-- Returns the live count; the caller repeats until it equals p_size.
CREATE FUNCTION tp_provision(p_size integer, p_step integer) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
  v_live integer;
  v_add integer;
BEGIN
  PERFORM 1 FROM pool_state FOR UPDATE;
  SELECT count(*) INTO v_live FROM tokens WHERE NOT retired;
  IF v_live < p_size THEN
    v_add := least(p_size - v_live, p_step);
    WITH revived AS (
      UPDATE tokens SET retired = false
       WHERE id IN (SELECT id FROM tokens WHERE retired ORDER BY position LIMIT v_add)
      RETURNING 1
    )
    SELECT v_add - count(*) INTO v_add FROM revived;
    INSERT INTO tokens (shuffle) SELECT random() FROM generate_series(1, v_add);
  ELSIF v_live > p_size THEN
    UPDATE tokens SET retired = true
     WHERE id IN (SELECT id FROM tokens WHERE NOT retired ORDER BY position DESC LIMIT least(v_live - p_size, p_step));
  END IF;
  SELECT count(*) INTO v_live FROM tokens WHERE NOT retired;
  RETURN v_live;
END $$;

-- Grants p_user a lease (rules 2-10), or returns the one it holds.
-- outcome: 'new' | 'existing' | 'exhausted' (reject policy, with retry_after_ms).
-- Called by tp_allocate, which has already settled the window.
CREATE FUNCTION tp_grant(
  p_user uuid, p_ttl interval, v_window timestamptz, p_evict boolean,
  OUT outcome text, OUT lease_id bigint, OUT token_id uuid, OUT started_at timestamptz,
  OUT expires_at timestamptz, OUT evicted_user_id uuid, OUT retry_after_ms bigint
)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  v_now timestamptz;
  v_start timestamptz;
  v_open usages%ROWTYPE;
  v_tok tokens%ROWTYPE;
BEGIN
  -- One allocation per user at a time makes "allocate again" return the same lease.
  PERFORM pg_advisory_xact_lock(hashtextextended(p_user::text, 7411));
  v_now := date_trunc('milliseconds', clock_timestamp());

  SELECT * INTO v_open FROM usages u WHERE u.user_id = p_user AND u.released_at IS NULL;
  IF FOUND THEN
    IF v_open.expires_at > v_now THEN
      outcome := 'existing';
      lease_id := v_open.id; token_id := v_open.token_id;
      started_at := v_open.started_at; expires_at := v_open.expires_at;
      RETURN;
    END IF;
    UPDATE usages u SET released_at = u.expires_at, release_reason = 'expired'
     WHERE u.id = v_open.id AND u.released_at IS NULL;
  END IF;

  SELECT * INTO v_tok FROM tokens t
   WHERE NOT t.retired AND (t.lease_expires_at IS NULL OR t.lease_expires_at <= v_now)
   ORDER BY t.usage_count, t.shuffle
   LIMIT 1 FOR NO KEY UPDATE SKIP LOCKED;

  IF NOT FOUND THEN
    IF NOT p_evict THEN
      outcome := 'exhausted';
      SELECT greatest(1, ceil(extract(epoch FROM min(t.lease_expires_at) - v_now) * 1000))::bigint
        INTO retry_after_ms
        FROM tokens t WHERE NOT t.retired AND t.lease_expires_at > v_now;
      RETURN;
    END IF;
    SELECT * INTO v_tok FROM tokens t
     WHERE NOT t.retired AND t.lease_id IS NOT NULL
     ORDER BY t.lease_started_at
     LIMIT 1 FOR NO KEY UPDATE SKIP LOCKED;
    IF NOT FOUND THEN
      -- Every token is locked by a concurrent allocation: queue behind the oldest lease
      -- (or a token that was free when that allocation locked it: its committed row has no lease).
      SELECT * INTO v_tok FROM tokens t
       WHERE NOT t.retired
       ORDER BY t.lease_started_at NULLS FIRST
       LIMIT 1 FOR NO KEY UPDATE;
      IF NOT FOUND THEN
        RAISE EXCEPTION 'token pool is empty' USING ERRCODE = 'P0001';
      END IF;
    END IF;
  END IF;

  -- Rule 10: the lease starts once the token is ours, never before its last use ended.
  v_start := greatest(date_trunc('milliseconds', clock_timestamp()), v_tok.lease_started_at);
  IF v_tok.lease_id IS NOT NULL THEN
    IF v_tok.lease_expires_at <= v_start THEN
      UPDATE usages u SET released_at = u.expires_at, release_reason = 'expired'
       WHERE u.id = v_tok.lease_id AND u.released_at IS NULL;
    ELSE
      UPDATE usages u SET released_at = v_start, release_reason = 'evicted'
       WHERE u.id = v_tok.lease_id AND u.released_at IS NULL;
      evicted_user_id := v_tok.lease_user_id;
    END IF;
  END IF;

  INSERT INTO usages (token_id, user_id, started_at, expires_at)
  VALUES (v_tok.id, p_user, v_start, v_start + p_ttl)
  RETURNING id INTO lease_id;

  UPDATE tokens t SET
    lease_id = tp_grant.lease_id, lease_user_id = p_user,
    lease_started_at = v_start, lease_expires_at = v_start + p_ttl,
    usage_count = CASE WHEN t.counted_window = v_window THEN t.usage_count + 1 ELSE 1 END,
    counted_window = v_window,
    shuffle = random()
   WHERE t.id = v_tok.id;
  outcome := 'new';
  token_id := v_tok.id;
  started_at := v_start;
  expires_at := v_start + p_ttl;
END $$;

-- Allocates for a batch of users in one transaction: one commit and one round trip
-- for many requests, and a handful of set-based statements however large the batch
-- (one INSERT fires the usages triggers once). Taking the m least-used free tokens at
-- once is what m picks in a row would take, since a granted token is no longer free;
-- likewise the k oldest leases for k evictions. The window is settled first, because
-- a roll waits on token locks and so must never be waited on by someone holding one;
-- users are locked in advisory-lock order so that two batches can't deadlock on them.
CREATE FUNCTION tp_allocate(p_users uuid[], p_ttl interval, p_window interval, p_evict boolean)
RETURNS TABLE (
  user_id uuid, outcome text, lease_id bigint, token_id uuid, started_at timestamptz,
  expires_at timestamptz, evicted_user_id uuid, retry_after_ms bigint
)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  v_window timestamptz := tp_current_window(p_window);
  v_users uuid[];
  v_new uuid[];
  v_stale bigint[];
  v_tokens uuid[];
  v_prior bigint[];
  v_min integer;
  v_from double precision;
  v_now timestamptz;
  v_start timestamptz;
  v_granted integer;
  v_user uuid;
BEGIN
  SELECT array_agg(d.x ORDER BY hashtextextended(d.x::text, 7411)) INTO v_users
    FROM (SELECT DISTINCT x FROM unnest(p_users) x) d;
  -- Rule 6: one allocation per user at a time, so "allocate again" returns the same lease.
  PERFORM pg_advisory_xact_lock(hashtextextended(x::text, 7411)) FROM unnest(v_users) x;
  v_now := date_trunc('milliseconds', clock_timestamp());

  -- Each user's open usage, one index probe per user (LIMIT 1 keeps the planner from
  -- turning it into a join over every open usage, as it did with stale statistics).
  RETURN QUERY
  SELECT o.user_id, 'existing', o.id, o.token_id, o.started_at, o.expires_at, NULL::uuid, NULL::bigint
    FROM unnest(v_users) x
    CROSS JOIN LATERAL (SELECT * FROM usages u WHERE u.user_id = x AND u.released_at IS NULL LIMIT 1) o
   WHERE o.expires_at > v_now;
  SELECT coalesce(array_agg(x) FILTER (WHERE o.id IS NULL OR o.expires_at <= v_now), '{}'),
         coalesce(array_agg(o.id) FILTER (WHERE o.expires_at <= v_now), '{}')
    INTO v_new, v_stale
    FROM unnest(v_users) x
    LEFT JOIN LATERAL (SELECT u.id, u.expires_at FROM usages u WHERE u.user_id = x AND u.released_at IS NULL LIMIT 1) o ON true;
  IF cardinality(v_new) = 0 THEN
    RETURN;
  END IF;
  IF cardinality(v_stale) > 0 THEN
    -- Their leases that ran out and the sweep has not written yet.
    UPDATE usages u SET released_at = u.expires_at, release_reason = 'expired'
     WHERE u.id = ANY (v_stale) AND u.released_at IS NULL;
  END IF;

  -- Rule 4, least-used first with random ties: the free tokens of the lowest count, read
  -- from a random point of their shuffle order and around. Reading always from the
  -- lowest shuffle instead walked over the dead index entries of every token granted
  -- before (they sit exactly there), so each pick got slower with every grant.
  SELECT t.usage_count INTO v_min FROM tokens t
   WHERE NOT t.retired AND (t.lease_expires_at IS NULL OR t.lease_expires_at <= v_now)
   ORDER BY t.usage_count, t.shuffle LIMIT 1;
  v_tokens := '{}';
  v_prior := '{}';
  IF v_min IS NOT NULL THEN
    v_from := random();
    SELECT coalesce(array_agg(f.id), '{}'), coalesce(array_agg(f.lease_id), '{}') INTO v_tokens, v_prior FROM (
      SELECT t.id, t.lease_id FROM tokens t
       WHERE NOT t.retired AND (t.lease_expires_at IS NULL OR t.lease_expires_at <= v_now)
         AND t.usage_count = v_min AND t.shuffle >= v_from
       ORDER BY t.usage_count, t.shuffle
       LIMIT cardinality(v_new) FOR NO KEY UPDATE SKIP LOCKED) f;
    IF cardinality(v_tokens) < cardinality(v_new) THEN
      -- Around from the start of that count, then on to the next counts.
      SELECT v_tokens || coalesce(array_agg(f.id), '{}'), v_prior || coalesce(array_agg(f.lease_id), '{}')
        INTO v_tokens, v_prior FROM (
        SELECT t.id, t.lease_id FROM tokens t
         WHERE NOT t.retired AND (t.lease_expires_at IS NULL OR t.lease_expires_at <= v_now)
           AND t.id <> ALL (v_tokens)
         ORDER BY t.usage_count, t.shuffle
         LIMIT cardinality(v_new) - cardinality(v_tokens) FOR NO KEY UPDATE SKIP LOCKED) f;
    END IF;
  END IF;
  IF cardinality(v_tokens) < cardinality(v_new) AND p_evict THEN
    SELECT v_tokens || coalesce(array_agg(e.id), '{}'), v_prior || coalesce(array_agg(e.lease_id), '{}')
      INTO v_tokens, v_prior FROM (
      SELECT t.id, t.lease_id FROM tokens t
       WHERE NOT t.retired AND t.lease_id IS NOT NULL AND t.id <> ALL (v_tokens)
       ORDER BY t.lease_started_at
       LIMIT cardinality(v_new) - cardinality(v_tokens) FOR NO KEY UPDATE SKIP LOCKED) e;
  END IF;
  v_granted := cardinality(v_tokens);

  IF v_granted > 0 THEN
    -- Rule 10: leases start once their tokens are ours, never before a token's last use began.
    v_start := date_trunc('milliseconds', clock_timestamp());
    -- The previous lease of each token ends first: expired at its own end, or evicted now.
    -- (A token's lease_started_at mirrors its last usage's started_at.)
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
             CASE WHEN t.counted_window = v_window THEN t.usage_count + 1 ELSE 1 END AS count
        FROM unnest(v_tokens, v_new[1:v_granted]) AS g(token_id, user_id)
        JOIN tokens t ON t.id = g.token_id
    ), granted AS (
      INSERT INTO usages (id, token_id, user_id, started_at, expires_at) OVERRIDING SYSTEM VALUE
      SELECT p.id, p.token_id, p.user_id, p.s, p.s + p_ttl FROM p
    ), mirrored AS (
      UPDATE tokens t SET
        lease_id = p.id, lease_user_id = p.user_id, lease_started_at = p.s, lease_expires_at = p.s + p_ttl,
        usage_count = p.count, counted_window = v_window, shuffle = random()
        FROM p WHERE t.id = p.token_id
    )
    SELECT p.user_id, 'new', p.id, p.token_id, p.s, p.s + p_ttl, p.evicted, NULL::bigint FROM p;
  END IF;

  IF v_granted < cardinality(v_new) THEN
    IF p_evict THEN
      -- Every token is locked by concurrent batches (or the batch outgrew the pool): queue one by one.
      FOREACH v_user IN ARRAY v_new[v_granted + 1:] LOOP
        RETURN QUERY SELECT v_user, g.* FROM tp_grant(v_user, p_ttl, v_window, p_evict) g;
      END LOOP;
    ELSE
      RETURN QUERY
      SELECT x, 'exhausted', NULL::bigint, NULL::uuid, NULL::timestamptz, NULL::timestamptz, NULL::uuid,
             (SELECT greatest(1, ceil(extract(epoch FROM min(t.lease_expires_at) - v_now) * 1000))::bigint
                FROM tokens t WHERE NOT t.retired AND t.lease_expires_at > v_now)
        FROM unnest(v_new[v_granted + 1:]) x;
    END IF;
  END IF;
END $$;

-- The holder gives its token back early. outcome: 'released' | 'not_holder' | 'not_found'.
CREATE FUNCTION tp_release(
  p_token uuid, p_user uuid,
  OUT outcome text, OUT lease_id bigint, OUT started_at timestamptz, OUT released_at timestamptz
)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  v_tok tokens%ROWTYPE;
  v_now timestamptz;
BEGIN
  SELECT * INTO v_tok FROM tokens t WHERE t.id = p_token FOR NO KEY UPDATE;
  v_now := date_trunc('milliseconds', clock_timestamp());
  IF NOT FOUND OR (v_tok.retired AND (v_tok.lease_expires_at IS NULL OR v_tok.lease_expires_at <= v_now)) THEN
    outcome := 'not_found';
    RETURN;
  END IF;
  IF v_tok.lease_user_id IS DISTINCT FROM p_user OR v_tok.lease_expires_at <= v_now THEN
    outcome := 'not_holder';
    RETURN;
  END IF;
  released_at := greatest(v_now, v_tok.lease_started_at);
  UPDATE usages u SET released_at = tp_release.released_at, release_reason = 'released'
   WHERE u.id = v_tok.lease_id;
  UPDATE tokens t SET lease_id = NULL, lease_user_id = NULL, lease_started_at = NULL, lease_expires_at = NULL
   WHERE t.id = p_token;
  outcome := 'released';
  lease_id := v_tok.lease_id;
  started_at := v_tok.lease_started_at;
END $$;

-- Closes every active lease now (reason 'cleared'); returns the leases closed.
CREATE FUNCTION tp_clear() RETURNS TABLE (lease_id bigint, token_id uuid, user_id uuid, started_at timestamptz, released_at timestamptz)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  v_now timestamptz;
BEGIN
  -- Lock in a fixed order so that concurrent clears queue instead of deadlocking.
  PERFORM 1 FROM tokens t WHERE t.lease_expires_at > clock_timestamp() ORDER BY t.id FOR NO KEY UPDATE;
  v_now := date_trunc('milliseconds', clock_timestamp());
  RETURN QUERY
  WITH closed AS (
    UPDATE usages u SET released_at = greatest(v_now, u.started_at), release_reason = 'cleared'
      FROM tokens t
     WHERE t.lease_expires_at > v_now AND u.id = t.lease_id AND u.released_at IS NULL
    RETURNING u.id, u.token_id, u.user_id, u.started_at, u.released_at
  ), emptied AS (
    UPDATE tokens t SET lease_id = NULL, lease_user_id = NULL, lease_started_at = NULL, lease_expires_at = NULL
      FROM closed c WHERE t.id = c.token_id
  )
  SELECT * FROM closed;
END $$;

-- Bookkeeping only (availability never waits for it): writes released_at = expires_at
-- on leases that ran out. SKIP LOCKED lets every node run it at once.
CREATE FUNCTION tp_sweep(p_limit integer)
RETURNS TABLE (lease_id bigint, token_id uuid, user_id uuid, started_at timestamptz, released_at timestamptz)
LANGUAGE sql AS $$
  WITH due AS (
    SELECT u.id FROM usages u
     WHERE u.released_at IS NULL AND u.expires_at <= clock_timestamp()
     ORDER BY u.expires_at
     LIMIT p_limit FOR UPDATE SKIP LOCKED
  )
  UPDATE usages u SET released_at = u.expires_at, release_reason = 'expired'
    FROM due WHERE u.id = due.id AND u.released_at IS NULL
  RETURNING u.id, u.token_id, u.user_id, u.started_at, u.released_at
$$;

-- The start of the window that holds now(), for reads: computed, never written.
CREATE FUNCTION tp_window_start(p_window interval) RETURNS timestamptz
LANGUAGE sql STABLE AS $$
  SELECT window_started_at + p_window * greatest(0, floor(extract(epoch FROM now() - window_started_at) / extract(epoch FROM p_window)))
    FROM pool_state
$$;

-- Every token as users see it: live tokens, plus retired ones until their last lease ends.
CREATE FUNCTION tp_tokens(p_window interval)
RETURNS TABLE (
  id uuid, "position" bigint, active boolean, user_id uuid, started_at timestamptz,
  expires_at timestamptz, usage_count integer, window_started_at timestamptz
)
LANGUAGE sql STABLE AS $$
  SELECT t.id, t.position, coalesce(t.lease_expires_at > now(), false),
         CASE WHEN t.lease_expires_at > now() THEN t.lease_user_id END,
         CASE WHEN t.lease_expires_at > now() THEN t.lease_started_at END,
         CASE WHEN t.lease_expires_at > now() THEN t.lease_expires_at END,
         CASE WHEN t.counted_window = w.ws THEN t.usage_count ELSE 0 END,
         w.ws
    FROM tokens t, (SELECT tp_window_start(p_window) AS ws) w
   WHERE NOT t.retired OR t.lease_expires_at > now()
$$;
