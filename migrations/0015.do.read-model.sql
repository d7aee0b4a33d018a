-- Every change to a token's row is in the event log, so that each node's read model
-- (its in-memory copy of the tokens) can follow the log alone. Lease and health changes
-- were already there; labels and provisioning now write a `refresh` event too: "read this
-- token again" (token_id set) or "read this pool again" (token_id NULL). The public
-- stream skips them; they carry no view.

ALTER TABLE pool_events DROP CONSTRAINT pool_events_type_check;
ALTER TABLE pool_events
  ADD CONSTRAINT pool_events_type_check CHECK (type IN (
    'allocated', 'renewed', 'released', 'cleared', 'cooling', 'disabled', 'enabled', 'pool_changed', 'refresh'));

CREATE FUNCTION tp_refresh(p_pool text, p_token uuid) RETURNS void
LANGUAGE sql AS $$
  INSERT INTO pool_events (type, pool, token_id, body) VALUES ('refresh', p_pool, p_token, '{}')
$$;

CREATE OR REPLACE FUNCTION tp_label(p_token uuid, p_label text, OUT outcome text, OUT pool text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
  UPDATE tokens t SET label = p_label
    FROM pools p
   WHERE t.id = p_token AND p.name = t.pool AND NOT p.deleted AND NOT t.retired
  RETURNING t.pool INTO pool;
  outcome := CASE WHEN FOUND THEN 'labelled' ELSE 'not_found' END;
  IF FOUND THEN
    PERFORM tp_refresh(pool, p_token);
  END IF;
END $$;

CREATE OR REPLACE FUNCTION tp_provision(p_pool text, p_size integer, p_step integer) RETURNS integer
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
    PERFORM tp_refresh(p_pool, NULL);
  ELSIF v_live > p_size THEN
    UPDATE tokens SET retired = true
     WHERE id IN (SELECT id FROM tokens WHERE pool = p_pool AND NOT retired
                   ORDER BY position DESC LIMIT least(v_live - p_size, p_step));
    PERFORM tp_refresh(p_pool, NULL);
  END IF;
  SELECT count(*) INTO v_live FROM tokens WHERE pool = p_pool AND NOT retired;
  RETURN v_live;
END $$;

-- The default pool's settings are written at every start without a pool_changed event;
-- a change still has to reach the other nodes' models.
CREATE OR REPLACE FUNCTION tp_pool_update(p_pool text, p_changes jsonb, p_emit boolean) RETURNS text
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
  IF v_new IS DISTINCT FROM v_old THEN
    IF p_emit THEN
      PERFORM tp_pool_changed(p_pool);
    ELSE
      PERFORM tp_refresh(p_pool, NULL);
    END IF;
  END IF;
  RETURN 'changed';
END $$;

-- A token's row as the read models copy it: times as epoch ms (float8 keeps the µs), the
-- lease's cap from its usage.
CREATE VIEW tp_model_rows AS
  SELECT t.id, t.pool, t.position, t.label, t.retired, t.disabled, t.disabled_reason,
         (extract(epoch FROM t.cooling_until) * 1000)::float8 AS cooling_until,
         t.lease_id, t.lease_user_id AS user_id,
         (extract(epoch FROM t.lease_started_at) * 1000)::float8 AS started_at,
         (extract(epoch FROM t.lease_expires_at) * 1000)::float8 AS expires_at,
         (extract(epoch FROM coalesce(u.renewable_until, u.expires_at)) * 1000)::float8 AS renewable_until,
         t.usage_count,
         (extract(epoch FROM t.counted_window) * 1000)::float8 AS counted_window
    FROM tokens t LEFT JOIN usages u ON u.id = t.lease_id;

-- A node's read model catching up (src/pool/model/read-model.ts): the events after
-- (p_xid, p_id) but those in p_skip, at most p_limit, the current rows of the tokens they
-- name, the queues' lengths, and this snapshot's now() and horizon (pg_snapshot_xmin).
-- STABLE, so that every statement here reads the caller's one snapshot; plpgsql, so that
-- each connection plans these statements once.
CREATE FUNCTION tp_catch_up(p_xid xid8, p_id bigint, p_skip bigint[], p_limit integer,
  OUT at_ms double precision, OUT horizon text, OUT events json, OUT tokens json, OUT waiting json)
LANGUAGE plpgsql STABLE AS $$
DECLARE
  v_tokens uuid[];
BEGIN
  at_ms := (extract(epoch FROM now()) * 1000)::float8;
  horizon := pg_snapshot_xmin(pg_current_snapshot())::text;
  SELECT coalesce(json_agg(json_build_object('id', e.id, 'xid', e.xid::text, 'type', e.type, 'pool', e.pool,
                                             'token_id', e.token_id) ORDER BY e.xid, e.id), '[]'),
         array_agg(DISTINCT e.token_id) FILTER (WHERE e.token_id IS NOT NULL)
    INTO events, v_tokens
    FROM (SELECT e.id, e.xid, e.type, e.pool, e.token_id FROM pool_events e
           WHERE (e.xid, e.id) > (p_xid, p_id) AND NOT (e.id = ANY(p_skip))
           ORDER BY e.xid, e.id LIMIT p_limit) e;
  tokens := '[]';
  IF v_tokens IS NOT NULL THEN
    SELECT coalesce(json_agg(r), '[]') INTO tokens FROM tp_model_rows r WHERE r.id = ANY(v_tokens);
  END IF;
  SELECT coalesce(json_object_agg(w.pool, w.n), '{}') INTO waiting
    FROM (SELECT w.pool, count(DISTINCT w.user_id)::int AS n FROM waiters w
           WHERE w.alive_until > now() AND w.granted_token IS NULL GROUP BY w.pool) w;
END $$;
