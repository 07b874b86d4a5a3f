// What a /metrics endpoint serves: this process's registry merged, per scrape, with gauges read
// from Postgres. Built per HTTP surface (API app, metrics server); the process registry is shared.
import { Registry } from 'prom-client';
import type pg from 'pg';
import { createDatabaseRegistry } from './database.ts';
import { processRegistry } from './registry.ts';

export interface MetricsEndpoint {
  contentType: string;
  render(): Promise<string>;
}

export function createMetricsEndpoint(pool: pg.Pool): MetricsEndpoint {
  const database = createDatabaseRegistry(pool);
  return {
    contentType: processRegistry.contentType,
    render: () => Registry.merge([processRegistry, database]).metrics(),
  };
}

export { observeDeliveryAttempt, observeLoad } from './registry.ts';
