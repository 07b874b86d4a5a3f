-- Every upload reaches a final state. The backend running an attempt's load is recorded, so the
-- attempt that takes over can end it (a frozen worker's open transaction would otherwise hold its
-- row locks and unique-index entries forever); unfinished uploads are indexed for the lifecycle sweep.

ALTER TABLE uploads
  ADD COLUMN load_backend_pid integer,          -- pg_backend_pid() of the current attempt's load connection
  ADD COLUMN load_backend_start timestamptz;   -- its pg_stat_activity.backend_start: a reused pid is another backend

CREATE INDEX uploads_unfinished ON uploads (updated_at) WHERE status IN ('uploaded', 'processing');
