-- Compressed uploads: the worker decompresses a gzip object while it loads it (src/ingest/decompress.ts).
-- bytes_processed keeps counting stored bytes read (compressed ones for a gzip file), so progress
-- (bytes_processed / size_bytes) stays true; the CSV's own byte count is kept beside it.

ALTER TABLE uploads
  -- how the stored object is encoded; NULL until the worker has read its first bytes
  ADD COLUMN compression text CHECK (compression IN ('none', 'gzip')),
  -- bytes of CSV the loader has read, after decompression. NULL on rows loaded before this column
  -- existed: those were all uncompressed, so it equals bytes_processed (no rewrite of old rows needed).
  ADD COLUMN uncompressed_bytes_processed bigint;
