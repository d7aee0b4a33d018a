-- A pool's longest cooldown is 1 s to 7 days (it was only "more than 0"): the API and the
-- environment refuse less, and so does the table. A pool set below 1 s before is raised to 1 s.
UPDATE pools SET cooldown_max_seconds = 1 WHERE cooldown_max_seconds < 1;
ALTER TABLE pools DROP CONSTRAINT pools_cooldown_max_seconds_check;
ALTER TABLE pools ADD CONSTRAINT pools_cooldown_max_seconds_check CHECK (cooldown_max_seconds >= 1 AND cooldown_max_seconds <= 604800);
