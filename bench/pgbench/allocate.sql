-- One batch of the service's allocate path as its batcher sends it: :batch new users
-- (pgbench -D batch=N), one tp_allocate call, one transaction (pgbench's autocommit);
-- no Node and no HTTP.
SELECT count(*)
  FROM (SELECT ARRAY(SELECT gen_random_uuid() FROM generate_series(1, :batch)) AS users) b,
       tp_allocate_reporting_expiries('default', b.users, b.users, '{}', gen_random_uuid(), false, 10000);
