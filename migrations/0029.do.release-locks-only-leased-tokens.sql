-- A release or renewal locked every token it named, free ones included, until its commit: a
-- batch picking meanwhile (SKIP LOCKED) took a free token so locked for a taken one, and
-- refused (reject) or evicted (evict_oldest) with a token free. Found by a review: a
-- stranger's release of a free token made a concurrent allocate answer 409. Only a token
-- with a running lease can be released or renewed, so only those are locked now; the others
-- are answered not_holder (or not_found) from what the statement sees, as before.
CREATE OR REPLACE FUNCTION tp_lock_tokens(p_tokens uuid[]) RETURNS timestamptz
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM 1 FROM tokens t
   WHERE t.id = ANY (p_tokens) AND t.lease_expires_at > clock_timestamp()
   ORDER BY t.id FOR NO KEY UPDATE;
  RETURN date_trunc('milliseconds', clock_timestamp());
END $$;
