-- Picks skip tokens locked by someone else (SKIP LOCKED: a token another batch is granting
-- is not free). But the sweep's forgetting of old counts, and a label, lock tokens that
-- stay free: a batch that came meanwhile saw fewer free tokens than there were, and
-- refused (reject) or evicted a lease (evict_oldest) while tokens were free (found by a
-- black-box run: a pool recreated with 3,000 tokens, whose old counts the sweep was
-- forgetting). Both now take the pool's turn (0010) exclusively, which every allocating
-- batch holds shared: they wait for the batches in flight, and the next ones wait for
-- them, so no batch ever meets their locks.

CREATE OR REPLACE FUNCTION tp_forget_old_counts(p_pool text, p_limit integer) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
  v_window timestamptz := tp_window(p_pool);
  v_done integer;
BEGIN
  -- Nothing to forget (the common case): no need to stop the pool's batches.
  IF NOT EXISTS (SELECT 1 FROM tokens t WHERE t.pool = p_pool AND NOT t.retired AND t.counted_window < v_window) THEN
    RETURN 0;
  END IF;
  PERFORM pg_advisory_xact_lock(hashtextextended('turns ' || p_pool, 7412));
  WITH old AS (
    SELECT t.id FROM tokens t
     WHERE t.pool = p_pool AND NOT t.retired AND t.counted_window < v_window
     LIMIT p_limit FOR NO KEY UPDATE SKIP LOCKED
  ), forgotten AS (
    UPDATE tokens t SET counted_window = NULL, usage_count = 0 FROM old WHERE t.id = old.id RETURNING 1
  )
  SELECT count(*)::int INTO v_done FROM forgotten;
  RETURN v_done;
END $$;

CREATE OR REPLACE FUNCTION tp_label(p_token uuid, p_label text, OUT outcome text, OUT pool text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  v_pool text;
BEGIN
  SELECT t.pool INTO v_pool FROM tokens t WHERE t.id = p_token;
  IF v_pool IS NOT NULL THEN
    PERFORM pg_advisory_xact_lock(hashtextextended('turns ' || v_pool, 7412));
  END IF;
  UPDATE tokens t SET label = p_label
    FROM pools p
   WHERE t.id = p_token AND p.name = t.pool AND NOT p.deleted AND NOT t.retired
  RETURNING t.pool INTO pool;
  outcome := CASE WHEN FOUND THEN 'labelled' ELSE 'not_found' END;
  IF FOUND THEN
    PERFORM tp_refresh(pool, p_token);
  END IF;
END $$;
