-- The allocate + release cycle as the service runs it: a batch of :batch new users
-- (pgbench -D batch=N) allocates (one transaction), then the same users give their
-- tokens back (one tp_release_many call, a second transaction). No Node and no HTTP. The
-- service knows each lease's token from the allocation's answer; pgbench finds it again
-- by user (one probe of the open-usage-per-user index each).
\set r random(1, 2000000000)
SELECT count(*)
  FROM (SELECT ARRAY(SELECT md5(:client_id || ':' || :r || ':' || g)::uuid FROM generate_series(1, :batch) g) AS users) b,
       tp_allocate_reporting_expiries('default', b.users, b.users, '{}', gen_random_uuid(), false, 10000);
SELECT count(*)
  FROM (SELECT array_agg(o.token_id) AS tokens, array_agg(o.user_id) AS users
          FROM generate_series(1, :batch) g
         CROSS JOIN LATERAL (SELECT u.token_id, u.user_id FROM usages u
                              WHERE u.pool = 'default' AND u.released_at IS NULL
                                AND u.user_id = md5(:client_id || ':' || :r || ':' || g)::uuid LIMIT 1) o) held,
       tp_release_many(held.tokens, held.users);
