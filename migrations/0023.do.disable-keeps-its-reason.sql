-- Takes p_token out until enabled; an active lease ends with reason 'disabled'.
-- Idempotent: disabling a disabled token changes only its reason, and only when one is
-- given (a second disable without a reason keeps the first one's).
-- outcome: 'disabled' | 'not_found'.
CREATE OR REPLACE FUNCTION tp_disable(
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
  IF v_tok.disabled AND p_reason IS NULL THEN
    p_reason := v_tok.disabled_reason;
  END IF;
  UPDATE tokens t SET disabled = true, disabled_reason = p_reason WHERE t.id = p_token;
  IF NOT v_tok.disabled OR v_tok.disabled_reason IS DISTINCT FROM p_reason THEN
    PERFORM tp_token_event('disabled', p_token);
  END IF;
  outcome := 'disabled';
END $$;
