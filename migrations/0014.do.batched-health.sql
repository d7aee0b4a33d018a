-- Cooldowns, disables and enables are group-committed like allocations: concurrent
-- requests share one call, one transaction and one commit, each still tp_cooldown,
-- tp_disable or tp_enable with its own answer. Tokens are taken in id order (then in the
-- order the requests came), so two batches queue instead of deadlocking.
CREATE FUNCTION tp_health_many(p_kinds text[], p_tokens uuid[], p_users uuid[], p_seconds double precision[],
                               p_reasons text[])
RETURNS TABLE (i integer, outcome text, pool text, max_seconds double precision, lease_id bigint, user_id uuid,
               started_at timestamptz, released_at timestamptz)
LANGUAGE plpgsql AS $$
DECLARE
  r record;
BEGIN
  FOR r IN SELECT x.kind, x.token, x.usr, x.secs, x.reason, x.n
             FROM unnest(p_kinds, p_tokens, p_users, p_seconds, p_reasons) WITH ORDINALITY x(kind, token, usr, secs, reason, n)
            ORDER BY x.token, x.n LOOP
    IF r.kind = 'cooldown' THEN
      RETURN QUERY SELECT r.n::int, c.outcome, c.pool, c.max_seconds, c.lease_id, c.user_id, c.started_at, c.released_at
                     FROM tp_cooldown(r.token, r.usr, r.secs) c;
    ELSIF r.kind = 'disable' THEN
      RETURN QUERY SELECT r.n::int, d.outcome, d.pool, NULL::double precision, d.lease_id, d.user_id, d.started_at, d.released_at
                     FROM tp_disable(r.token, r.reason) d;
    ELSE
      RETURN QUERY SELECT r.n::int, e.outcome, e.pool, NULL::double precision, NULL::bigint, NULL::uuid, NULL::timestamptz,
                          NULL::timestamptz
                     FROM tp_enable(r.token) e;
    END IF;
  END LOOP;
END $$;
