-- A cooldown ends on a whole millisecond, rounded up: every time the service shows has
-- milliseconds, so 1.2345 s shows (and holds) 1.235 s, and 0.0004 s is still 1 ms of
-- cooldown rather than none. (Microseconds first, so that 1.1 s is 1100 ms, not 1101.)

-- Puts p_token into cooldown for p_seconds, never shortening one in force. By its
-- holder (p_user) or an admin (p_user NULL); an active lease ends with reason 'cooldown'.
-- outcome: 'cooling' | 'not_found' | 'not_holder' | 'token_disabled' | 'too_long' (over
-- the pool's cooldown_max_seconds, in max_seconds).
CREATE OR REPLACE FUNCTION tp_cooldown(
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
     SET cooling_until = greatest(t.cooling_until, v_now + make_interval(secs => greatest(1, ceil(round(p_seconds * 1000000) / 1000)) / 1000))
   WHERE t.id = p_token;
  PERFORM tp_token_event('cooling', p_token);
  outcome := 'cooling';
END $$;
