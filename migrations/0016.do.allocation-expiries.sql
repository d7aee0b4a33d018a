-- An allocation reports the leases it wrote as run out (issue: counters and logs must come
-- from what committed). A lease that ran out is written by the sweep, or earlier by the
-- allocation that needs its user (tp_allocate's stale leases) or its token (tp_grant's
-- prior lease). The sweep returns what it wrote; an allocation now does too, so the node
-- that wrote an expiry counts and logs it, whichever path wrote it.
--
-- The lease ends are read back from the event rows this transaction's triggers added
-- (pool_events_order leads with xid: one index probe). A batch that wrote nothing has no
-- transaction id yet and is given none.
CREATE FUNCTION tp_allocate_reporting_expiries(p_pool text, p_users uuid[], p_fresh uuid[], p_queue uuid[], p_node uuid,
                                               p_exclusive boolean, p_alive_ms integer)
RETURNS TABLE (
  user_id uuid, outcome text, lease_id bigint, token_id uuid, started_at timestamptz,
  expires_at timestamptz, renewable_until timestamptz, evicted_user_id uuid, retry_after_ms bigint,
  "position" integer, waiting integer, estimated_grant_at timestamptz, wake_at timestamptz
)
LANGUAGE plpgsql AS $$
BEGIN
  RETURN QUERY SELECT * FROM tp_allocate(p_pool, p_users, p_fresh, p_queue, p_node, p_exclusive, p_alive_ms);
  -- outcome 'expired': a lease of user_id ended at expires_at, written by this allocation.
  RETURN QUERY
  SELECT e.user_id, 'expired'::text, e.lease_id, e.token_id, e.started_at, e.released_at, NULL::timestamptz,
         NULL::uuid, NULL::bigint, NULL::int, NULL::int, NULL::timestamptz, NULL::timestamptz
    FROM pool_events e
   WHERE e.xid = pg_current_xact_id_if_assigned() AND e.type = 'released' AND e.release_reason = 'expired';
END $$;
