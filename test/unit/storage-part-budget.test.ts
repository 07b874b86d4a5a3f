// The part gate in front of lib-storage: what an upload may hold in hand (one part of its own, more
// from the shared budget while the store lags) and that every byte taken from the budget comes back.
// Small part sizes here: the gate counts bytes and knows nothing of S3's 5 MiB minimum.
import { setImmediate as tick } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { PartBudget, PartGate } from '../../src/storage/part-budget.ts';

const PART = 100;
const CHUNK = 30;

/** A gate whose output is read as fast as it comes (as lib-storage reads it): `out()` = bytes passed. */
function gateOf(budget: PartBudget, partsInFlight: number) {
  const gate = new PartGate(budget, PART, partsInFlight);
  let out = 0;
  gate.on('data', (chunk: Buffer) => (out += chunk.length));
  return { gate, out: () => out };
}

/** Lets the streams move every chunk they can (each write waits a turn of the event loop or so). */
async function settle(): Promise<void> {
  for (let i = 0; i < 50; i++) await tick();
}

async function offer(gate: PartGate, chunks: number): Promise<void> {
  for (let i = 0; i < chunks; i++) gate.write(Buffer.alloc(CHUNK));
  await settle();
}

describe('PartGate', () => {
  it('with nothing in the budget lets one part (and the chunk that completes it) through until it is stored', async () => {
    const budget = new PartBudget(0);
    const { gate, out } = gateOf(budget, 4);
    await offer(gate, 20);
    expect(out()).toBe(120); // 0, 30, 60, 90 ≤ 100 in hand: passed; at 120 it waits
    gate.stored(100);
    await settle();
    expect(out()).toBe(210); // 20 in hand after the part: again chunks until over one part (110)
    gate.stored(200);
    await settle();
    expect(out()).toBe(330);
    gate.destroy();
  });

  it('takes parts from the budget up to partsInFlight while the store lags, and gives them back when it catches up', async () => {
    const budget = new PartBudget(10 * PART);
    const { gate, out } = gateOf(budget, 3);
    await offer(gate, 40);
    expect(out()).toBe(330); // three slots: up to 300 in hand + one chunk
    expect(budget.available).toBe(8 * PART); // two parts beyond its own, not more than partsInFlight allows
    gate.stored(300); // the store caught up: 30 in hand, one slot is enough
    await settle();
    expect(budget.available).toBe(8 * PART); // …until the stream, still offered, filled them again
    expect(out()).toBe(630);
    gate.stored(630);
    await settle();
    expect(out()).toBe(960);
    gate.stored(960);
    await settle();
    expect(out()).toBe(1200); // all 40 chunks
    expect(budget.available).toBe(8 * PART); // the last 240 bytes are in hand: three slots
    gate.stored(1200);
    expect(budget.available).toBe(10 * PART);
    gate.end();
  });

  it('shares the budget: an upload that finds it taken goes one part at a time, and gets parts once they are back', async () => {
    const budget = new PartBudget(2 * PART);
    const a = gateOf(budget, 4);
    const b = gateOf(budget, 4);
    await offer(a.gate, 20);
    await offer(b.gate, 20);
    expect(a.out()).toBe(330); // its own part + the whole budget
    expect(b.out()).toBe(120); // its own part only
    expect(budget.available).toBe(0);
    a.gate.release(); // a ended
    expect(budget.available).toBe(2 * PART);
    b.gate.stored(100);
    await settle();
    expect(b.out()).toBe(420); // 320 in hand: its own part + the two that came back, + a chunk
    expect(budget.available).toBe(0);
    a.gate.destroy();
    b.gate.destroy();
  });

  it('gives back what it took when destroyed mid-upload (an aborted upload)', async () => {
    const budget = new PartBudget(5 * PART);
    const { gate } = gateOf(budget, 4);
    await offer(gate, 20);
    expect(budget.available).toBe(2 * PART);
    gate.destroy(new Error('client went away'));
    gate.on('error', () => {});
    await settle();
    expect(budget.available).toBe(5 * PART);
    gate.release(); // again, as putStream's finally does: nothing more is given
    expect(budget.available).toBe(5 * PART);
  });
});
