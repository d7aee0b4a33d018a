-- tp_retry_after_ms of 0007 answered 1 (greatest(1, NULL) is 1) when nothing will free a
-- token, so a pool whose every token is disabled sent Retry-After: 1 where it must send
-- none. No row now, so the call is NULL as its comment says.
CREATE OR REPLACE FUNCTION tp_retry_after_ms(p_pool text, p_now timestamptz) RETURNS bigint
LANGUAGE sql STABLE AS $$
  SELECT greatest(1, ceil(extract(epoch FROM min(d) - p_now) * 1000))::bigint
    FROM (SELECT CASE WHEN t.cooling_until > p_now THEN t.cooling_until ELSE t.lease_expires_at END AS d
            FROM tokens t
           WHERE t.pool = p_pool AND NOT t.retired AND NOT t.disabled
             AND (t.lease_expires_at > p_now OR t.cooling_until > p_now)) x
  HAVING min(d) IS NOT NULL
$$;
