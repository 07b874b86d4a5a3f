// The DDL of a tenant's dataset table (src/datasets/ddl.ts): the table, its BRIN index on upload_id and
// no unique (upload_id, line_number); the key's unique index when there is a key.
import { describe, expect, it } from 'vitest';
import { createTableSql, uploadIndexSql } from '../../src/datasets/ddl.ts';
import { normaliseDefinition } from '../../src/datasets/definition.ts';

const schema = 't_0123456789abcdef0123456789abcdef';

describe('createTableSql', () => {
  it('creates the schema, the table with upload_id and line_number, then the BRIN index on upload_id', () => {
    const spec = normaliseDefinition({ name: 'readings', columns: [{ name: 'meter', type: 'text', required: true }, { name: 'kwh', type: 'numeric(10,3)' }] });
    expect(createTableSql(schema, spec)).toEqual([
      `CREATE SCHEMA IF NOT EXISTS "${schema}"`,
      `CREATE TABLE "${schema}"."readings" (\n` +
        `  upload_id uuid NOT NULL DEFAULT current_setting('app.upload_id')::uuid,\n` +
        '  line_number bigint NOT NULL,\n' +
        '  "meter" text NOT NULL,\n' +
        '  "kwh" numeric(10,3)\n' +
        ')',
      `CREATE INDEX ON "${schema}"."readings" USING brin (upload_id uuid_bloom_ops) WITH (pages_per_range = 32, autosummarize = on)`,
    ]);
  });

  it('has no unique (upload_id, line_number): the key\'s unique index is the only one', () => {
    const spec = normaliseDefinition({ name: 'orders', columns: [{ name: 'region', type: 'text' }, { name: 'order_no', type: 'bigint' }], key: ['region', 'order_no'] });
    const [, table, index] = createTableSql(schema, spec);
    expect(table!.match(/UNIQUE \([^)]*\)/g)).toEqual(['UNIQUE ("region", "order_no")']);
    expect(index).toBe(uploadIndexSql(schema, 'orders'));
  });

  it('quotes the names in the index statement', () => {
    expect(uploadIndexSql(schema, 'we"ird')).toContain(`ON "${schema}"."we""ird" USING brin (upload_id uuid_bloom_ops)`);
  });
});
