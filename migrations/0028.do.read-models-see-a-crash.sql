-- After a crash (a backend killed, an immediate stop), PostgreSQL recovers and may give out
-- again the transaction ids that never reached its log: events could then commit below a
-- read model's horizon and never be read. pg_postmaster_start_time() does not move when only
-- a backend crashed. An unlogged table does: crash recovery empties it. Each read model marks
-- itself here when it reads everything, and reads everything again once its mark is gone.
CREATE UNLOGGED TABLE read_model_marks (
  node uuid PRIMARY KEY,
  marked_at timestamptz NOT NULL DEFAULT now()
);
