-- Releases and renewals are group-committed like allocations: concurrent requests share
-- one call, one transaction and one commit. Each request is still tp_release or tp_renew
-- with its own answer; tokens are locked in id order, so two batches queue instead of
-- deadlocking.

CREATE FUNCTION tp_release_many(p_tokens uuid[], p_users uuid[])
RETURNS TABLE (token_id uuid, user_id uuid, outcome text, pool text, lease_id bigint,
               started_at timestamptz, released_at timestamptz)
LANGUAGE plpgsql AS $$
DECLARE
  r record;
BEGIN
  FOR r IN SELECT x.t, x.u FROM unnest(p_tokens, p_users) x(t, u) ORDER BY x.t, x.u LOOP
    RETURN QUERY SELECT r.t, r.u, o.* FROM tp_release(r.t, r.u) o;
  END LOOP;
END $$;

CREATE FUNCTION tp_renew_many(p_tokens uuid[], p_users uuid[])
RETURNS TABLE (token_id uuid, user_id uuid, outcome text, pool text, lease_id bigint,
               started_at timestamptz, expires_at timestamptz, renewable_until timestamptz)
LANGUAGE plpgsql AS $$
DECLARE
  r record;
BEGIN
  FOR r IN SELECT x.t, x.u FROM unnest(p_tokens, p_users) x(t, u) ORDER BY x.t, x.u LOOP
    RETURN QUERY SELECT r.t, r.u, o.* FROM tp_renew(r.t, r.u) o;
  END LOOP;
END $$;
