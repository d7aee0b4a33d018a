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
