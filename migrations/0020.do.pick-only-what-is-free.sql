-- The 10,000-token anomaly (BENCHMARKS.md): once every token of a pool is leased (a full
-- pool under evict_oldest), each of tp_pick's queries walked the pool's whole pick index,
-- finding nothing free, before the batch fell back to eviction: ~20,000 index entries a
-- batch at 10,000 tokens (100 at 100; a pool of 1,000,000 never filled in the bench). Now
-- the pick first counts the free tokens, up to what it was asked for, with two probes of
-- tokens_deadline (a free token's deadline is NULL or past), and asks the walk for no more.
ALTER FUNCTION tp_pick(text, timestamptz, timestamptz, integer) RENAME TO tp_pick_least_used;

CREATE FUNCTION tp_pick(p_pool text, p_window timestamptz, p_now timestamptz, p_n integer,
                        OUT picked uuid[], OUT prior bigint[])
LANGUAGE plpgsql AS $$
DECLARE
  v_free integer;
BEGIN
  -- tp_is_free, read from tokens_deadline: greatest() of the lease's end and the cooldown's.
  SELECT count(*) INTO v_free FROM (
    (SELECT 1 FROM tokens t WHERE t.pool = p_pool AND NOT t.retired AND NOT t.disabled
        AND greatest(t.lease_expires_at, t.cooling_until) IS NULL LIMIT p_n)
    UNION ALL
    (SELECT 1 FROM tokens t WHERE t.pool = p_pool AND NOT t.retired AND NOT t.disabled
        AND greatest(t.lease_expires_at, t.cooling_until) <= p_now
      -- In the index's order: unordered, the planner may scan the table for a range it
      -- guesses is large, and a pool of 1,000,000 has none past due (measured: 100 ms).
      ORDER BY greatest(t.lease_expires_at, t.cooling_until) LIMIT p_n)) f;
  SELECT l.picked, l.prior INTO picked, prior FROM tp_pick_least_used(p_pool, p_window, p_now, least(p_n, v_free)) l;
END $$;
