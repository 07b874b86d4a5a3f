-- Dry run and undo of a load (issue 10).
-- dry_run: the upload is parsed and validated in full (counts, errors.csv) and loads nothing (Google
-- AIP-163 validate_only); chosen when the upload is accepted, kept by a direct upload until completed.
-- rows_removed_at / rows_removed: DELETE /uploads/:id/rows took back the rows an append loaded (NULL
-- while they are in place); rows_removed is how many rows were still the upload's when it did.

ALTER TABLE uploads
  ADD COLUMN dry_run boolean NOT NULL DEFAULT false,
  ADD COLUMN rows_removed_at timestamptz,
  ADD COLUMN rows_removed bigint,
  ADD CONSTRAINT uploads_rows_removed_check CHECK ((rows_removed_at IS NULL) = (rows_removed IS NULL));

ALTER TABLE direct_uploads
  ADD COLUMN dry_run boolean NOT NULL DEFAULT false;

ALTER TABLE outbox_events DROP CONSTRAINT outbox_events_event_type_check;
ALTER TABLE outbox_events ADD CONSTRAINT outbox_events_event_type_check
  CHECK (event_type IN ('upload.processing', 'upload.completed', 'upload.failed', 'upload.rows_removed', 'endpoint.disabled'));
