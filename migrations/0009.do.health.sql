-- Token health (rule 11): cooldown, disable, enable, and the label people know it by.
-- Each writes a token event with the token as it is afterwards.

CREATE FUNCTION tp_token_event(p_type text, p_token uuid) RETURNS void
LANGUAGE sql AS $$
  INSERT INTO pool_events (type, pool, token_id, body)
  SELECT p_type, t.pool, t.id, tp_token_json(t.id) FROM tokens t WHERE t.id = p_token
$$;

-- Puts p_token into cooldown for p_seconds, never shortening one in force. By its
-- holder (p_user) or an admin (p_user NULL); an active lease ends with reason 'cooldown'.
-- outcome: 'cooling' | 'not_found' | 'not_holder' | 'token_disabled' | 'too_long' (over
-- the pool's cooldown_max_seconds, in max_seconds).
CREATE FUNCTION tp_cooldown(
  p_token uuid, p_user uuid, p_seconds double precision,
  OUT outcome text, OUT pool text, OUT max_seconds double precision,
  OUT lease_id bigint, OUT user_id uuid, OUT started_at timestamptz, OUT released_at timestamptz
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
  IF v_tok.id IS NULL OR v_tok.retired THEN
    outcome := 'not_found';
    RETURN;
  END IF;
  pool := v_tok.pool;
  SELECT p.cooldown_max_seconds INTO max_seconds FROM pools p WHERE p.name = v_tok.pool;
  IF p_seconds > max_seconds THEN
    outcome := 'too_long';
    RETURN;
  END IF;
  IF p_user IS NOT NULL AND NOT tp_holds(v_tok, p_user, v_now) THEN
    outcome := 'not_holder';
    RETURN;
  END IF;
  IF p_user IS NULL AND v_tok.disabled THEN
    outcome := 'token_disabled';
    RETURN;
  END IF;
  SELECT * INTO v_end FROM tp_end_lease(v_tok, v_now, 'cooldown');
  IF FOUND THEN
    lease_id := v_end.lease_id; user_id := v_end.user_id;
    started_at := v_end.started_at; released_at := v_end.released_at;
  END IF;
  UPDATE tokens t
     SET cooling_until = greatest(t.cooling_until, v_now + make_interval(secs => p_seconds))
   WHERE t.id = p_token;
  PERFORM tp_token_event('cooling', p_token);
  outcome := 'cooling';
END $$;

-- Takes p_token out until enabled; an active lease ends with reason 'disabled'.
-- Idempotent: disabling a disabled token changes only its reason.
-- outcome: 'disabled' | 'not_found'.
CREATE FUNCTION tp_disable(
  p_token uuid, p_reason text,
  OUT outcome text, OUT pool text,
  OUT lease_id bigint, OUT user_id uuid, OUT started_at timestamptz, OUT released_at timestamptz
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
  IF v_tok.id IS NULL OR v_tok.retired THEN
    outcome := 'not_found';
    RETURN;
  END IF;
  pool := v_tok.pool;
  SELECT * INTO v_end FROM tp_end_lease(v_tok, v_now, 'disabled');
  IF FOUND THEN
    lease_id := v_end.lease_id; user_id := v_end.user_id;
    started_at := v_end.started_at; released_at := v_end.released_at;
  END IF;
  UPDATE tokens t SET disabled = true, disabled_reason = p_reason WHERE t.id = p_token;
  IF NOT v_tok.disabled OR v_tok.disabled_reason IS DISTINCT FROM p_reason THEN
    PERFORM tp_token_event('disabled', p_token);
  END IF;
  outcome := 'disabled';
END $$;

-- Ends p_token's disabled state and its cooldown now. Idempotent.
-- outcome: 'enabled' | 'not_found'.
CREATE FUNCTION tp_enable(p_token uuid, OUT outcome text, OUT pool text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  v_tok tokens;
  v_now timestamptz;
BEGIN
  v_tok := tp_lock_token(p_token, clock_timestamp());
  v_now := date_trunc('milliseconds', clock_timestamp());
  IF v_tok.id IS NULL OR v_tok.retired THEN
    outcome := 'not_found';
    RETURN;
  END IF;
  pool := v_tok.pool;
  IF v_tok.disabled OR v_tok.cooling_until > v_now THEN
    UPDATE tokens t SET disabled = false, disabled_reason = NULL, cooling_until = NULL WHERE t.id = p_token;
    PERFORM tp_token_event('enabled', p_token);
  END IF;
  outcome := 'enabled';
END $$;

-- Sets or clears p_token's label. outcome: 'labelled' | 'not_found'.
CREATE FUNCTION tp_label(p_token uuid, p_label text, OUT outcome text, OUT pool text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
  UPDATE tokens t SET label = p_label
    FROM pools p
   WHERE t.id = p_token AND p.name = t.pool AND NOT p.deleted AND NOT t.retired
  RETURNING t.pool INTO pool;
  outcome := CASE WHEN FOUND THEN 'labelled' ELSE 'not_found' END;
END $$;
