-- Counters behind the /metrics gauges (uploads and deliveries by status, rows loaded and rejected),
-- kept by triggers as the rows change, so a scrape sums a few dozen counter rows instead of
-- aggregating the uploads and deliveries tables.
--
-- Each backend writes only rows of its own (backend_pid = pg_backend_pid()). A backend runs one
-- transaction at a time, so no two transactions ever write the same counter row: a status change
-- never waits for another transaction's counter, and no deadlock can come from counting. A
-- transaction's counts commit or roll back with its changes, so the sum over all rows is exact in
-- any snapshot. Rows of backends that are gone are folded into backend_pid 0 by
-- fold_metric_counters() (the scrape calls it when rows pile up).
CREATE TABLE metric_counters (
  metric text NOT NULL CHECK (metric IN ('uploads', 'rows_loaded', 'rows_rejected', 'deliveries')),
  label text NOT NULL,        -- the status for uploads and deliveries, '' otherwise
  backend_pid integer NOT NULL, -- the backend that counted; 0 = folded from backends that are gone
  value bigint NOT NULL,
  PRIMARY KEY (metric, label, backend_pid)
);

CREATE TYPE metric_delta AS (metric text, label text, delta bigint);

/** Adds the deltas (summed per metric and label; zero sums are skipped) to this backend's counters. */
-- plpgsql, not sql: its INSERT is planned once per connection, not on every call.
CREATE FUNCTION add_metric_deltas(deltas metric_delta[]) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO metric_counters AS c (metric, label, backend_pid, value)
  SELECT d.metric, d.label, pg_backend_pid(), sum(d.delta)
    FROM unnest(deltas) AS d
   GROUP BY d.metric, d.label
  HAVING sum(d.delta) <> 0
  ON CONFLICT (metric, label, backend_pid) DO UPDATE SET value = c.value + excluded.value;
END $$;

-- What one upload row counts for: its status; a completed upload's rows as loaded; a finished
-- upload's rejected rows (a failed load's rows were rolled back, its rejects were still rejects).
-- (VALUES with CASE, not a UNION with WHERE: PostgreSQL 15 fails to plan the latter grouped.)
CREATE FUNCTION upload_metric_deltas(u uploads, sign integer)
  RETURNS TABLE (metric text, label text, delta bigint) LANGUAGE sql IMMUTABLE AS $$
  VALUES ('uploads', u.status, sign::bigint),
         ('rows_loaded', '', CASE WHEN u.status = 'completed' THEN sign * u.rows_processed ELSE 0 END),
         ('rows_rejected', '', CASE WHEN u.status IN ('completed', 'failed') THEN sign * u.rows_failed ELSE 0 END)
$$;

-- Inserts and deletes are counted per statement: a purge deleting 500 uploads (or a tenant's
-- cascade) makes one counter write per metric, not 500.
CREATE FUNCTION count_upload_rows() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    PERFORM add_metric_deltas(ARRAY(SELECT (d.metric, d.label, d.delta)::metric_delta FROM new_rows n, upload_metric_deltas(n, 1) d));
  ELSE
    PERFORM add_metric_deltas(ARRAY(SELECT (d.metric, d.label, d.delta)::metric_delta FROM old_rows o, upload_metric_deltas(o, -1) d));
  END IF;
  RETURN NULL;
END $$;

-- Updates are counted per row, and only those that change something counted (the trigger's WHEN):
-- progress writes, leases and object bookkeeping, most updates of an upload, call nothing.
CREATE FUNCTION count_upload_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM add_metric_deltas(ARRAY(
    SELECT (d.metric, d.label, d.delta)::metric_delta FROM upload_metric_deltas(NEW, 1) d
    UNION ALL
    SELECT (d.metric, d.label, d.delta)::metric_delta FROM upload_metric_deltas(OLD, -1) d));
  RETURN NULL;
END $$;

CREATE FUNCTION count_delivery_rows() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    PERFORM add_metric_deltas(ARRAY(SELECT ('deliveries', n.delivery_status, 1)::metric_delta FROM new_rows n));
  ELSE
    PERFORM add_metric_deltas(ARRAY(SELECT ('deliveries', o.delivery_status, -1)::metric_delta FROM old_rows o));
  END IF;
  RETURN NULL;
END $$;

CREATE FUNCTION count_delivery_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM add_metric_deltas(ARRAY[('deliveries', NEW.delivery_status, 1)::metric_delta,
                                  ('deliveries', OLD.delivery_status, -1)::metric_delta]);
  RETURN NULL;
END $$;

-- TRUNCATE has no transition rows: it empties the table, so its counters start again from zero.
-- (It holds the table's ACCESS EXCLUSIVE lock, so no other transaction has uncommitted counts of it.)
CREATE FUNCTION reset_metric_counters() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM metric_counters WHERE metric = ANY (TG_ARGV);
  RETURN NULL;
END $$;

-- The triggers first: creating them locks each table against writes until this migration commits,
-- so the counts below start from exactly the rows the triggers will go on from.
CREATE TRIGGER uploads_count_insert AFTER INSERT ON uploads
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION count_upload_rows();
CREATE TRIGGER uploads_count_delete AFTER DELETE ON uploads
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION count_upload_rows();
CREATE TRIGGER uploads_count_update AFTER UPDATE ON uploads
  FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status
                     OR (NEW.status IN ('completed', 'failed')
                         AND (OLD.rows_processed, OLD.rows_failed) IS DISTINCT FROM (NEW.rows_processed, NEW.rows_failed)))
  EXECUTE FUNCTION count_upload_update();
CREATE TRIGGER uploads_count_truncate AFTER TRUNCATE ON uploads
  FOR EACH STATEMENT EXECUTE FUNCTION reset_metric_counters('uploads', 'rows_loaded', 'rows_rejected');

CREATE TRIGGER deliveries_count_insert AFTER INSERT ON deliveries
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION count_delivery_rows();
CREATE TRIGGER deliveries_count_delete AFTER DELETE ON deliveries
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION count_delivery_rows();
CREATE TRIGGER deliveries_count_update AFTER UPDATE ON deliveries
  FOR EACH ROW WHEN (OLD.delivery_status IS DISTINCT FROM NEW.delivery_status)
  EXECUTE FUNCTION count_delivery_update();
CREATE TRIGGER deliveries_count_truncate AFTER TRUNCATE ON deliveries
  FOR EACH STATEMENT EXECUTE FUNCTION reset_metric_counters('deliveries');

INSERT INTO metric_counters (metric, label, backend_pid, value)
SELECT d.metric, d.label, 0, sum(d.delta)
  FROM uploads u, upload_metric_deltas(u, 1) d
 GROUP BY d.metric, d.label
HAVING sum(d.delta) <> 0
UNION ALL
SELECT 'deliveries', delivery_status, 0, count(*) FROM deliveries GROUP BY delivery_status;

/**
 * Folds the counter rows of backends that are gone into backend_pid 0; returns how many rows it
 * folded. Rows a live transaction holds are skipped (SKIP LOCKED): folding never waits for a
 * writer, so it cannot deadlock with one. A pid taken again by a new backend is harmless: whatever
 * value a deleted row had is what is added to row 0, in the same statement. One folder at a time
 * (an advisory lock; the others return 0 at once).
 */
CREATE FUNCTION fold_metric_counters() RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
  folded integer;
BEGIN
  IF NOT pg_try_advisory_xact_lock(7311542007) THEN
    RETURN 0;
  END IF;
  WITH gone AS (
    SELECT metric, label, backend_pid FROM metric_counters
     WHERE backend_pid <> 0 AND backend_pid NOT IN (SELECT pid FROM pg_stat_activity WHERE pid IS NOT NULL)
       FOR UPDATE SKIP LOCKED
  ), deleted AS (
    DELETE FROM metric_counters c USING gone g
     WHERE (c.metric, c.label, c.backend_pid) = (g.metric, g.label, g.backend_pid)
    RETURNING c.metric, c.label, c.value
  ), added AS (
    INSERT INTO metric_counters AS c (metric, label, backend_pid, value)
    SELECT metric, label, 0, sum(value) FROM deleted GROUP BY metric, label
    ON CONFLICT (metric, label, backend_pid) DO UPDATE SET value = c.value + excluded.value
  )
  SELECT count(*) INTO folded FROM deleted;
  RETURN folded;
END $$;
