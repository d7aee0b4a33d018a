-- Picks skip tokens locked by someone else (SKIP LOCKED: a token another batch is granting
-- is not free). But the sweep's forgetting of old counts, and a label, lock tokens that
-- stay free: a batch that came meanwhile saw fewer free tokens than there were, and
-- refused (reject) or evicted a lease (evict_oldest) while tokens were free (found by a
-- black-box run: a pool recreated with 3,000 tokens, whose old counts the sweep was
-- forgetting). Both now take the pool's turn (0010) exclusively first, which every
-- allocating batch holds shared: they wait for the batches in flight, and the next ones
-- wait for them, so no batch ever meets their locks. Each keeps its body (0006, 0015)
-- under a new name, called once the turn is taken.

ALTER FUNCTION tp_forget_old_counts(text, integer) RENAME TO tp_forget_old_counts_in_turn;

CREATE FUNCTION tp_forget_old_counts(p_pool text, p_limit integer) RETURNS integer
LANGUAGE plpgsql AS $$
BEGIN
  -- Nothing to forget (the common case): no need to stop the pool's batches.
  IF NOT EXISTS (SELECT 1 FROM tokens t WHERE t.pool = p_pool AND NOT t.retired AND t.counted_window < tp_window(p_pool)) THEN
    RETURN 0;
  END IF;
  PERFORM pg_advisory_xact_lock(hashtextextended('turns ' || p_pool, 7412));
  RETURN tp_forget_old_counts_in_turn(p_pool, p_limit);
END $$;

ALTER FUNCTION tp_label(uuid, text) RENAME TO tp_label_in_turn;

CREATE FUNCTION tp_label(p_token uuid, p_label text, OUT outcome text, OUT pool text)
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_advisory_xact_lock(hashtextextended('turns ' || t.pool, 7412)) FROM tokens t WHERE t.id = p_token;
  SELECT l.outcome, l.pool INTO outcome, pool FROM tp_label_in_turn(p_token, p_label) l;
END $$;
