import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { EventBuffer } from '../src/buffer';
import type { BufferedEvent } from '../src/buffer';
import { HEALTH_EVENT_NAME } from '../src/client';
import { makeClient } from './helpers';

const NOW = Date.parse('2025-03-01T10:00:00Z');

function recording(rrwebType: number, id: number, size = 100): BufferedEvent {
  const json = JSON.stringify({ type: 'recording', ts: NOW, data: { type: rrwebType, id, pad: 'p'.repeat(size) } });
  return { json, ts: NOW, rrwebType };
}

function custom(id: number, size = 100): BufferedEvent {
  return { json: JSON.stringify({ type: 'custom', ts: NOW, name: `c${id}`, properties: { pad: 'p'.repeat(size) } }),
    ts: NOW };
}

const ids = (events: BufferedEvent[]) => events.map((event) => JSON.parse(event.json).data?.id ?? JSON.parse(event.json).name);

describe('EventBuffer', () => {
  it('drops the oldest incremental recording events first', () => {
    const events = [recording(4, 1), recording(2, 2), recording(3, 3), custom(4), recording(3, 5), custom(6)];
    const total = events.reduce((sum, event) => sum + event.json.length, 0);
    const buffer = new EventBuffer(total - 1); // one event too many once all are in
    const results = events.map((event) => buffer.add(event));
    expect(results[results.length - 1]).toEqual({ dropped: 1, droppedRecording: true });
    expect(ids(buffer.takeAll())).toEqual([1, 2, 'c4', 5, 'c6']); // id 3: the oldest incremental (type 3)
  });

  it('then drops the oldest other events', () => {
    const events = [custom(1), recording(3, 2), custom(3), custom(4)];
    const budget = (events[2]?.json.length ?? 0) * 2 + 10; // room for two custom events
    const buffer = new EventBuffer(budget);
    let dropped = 0;
    for (const event of events) dropped += buffer.add(event).dropped;
    expect(ids(buffer.takeAll())).toEqual(['c3', 'c4']);
    expect(dropped).toBe(2);
  });

  it('tracks its size by JSON length', () => {
    const buffer = new EventBuffer(1_000_000);
    const event = custom(1);
    buffer.add(event);
    buffer.add(event);
    expect(buffer.bytes).toBe(event.json.length * 2);
    buffer.takeAll();
    expect(buffer.bytes).toBe(0);
  });
});

describe('client memory bound', () => {
  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(NOW);
  });
  afterEach(() => {
    vi.clearAllTimers();
    vi.useRealTimers();
  });

  it('counts dropped events and reports them in a replayql.sdk_health event', async () => {
    const { client, http } = makeClient({ maxBufferBytes: 64 * 1024 });
    const pad = 'z'.repeat(1_000);
    for (let id = 0; id < 100; id++) {
      client.emit({ type: 'recording', ts: NOW, data: { type: 3, timestamp: NOW, id, pad } as never });
    }
    client.track('kept');
    await client.flush();
    const events = http.envelopes()[0]?.events ?? [];
    const health = events.find((event) => event.name === HEALTH_EVENT_NAME);
    const recordings = events.filter((event) => event.type === 'recording');
    const dropped = 100 - recordings.length;
    expect(dropped).toBeGreaterThan(0);
    expect(health?.properties).toEqual({ droppedEvents: dropped, sendFailures: 0, retries: 0, internalErrors: 0 });
    // the newest recording events are the ones kept
    expect((recordings[recordings.length - 1]?.data as { id: number }).id).toBe(99);
    expect((recordings[0]?.data as { id: number }).id).toBe(dropped);
    expect(events.some((event) => event.name === 'kept')).toBe(true);
  });

  it('takes a new full snapshot after dropping recording events, so the replay recovers', async () => {
    vi.useRealTimers();
    document.body.innerHTML = '<p>page</p>';
    const { client, http } = makeClient({ dom: {}, maxBufferBytes: 64 * 1024 });
    client.start();
    await client.flush();
    const pad = 'z'.repeat(1_000);
    for (let id = 0; id < 100; id++) {
      client.emit({ type: 'recording', ts: Date.now(), data: { type: 3, timestamp: Date.now(), id, pad } as never });
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
    await client.flush();
    const events = http.envelopes()[1]?.events ?? [];
    const rrwebTypes = events.filter((event) => event.type === 'recording')
      .map((event) => (event.data as { type: number }).type);
    expect(rrwebTypes.slice(-2)).toEqual([4, 2]); // meta + full snapshot, after the kept incremental events
    expect(rrwebTypes.filter((type) => type === 3).length).toBeLessThan(100);
  });

  it('reports health only when something happened since the last report', async () => {
    const { client, http } = makeClient();
    client.track('a');
    await client.flush();
    expect(http.envelopes()[0]?.events.some((event) => event.name === HEALTH_EVENT_NAME)).toBe(false);
  });
});
