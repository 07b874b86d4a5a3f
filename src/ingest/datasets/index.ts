import type { DatasetDef } from './types.ts';
import { webhookEvents } from './webhook-events.ts';

export type { ColumnDef, ColumnType, DatasetDef } from './types.ts';
export { webhookEvents } from './webhook-events.ts';

export const datasets: ReadonlyMap<string, DatasetDef> = new Map([[webhookEvents.name, webhookEvents]]);

export function getDataset(name: string): DatasetDef | undefined {
  return datasets.get(name);
}
