// What /metrics serves: this process's registry merged, per scrape, with gauges read from Postgres.
// Only the ops listener (server.ts) serves it; the process registry is shared by every role.
import { Registry } from 'prom-client';
import type pg from 'pg';
import { createDatabaseRegistry } from './database.ts';
import { processRegistry } from './registry.ts';

export interface MetricsEndpoint {
  contentType: string;
  render(): Promise<string>;
}

/** The /metrics body (Prometheus text format 0.0.4) and its content type; `render` never throws for the database (see database.ts). */
export function createMetricsEndpoint(pool: pg.Pool): MetricsEndpoint {
  const database = createDatabaseRegistry(pool);
  return {
    contentType: processRegistry.contentType,
    render: () => Registry.merge([processRegistry, database]).metrics(),
  };
}

export { observeDeliveryAttempt, observeLoad } from './registry.ts';
