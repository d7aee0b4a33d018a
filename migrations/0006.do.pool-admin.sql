-- A pool's size, its old counts, and the admin's changes to it.

-- Bookkeeping after a window's end: stores count 0 (NULL window) on tokens whose count
-- is of an older window, p_limit at a time, so that the pick finds every count-0 token
-- in one index range ordered at random. Picks are right before it runs, too.
CREATE FUNCTION tp_forget_old_counts(p_pool text, p_limit integer) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
  v_window timestamptz := tp_window(p_pool);
  v_done integer;
BEGIN
  WITH old AS (
    SELECT t.id FROM tokens t
     WHERE t.pool = p_pool AND NOT t.retired AND t.counted_window < v_window
     LIMIT p_limit FOR NO KEY UPDATE SKIP LOCKED
  ), forgotten AS (
    UPDATE tokens t SET counted_window = NULL, usage_count = 0 FROM old WHERE t.id = old.id RETURNING 1
  )
  SELECT count(*)::int INTO v_done FROM forgotten;
  RETURN v_done;
END $$;

-- Moves p_pool towards exactly p_size live tokens, by at most p_step a call (so that a
-- million tokens are made in calls that each fit a statement timeout): grows by reviving
-- its retired ids first (oldest first), shrinks by retiring the newest (rule 1).
-- Returns the live count; the caller repeats until it equals p_size.
CREATE FUNCTION tp_provision(p_pool text, p_size integer, p_step integer) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
  v_live integer;
  v_add integer;
BEGIN
  PERFORM 1 FROM pools WHERE name = p_pool FOR UPDATE;
  SELECT count(*) INTO v_live FROM tokens WHERE pool = p_pool AND NOT retired;
  IF v_live < p_size THEN
    v_add := least(p_size - v_live, p_step);
    WITH revived AS (
      UPDATE tokens SET retired = false
       WHERE id IN (SELECT id FROM tokens WHERE pool = p_pool AND retired ORDER BY position LIMIT v_add)
      RETURNING 1
    )
    SELECT v_add - count(*) INTO v_add FROM revived;
    INSERT INTO tokens (pool, shuffle) SELECT p_pool, random() FROM generate_series(1, v_add);
  ELSIF v_live > p_size THEN
    UPDATE tokens SET retired = true
     WHERE id IN (SELECT id FROM tokens WHERE pool = p_pool AND NOT retired
                   ORDER BY position DESC LIMIT least(v_live - p_size, p_step));
  END IF;
  SELECT count(*) INTO v_live FROM tokens WHERE pool = p_pool AND NOT retired;
  RETURN v_live;
END $$;

-- Records a pool change in the event stream, as GET /api/pools/:pool shows the pool.
CREATE FUNCTION tp_pool_changed(p_pool text) RETURNS void
LANGUAGE sql AS $$
  INSERT INTO pool_events (type, pool, body) SELECT 'pool_changed', p_pool, tp_pool_json(p_pool)
$$;

-- Creates p_pool, or brings a deleted one back with new settings (its token ids come
-- back as it grows). outcome: 'created' | 'exists'.
CREATE FUNCTION tp_pool_create(p_pool text, p_settings jsonb) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO pools AS p (name, size, lease_ttl_seconds, lease_max_seconds, usage_window_hours, on_exhausted,
                          max_wait_seconds, cooldown_max_seconds, user_quota, window_started_at)
  SELECT p_pool, s.size, s.lease_ttl_seconds, s.lease_max_seconds, s.usage_window_hours, s.on_exhausted,
         s.max_wait_seconds, s.cooldown_max_seconds, s.user_quota, date_trunc('milliseconds', clock_timestamp())
    FROM jsonb_populate_record(NULL::pools, p_settings) s
  ON CONFLICT (name) DO UPDATE SET
    size = excluded.size, lease_ttl_seconds = excluded.lease_ttl_seconds, lease_max_seconds = excluded.lease_max_seconds,
    usage_window_hours = excluded.usage_window_hours, on_exhausted = excluded.on_exhausted,
    max_wait_seconds = excluded.max_wait_seconds, cooldown_max_seconds = excluded.cooldown_max_seconds,
    user_quota = excluded.user_quota, window_started_at = excluded.window_started_at, deleted = false
  WHERE p.deleted;
  IF NOT FOUND THEN
    RETURN 'exists';
  END IF;
  PERFORM tp_provision(p_pool, (p_settings->>'size')::int, 50000);
  PERFORM tp_pool_changed(p_pool);
  RETURN 'created';
END $$;

-- Changes the settings named in p_changes (the rest stay). outcome: 'changed' | 'not_found'.
-- The default pool is written here too, from the environment at every start.
CREATE FUNCTION tp_pool_update(p_pool text, p_changes jsonb, p_emit boolean) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
  v_old pools%ROWTYPE;
  v_new pools%ROWTYPE;
BEGIN
  SELECT * INTO v_old FROM pools WHERE name = p_pool AND NOT deleted FOR UPDATE;
  IF NOT FOUND THEN
    RETURN 'not_found';
  END IF;
  v_new := jsonb_populate_record(v_old, p_changes - 'name' - 'window_started_at' - 'deleted');
  UPDATE pools SET size = v_new.size, lease_ttl_seconds = v_new.lease_ttl_seconds, lease_max_seconds = v_new.lease_max_seconds,
                   usage_window_hours = v_new.usage_window_hours, on_exhausted = v_new.on_exhausted,
                   max_wait_seconds = v_new.max_wait_seconds, cooldown_max_seconds = v_new.cooldown_max_seconds,
                   user_quota = v_new.user_quota
   WHERE name = p_pool;
  PERFORM tp_provision(p_pool, v_new.size, 50000);
  IF p_emit AND v_new IS DISTINCT FROM v_old THEN
    PERFORM tp_pool_changed(p_pool);
  END IF;
  RETURN 'changed';
END $$;

-- Deletes p_pool: hides it and retires its tokens (histories stay readable).
-- outcome: 'deleted' | 'not_found' | 'busy' (a lease is active and not p_force).
-- With p_force its active leases end now, reason 'cleared'.
CREATE FUNCTION tp_pool_delete(p_pool text, p_force boolean) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM 1 FROM pools WHERE name = p_pool AND NOT deleted FOR UPDATE;
  IF NOT FOUND THEN
    RETURN 'not_found';
  END IF;
  IF EXISTS (SELECT 1 FROM tokens t WHERE t.pool = p_pool AND t.lease_expires_at > clock_timestamp()) THEN
    IF NOT p_force THEN
      RETURN 'busy';
    END IF;
    PERFORM tp_clear(p_pool);
  END IF;
  UPDATE pools SET deleted = true WHERE name = p_pool;
  -- Its tokens are retired in steps by the caller (tp_pool_retire): a million don't fit one statement.
  INSERT INTO pool_events (type, pool, body)
  SELECT 'pool_changed', p_pool, tp_pool_json(p_pool) || '{"deleted": true}';
  RETURN 'deleted';
END $$;

-- Retires up to p_step live tokens of a deleted pool; returns how many are left live.
CREATE FUNCTION tp_pool_retire(p_pool text, p_step integer) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
  v_left integer;
BEGIN
  UPDATE tokens SET retired = true
   WHERE id IN (SELECT t.id FROM tokens t JOIN pools p ON p.name = t.pool
                 WHERE t.pool = p_pool AND p.deleted AND NOT t.retired LIMIT p_step);
  SELECT count(*) INTO v_left FROM tokens t JOIN pools p ON p.name = t.pool WHERE t.pool = p_pool AND p.deleted AND NOT t.retired;
  RETURN v_left;
END $$;
