-- The log's horizon was pg_snapshot_xmin: the oldest transaction running anywhere in the
-- cluster. One transaction with a transaction id open in another database on the same
-- server (a migration, a batch job, a session left idle in a transaction) held back every
-- node's event stream until it ended (an audit measured 7 s of delay behind an 8 s
-- transaction elsewhere), and the read models kept every event past it in their skip lists.
-- Only transactions of this database can write pool_events, so only they count now.
--
-- Why this is safe: x, running when the caller's snapshot was taken, is in its xip. If x
-- is this database's and still runs when the backends are read below, its backend shows it
-- (backend_xid, with the database's oid); if it ended before, its status is final when
-- pg_xact_status reads it afterwards (the commit log is written before a transaction leaves
-- the process array). Either way x counts. STABLE: every statement here reads the caller's
-- snapshot, so the horizon is that snapshot's.
CREATE FUNCTION tp_horizon() RETURNS xid8
LANGUAGE plpgsql STABLE AS $$
DECLARE
  v_snap pg_snapshot := pg_current_snapshot();
  v_here xid[];
  v_horizon xid8;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_snapshot_xip(v_snap)) THEN
    RETURN pg_snapshot_xmax(v_snap);
  END IF;
  -- A transaction keeps its first read of the backends: read them now.
  PERFORM pg_stat_clear_snapshot();
  SELECT array_agg(a.backend_xid) INTO v_here
    FROM pg_stat_get_activity(NULL) a
   WHERE a.backend_xid IS NOT NULL
     AND a.datid = (SELECT d.oid FROM pg_database d WHERE d.datname = current_database());
  SELECT min(x) INTO v_horizon
    FROM pg_snapshot_xip(v_snap) x
   WHERE x::xid = ANY (coalesce(v_here, '{}'))
      OR x::xid IN (SELECT p.transaction FROM pg_prepared_xacts p WHERE p.database = current_database())
      OR pg_xact_status(x) <> 'in progress';
  RETURN coalesce(v_horizon, pg_snapshot_xmax(v_snap));
END $$;

-- As in migration 0015, with this database's horizon.
CREATE OR REPLACE FUNCTION tp_catch_up(p_xid xid8, p_id bigint, p_skip bigint[], p_limit integer,
  OUT at_ms double precision, OUT horizon text, OUT events json, OUT tokens json, OUT waiting json)
LANGUAGE plpgsql STABLE AS $$
DECLARE
  v_tokens uuid[];
BEGIN
  at_ms := (extract(epoch FROM now()) * 1000)::float8;
  horizon := tp_horizon()::text;
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
