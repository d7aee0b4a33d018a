-- A lease, its cap and a usage window last at least 1 ms (they were only "more than 0"):
-- times are kept to the µs, so a shorter lease could end where it starts, and a window of
-- zero length divides by zero. The API and the environment refuse less; so does the table.
-- A pool set below 1 ms before is raised to 1 ms (its cap with it, so the cap stays ≥ TTL).
UPDATE pools SET lease_ttl_seconds = greatest(lease_ttl_seconds, 0.001),
                 lease_max_seconds = greatest(lease_max_seconds, 0.001)
 WHERE lease_ttl_seconds < 0.001 OR lease_max_seconds < 0.001;
-- 1 ms in hours is 1/3,600,000, and 3,600,000 times that double is 0.9999999999999999: the
-- check allows that, so the double the API computed for "1 ms" is never refused here.
UPDATE pools SET usage_window_hours = 0.001 / 3600 WHERE usage_window_hours < 0.001 / 3600;
ALTER TABLE pools DROP CONSTRAINT pools_lease_ttl_seconds_check;
ALTER TABLE pools ADD CONSTRAINT pools_lease_ttl_seconds_check CHECK (lease_ttl_seconds >= 0.001);
ALTER TABLE pools DROP CONSTRAINT pools_lease_max_seconds_check;
ALTER TABLE pools ADD CONSTRAINT pools_lease_max_seconds_check CHECK (lease_max_seconds >= 0.001 AND lease_max_seconds <= 86400);
ALTER TABLE pools DROP CONSTRAINT pools_usage_window_hours_check;
ALTER TABLE pools ADD CONSTRAINT pools_usage_window_hours_check CHECK (usage_window_hours * 3600000 >= 0.999999);
