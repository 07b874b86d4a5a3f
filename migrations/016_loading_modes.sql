-- Loading modes (issue 10): an upload appends (as before), upserts by the dataset's key, or replaces
-- the dataset's rows. The mode is chosen when the upload is accepted; a direct upload keeps it until
-- it is completed. rows_inserted / rows_updated are set by an upsert or replace load (NULL otherwise:
-- an append inserts rows_processed rows); the rejected rows stay counted by rows_failed.

ALTER TABLE uploads
  ADD COLUMN mode text NOT NULL DEFAULT 'append' CHECK (mode IN ('append', 'upsert', 'replace')),
  ADD COLUMN rows_inserted bigint,
  ADD COLUMN rows_updated bigint;

ALTER TABLE direct_uploads
  ADD COLUMN mode text NOT NULL DEFAULT 'append' CHECK (mode IN ('append', 'upsert', 'replace'));

-- A dataset defined with a key before this migration has no unique index on it (the key was stored
-- only). Create it where the loaded rows allow; where they repeat a key, leave the table as it is: an
-- upsert into it fails with dataset_key_not_unique, and the tenant can deduplicate and apply again.
DO $$
DECLARE
  d record;
BEGIN
  FOR d IN SELECT tenant_id, name, definition -> 'key' AS key FROM datasets WHERE jsonb_typeof(definition -> 'key') = 'array' LOOP
    BEGIN
      EXECUTE format('ALTER TABLE %I.%I ADD UNIQUE (%s)',
        't_' || replace(d.tenant_id::text, '-', ''), d.name,
        (SELECT string_agg(format('%I', k), ', ' ORDER BY i) FROM jsonb_array_elements_text(d.key) WITH ORDINALITY AS x(k, i)));
    EXCEPTION WHEN unique_violation OR undefined_table THEN
      RAISE NOTICE 'dataset %.%: key index not created (%)', d.tenant_id, d.name, SQLERRM;
    END;
  END LOOP;
END $$;
