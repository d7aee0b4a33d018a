-- The sweep's check "any count of an older window?" (migration 0027) called tp_window, a
-- volatile function, once per token of the pool: every second, on every node, a scan of the
-- pool instead of a probe of tokens_pick. Found by an audit: a PGlite server holding one
-- pool of 100,000 tokens used 70% of a core while idle (the check alone took 0.9-2.4 s) and
-- answered /healthz in 0.8 s. The window is now read once, and the check is an index probe
-- (10-25 ms on the same pool, most of it the first read of the index).
CREATE OR REPLACE FUNCTION tp_forget_old_counts(p_pool text, p_limit integer) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
  v_window timestamptz := tp_window(p_pool);
BEGIN
  -- Nothing to forget (the common case): no need to stop the pool's batches.
  IF NOT EXISTS (SELECT 1 FROM tokens t WHERE t.pool = p_pool AND NOT t.retired AND t.counted_window < v_window) THEN
    RETURN 0;
  END IF;
  PERFORM pg_advisory_xact_lock(hashtextextended('turns ' || p_pool, 7412));
  RETURN tp_forget_old_counts_in_turn(p_pool, p_limit);
END $$;
