// The migration history rules, without a database: apply in order, refuse edited, deleted or
// out-of-order files, backfill checksums of rows recorded before checksums were kept.
import { describe, expect, it } from 'vitest';
import { MigrationHistoryError, planMigrations } from '../../src/db/migration-plan.ts';

const f = (name: string, checksum = `sum-${name}`) => ({ name, checksum });

describe('planMigrations', () => {
  it('applies what is not applied yet, in name order', () => {
    const plan = planMigrations([f('003_c.sql'), f('001_a.sql'), f('002_b.sql')], [{ name: '001_a.sql', checksum: 'sum-001_a.sql' }]);
    expect(plan.pending.map((p) => p.name)).toEqual(['002_b.sql', '003_c.sql']);
    expect(plan.backfill).toEqual([]);
    expect(planMigrations([f('001_a.sql')], []).pending).toEqual([f('001_a.sql')]);
  });

  it('backfills the checksum of rows recorded before checksums were kept', () => {
    const plan = planMigrations([f('001_a.sql'), f('002_b.sql')], [{ name: '001_a.sql', checksum: null }]);
    expect(plan.backfill).toEqual([f('001_a.sql')]);
    expect(plan.pending).toEqual([f('002_b.sql')]);
  });

  it('refuses, listing every problem: an edited applied file, a deleted one, a new one numbered too low', () => {
    const files = [f('001_a.sql', 'changed'), f('002_b.sql'), f('004_d.sql')];
    const applied = [
      { name: '001_a.sql', checksum: 'original' },
      { name: '003_c.sql', checksum: 'sum-003_c.sql' },
      { name: '004_d.sql', checksum: 'sum-004_d.sql' },
    ];
    let err: unknown;
    try {
      planMigrations(files, applied);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(MigrationHistoryError);
    const problems = (err as MigrationHistoryError).problems;
    expect(problems).toHaveLength(3);
    expect(problems[0]).toMatch(/001_a\.sql was edited after it was applied/);
    expect(problems[1]).toMatch(/003_c\.sql was applied but its file is gone/);
    expect(problems[2]).toMatch(/002_b\.sql is new but sorts before 004_d\.sql/);
    expect((err as Error).message).toMatch(/nothing was applied/);
  });
});
