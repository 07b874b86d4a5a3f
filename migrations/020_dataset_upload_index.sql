-- Dataset tables find an upload's rows through a BRIN index on upload_id (bloom) instead of the unique
-- (upload_id, line_number) btree (src/datasets/ddl.ts, uploadIndexSql): the btree made every load about
-- 2.5× slower than a bare COPY, and exactly-once rests on the load's one transaction and its attempt
-- check, not on it. For every tenant dataset (in its schema t_<tenant id hex>): drop that unique
-- constraint, whatever its name, and create the BRIN index unless the table has a BRIN index on upload_id.
-- The key's unique index stays (upserts infer it). webhook_events is not changed.
DO $$
DECLARE
  d record;
  tbl regclass;
  c record;
BEGIN
  FOR d IN SELECT tenant_id, name FROM datasets ORDER BY tenant_id, name LOOP
    tbl := to_regclass(format('%I.%I', 't_' || replace(d.tenant_id::text, '-', ''), d.name));
    CONTINUE WHEN tbl IS NULL; -- a definition whose table is gone: nothing to convert
    FOR c IN
      SELECT con.conname FROM pg_constraint con
       WHERE con.conrelid = tbl AND con.contype = 'u'
         AND con.conkey::smallint[] = ARRAY[
               (SELECT attnum FROM pg_attribute WHERE attrelid = tbl AND attname = 'upload_id'),
               (SELECT attnum FROM pg_attribute WHERE attrelid = tbl AND attname = 'line_number')]::smallint[]
    LOOP
      EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', tbl, c.conname);
    END LOOP;
    IF NOT EXISTS (
      SELECT 1 FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_am am ON am.oid = ic.relam
       WHERE i.indrelid = tbl AND am.amname = 'brin'
         AND i.indkey[0] = (SELECT attnum FROM pg_attribute WHERE attrelid = tbl AND attname = 'upload_id'))
    THEN
      EXECUTE format('CREATE INDEX ON %s USING brin (upload_id uuid_bloom_ops) WITH (pages_per_range = 32, autosummarize = on)', tbl);
    END IF;
  END LOOP;
END $$;
