-- A pool brought to its size a step at a time by its caller passed the size in: a node
-- finishing a resize cut short by a failure (the sweep) could pass a size read before a
-- newer resize committed, and the two would fight. Found by a newcomer's trial: creating a
-- pool of 100,000 on a loaded machine timed out after its first step and stayed at 50,000
-- tokens for good. Now each step reads the size under the pool's row lock.
-- Returns how many live tokens the pool holds after this step, and its size; NULLs for a
-- deleted or unknown pool.
CREATE FUNCTION tp_provision_step(p_pool text, p_step integer, OUT live integer, OUT size integer)
LANGUAGE plpgsql AS $$
BEGIN
  SELECT p.size INTO size FROM pools p WHERE p.name = p_pool AND NOT p.deleted FOR UPDATE;
  IF FOUND THEN
    live := tp_provision(p_pool, size, p_step);
  END IF;
END $$;
