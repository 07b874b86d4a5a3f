// Which migrations to apply, and whether the database's history still matches the files: pure, so the
// rules are tested without a database. Forward only: a migration is applied once, in name order, and
// never changes afterwards.

/** A migration file: its name (`NNN_description.sql`) and the SHA-256 (hex) of its contents. */
export interface MigrationFile {
  name: string;
  checksum: string;
}

/** A row of schema_migrations: checksum null for rows recorded before checksums were kept. */
export interface AppliedMigration {
  name: string;
  checksum: string | null;
}

export interface MigrationPlan {
  /** files to apply now, in order */
  pending: MigrationFile[];
  /** applied rows without a checksum: record the file's current one (trusted on first sight) */
  backfill: MigrationFile[];
}

/** The history and the files disagree; every problem is listed, nothing was applied. */
export class MigrationHistoryError extends Error {
  override name = 'MigrationHistoryError';
  constructor(readonly problems: string[]) {
    super(`the database's migrations do not match the migration files, nothing was applied:\n  - ${problems.join('\n  - ')}`);
  }
}

/**
 * Refuses (MigrationHistoryError) when an applied migration's file was edited (checksum), deleted,
 * or when a new file sorts before the newest applied one (it would run out of order). Otherwise
 * returns the files still to apply. `files` need not be sorted.
 */
export function planMigrations(files: readonly MigrationFile[], applied: readonly AppliedMigration[]): MigrationPlan {
  const sorted = [...files].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const byName = new Map(sorted.map((f) => [f.name, f]));
  const done = new Map(applied.map((a) => [a.name, a]));
  const problems: string[] = [];
  const backfill: MigrationFile[] = [];
  for (const row of applied) {
    const file = byName.get(row.name);
    if (!file) problems.push(`${row.name} was applied but its file is gone (migrations are never deleted)`);
    else if (row.checksum === null) backfill.push(file);
    else if (row.checksum !== file.checksum) {
      problems.push(`${row.name} was edited after it was applied (checksum ${row.checksum.slice(0, 12)}… is now ${file.checksum.slice(0, 12)}…): add a new migration instead`);
    }
  }
  const newestApplied = applied.reduce<string | null>((max, a) => (max === null || a.name > max ? a.name : max), null);
  const pending = sorted.filter((f) => !done.has(f.name));
  for (const file of pending) {
    if (newestApplied !== null && file.name < newestApplied) {
      problems.push(`${file.name} is new but sorts before ${newestApplied}, which is already applied: give it a higher number`);
    }
  }
  if (problems.length > 0) throw new MigrationHistoryError(problems);
  return { pending, backfill };
}
