-- Input formats (issue 10): how an upload's file is written — delimiter, encoding, date spelling, decimal
-- separator, quote rules (src/ingest/csv/input-format.ts). uploads.input_format is the format resolved when
-- the upload is accepted (its own fields over its dataset's `format` over the defaults), every key set: the
-- worker loads the file with it and GET /uploads/:id shows it. NULL on uploads accepted before this
-- migration: they were RFC 4180 / UTF-8, the defaults. direct_uploads.input_format holds the fields the
-- client stated (defaults left out) until the upload is completed and resolved.

ALTER TABLE uploads ADD COLUMN input_format jsonb CHECK (jsonb_typeof(input_format) = 'object');

ALTER TABLE direct_uploads ADD COLUMN input_format jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(input_format) = 'object');
