-- One index for a token's position instead of two (issue: fewer writes per lease). A
-- position orders its pool's pages and comes from an identity column; every query reads
-- it within a pool. A grant rewrites the token's row off the HOT path (its pick columns
-- change), so each index of tokens costs an entry on every grant, and the deployment-wide
-- UNIQUE (position) was read by nothing: 7% of the WAL written per lease
-- (bench/write-costs.ts). (pool, position) stays, now unique.
ALTER TABLE tokens DROP CONSTRAINT tokens_position_key;
DROP INDEX tokens_in_pool;
CREATE UNIQUE INDEX tokens_in_pool ON tokens (pool, position);
