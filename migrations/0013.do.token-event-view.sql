-- A token event's view read from the token's own row. Through tp_tokens with
-- clock_timestamp() (volatile, so PostgreSQL can't inline the function), every cooldown,
-- disable and enable built the view of the whole pool first: 4 ms a token event at 1,000
-- tokens (measured), seconds at 1,000,000.
CREATE OR REPLACE FUNCTION tp_token_json(p_token uuid) RETURNS jsonb
LANGUAGE sql STABLE AS $$
  SELECT jsonb_build_object(
           'id', t.id, 'pool', t.pool, 'label', t.label, 'status', s.status,
           'current_user_id', CASE WHEN s.status = 'active' THEN t.lease_user_id END,
           'lease_id', CASE WHEN s.status = 'active' THEN t.lease_id END,
           'started_at', CASE WHEN s.status = 'active' THEN t.lease_started_at END,
           'expires_at', CASE WHEN s.status = 'active' THEN t.lease_expires_at END,
           'cooling_until', CASE WHEN t.cooling_until > n.now THEN t.cooling_until END,
           'disabled_reason', t.disabled_reason,
           'usage_count', tp_count(t, tp_window_now(p, n.now)))
    FROM tokens t
    JOIN pools p ON p.name = t.pool
    CROSS JOIN (SELECT clock_timestamp() AS now) n
    CROSS JOIN LATERAL (SELECT tp_status(t, n.now) AS status) s
   WHERE t.id = p_token
$$;
