-- Two picks sorted every token of a pool where the tokens_pick index (pool,
-- counted_window NULLS FIRST, usage_count, shuffle) could have given them in order:
--  - count 0 (counted_window IS NULL, usage_count = 0) ordered by shuffle alone: an IS
--    NULL condition does not make the column constant for ordering, so PostgreSQL read
--    the whole range and sorted it (1.1 s at 1,000,000 tokens: a new pool, or any pool
--    once the sweep has forgotten an ended window's counts);
--  - counts of an older window ordered by counted_window ASC, i.e. NULLS LAST, against
--    the index's NULLS FIRST (2.7 s at 1,000,000 tokens for every allocation after a
--    window's end, until the sweep had forgotten the old counts, ~60 s).
-- Both now order by the index's own columns; on the rows each reads that is the same
-- order (counted_window is NULL, or never NULL; usage_count is 0 in the first). An index
-- range read instead: a few ms. Same function otherwise.
CREATE OR REPLACE FUNCTION tp_pick(p_pool text, p_window timestamptz, p_now timestamptz, p_n integer,
                        OUT picked uuid[], OUT prior bigint[])
LANGUAGE plpgsql AS $$
DECLARE
  v_from double precision := random();
  v_min integer;
BEGIN
  picked := '{}';
  prior := '{}';
  IF p_n <= 0 THEN
    RETURN;
  END IF;
  SELECT picked || coalesce(array_agg(f.id), '{}'), prior || coalesce(array_agg(f.lease_id), '{}')
    INTO picked, prior FROM (
    SELECT t.id, t.lease_id FROM tokens t
     WHERE t.pool = p_pool AND NOT t.retired AND t.counted_window IS NULL AND t.usage_count = 0
       AND t.shuffle >= v_from AND tp_is_free(t, p_now)
     ORDER BY t.counted_window NULLS FIRST, t.usage_count, t.shuffle LIMIT p_n FOR NO KEY UPDATE SKIP LOCKED) f;
  IF cardinality(picked) < p_n THEN
    SELECT picked || coalesce(array_agg(f.id), '{}'), prior || coalesce(array_agg(f.lease_id), '{}')
      INTO picked, prior FROM (
      SELECT t.id, t.lease_id FROM tokens t
       WHERE t.pool = p_pool AND NOT t.retired AND t.counted_window IS NULL AND t.usage_count = 0
         AND t.shuffle < v_from AND tp_is_free(t, p_now)
       ORDER BY t.counted_window NULLS FIRST, t.usage_count, t.shuffle LIMIT p_n - cardinality(picked) FOR NO KEY UPDATE SKIP LOCKED) f;
  END IF;
  IF cardinality(picked) < p_n THEN
    SELECT picked || coalesce(array_agg(f.id), '{}'), prior || coalesce(array_agg(f.lease_id), '{}')
      INTO picked, prior FROM (
      SELECT t.id, t.lease_id FROM tokens t
       WHERE t.pool = p_pool AND NOT t.retired AND t.counted_window < p_window AND tp_is_free(t, p_now)
       ORDER BY t.counted_window NULLS FIRST, t.usage_count, t.shuffle LIMIT p_n - cardinality(picked) FOR NO KEY UPDATE SKIP LOCKED) f;
  END IF;
  IF cardinality(picked) < p_n THEN
    SELECT t.usage_count INTO v_min FROM tokens t
     WHERE t.pool = p_pool AND NOT t.retired AND t.counted_window = p_window AND tp_is_free(t, p_now)
     ORDER BY t.usage_count, t.shuffle LIMIT 1;
    IF v_min IS NOT NULL THEN
      SELECT picked || coalesce(array_agg(f.id), '{}'), prior || coalesce(array_agg(f.lease_id), '{}')
        INTO picked, prior FROM (
        SELECT t.id, t.lease_id FROM tokens t
         WHERE t.pool = p_pool AND NOT t.retired AND t.counted_window = p_window AND t.usage_count = v_min
           AND t.shuffle >= v_from AND tp_is_free(t, p_now)
         ORDER BY t.shuffle LIMIT p_n - cardinality(picked) FOR NO KEY UPDATE SKIP LOCKED) f;
      IF cardinality(picked) < p_n THEN
        -- Around from the start of that count, then on to the next counts.
        SELECT picked || coalesce(array_agg(f.id), '{}'), prior || coalesce(array_agg(f.lease_id), '{}')
          INTO picked, prior FROM (
          SELECT t.id, t.lease_id FROM tokens t
           WHERE t.pool = p_pool AND NOT t.retired AND t.counted_window = p_window
             AND tp_is_free(t, p_now) AND t.id <> ALL (picked)
           ORDER BY t.usage_count, t.shuffle LIMIT p_n - cardinality(picked) FOR NO KEY UPDATE SKIP LOCKED) f;
      END IF;
    END IF;
  END IF;
END $$;
