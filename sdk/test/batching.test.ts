import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { cutBatches, MAX_BATCH_CHARS, MAX_EVENTS_PER_BATCH } from '../src/batch';
import type { BufferedEvent } from '../src/buffer';
import { FLUSH_AT_BYTES } from '../src/client';
import type { Envelope } from './helpers';
import { makeClient, settle } from './helpers';

const NOW = Date.parse('2025-03-01T10:00:00Z');
const fields = { appId: 'shop', sessionId: 'rq-1', sentAt: NOW, context: { tabId: 't-1' } };

function events(count: number, size = 10): BufferedEvent[] {
  return Array.from({ length: count }, (_, i) => {
    const json = JSON.stringify({ type: 'custom', ts: NOW, name: 'e'.repeat(size), properties: { i } });
    return { json, ts: NOW };
  });
}

describe('cutBatches', () => {
  it('splits at 5,000 events and numbers batches in order', () => {
    let seq = 7;
    const { batches } = cutBatches(events(MAX_EVENTS_PER_BATCH * 2 + 1), fields, MAX_BATCH_CHARS, () => seq++);
    const parsed = batches.map((batch) => JSON.parse(batch.json) as Envelope);
    expect(parsed.map((batch) => batch.seq)).toEqual([7, 8, 9]);
    expect(parsed.map((batch) => batch.events.length)).toEqual([5_000, 5_000, 1]);
    expect(parsed[2]?.events[0]?.properties).toEqual({ i: 10_000 });
  });

  it('keeps every batch within the character limit, the envelope included', () => {
    const input = events(40, 1_000);
    const limit = 8 * 1_000;
    let seq = 0;
    const { batches, dropped } = cutBatches(input, fields, limit, () => seq++);
    expect(dropped).toBe(0);
    for (const batch of batches) expect(batch.json.length).toBeLessThanOrEqual(limit);
    const all = batches.flatMap((batch) => (JSON.parse(batch.json) as Envelope).events);
    expect(all.map((event) => (event.properties as { i: number }).i)).toEqual(input.map((_, i) => i));
    expect(batches.length).toBeGreaterThan(1);
  });

  it('writes the envelope the server expects', () => {
    const { batches } = cutBatches(events(1), { ...fields, clientIp: '0.0.0.0' }, MAX_BATCH_CHARS, () => 0);
    expect(JSON.parse(batches[0]?.json ?? '')).toEqual({
      appId: 'shop', sessionId: 'rq-1', seq: 0, sentAt: NOW, context: { tabId: 't-1' }, clientIp: '0.0.0.0',
      events: [JSON.parse(events(1)[0]?.json ?? '')],
    });
  });

  it('drops events too old for the server or too large for any batch, without using a seq', () => {
    const old = { json: '{"type":"custom","ts":1,"name":"old"}', ts: NOW - 24 * 3600 * 1000 - 1 };
    const huge = events(1, 5_000)[0] as BufferedEvent;
    let seq = 0;
    const { batches, dropped } = cutBatches([old, huge, ...events(2)], fields, 2_000, () => seq++);
    expect(dropped).toBe(2);
    expect(batches).toHaveLength(1);
    expect(seq).toBe(1);
  });
});

describe('client batching', () => {
  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(NOW);
  });
  afterEach(() => {
    vi.clearAllTimers();
    vi.useRealTimers();
  });

  it('sends a batch every flushIntervalMs with increasing seq and context on each', async () => {
    const { client, http } = makeClient({ flushIntervalMs: 5_000 });
    client.start();
    client.track('one');
    expect(http.fetch).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(5_000);
    client.track('two');
    await vi.advanceTimersByTimeAsync(5_000);
    const sent = http.envelopes();
    expect(sent.map((batch) => batch.seq)).toEqual([0, 1]);
    expect(sent[0]?.events.map((event) => event.type)).toEqual(['page', 'custom']);
    expect(sent[1]?.events).toEqual([expect.objectContaining({ type: 'custom', name: 'two' })]);
    for (const batch of sent) {
      expect(batch.context).toMatchObject({ sdk: { name: 'replayql-browser', version: '0.1.0' } });
      expect(batch.context.tabId).toMatch(/^t-/);
      expect(batch.clientIp).toBeUndefined();
    }
    expect(http.fetch.mock.calls[0]?.[0]).toBe('https://replayql.test/v1/ingest');
  });

  it('sends at once when 1 MiB is buffered', async () => {
    const { client, http } = makeClient({ flushIntervalMs: 60_000 });
    const chunk = 'x'.repeat(100_000);
    const needed = Math.ceil(FLUSH_AT_BYTES / chunk.length);
    for (let i = 0; i < needed - 1; i++) client.track('big', { chunk });
    await settle();
    expect(http.fetch).not.toHaveBeenCalled();
    client.track('big', { chunk });
    await settle();
    expect(http.fetch).toHaveBeenCalledTimes(1);
    expect(http.envelopes()[0]?.events).toHaveLength(needed);
  });

  it('sends clientIp 0.0.0.0 only when shouldCaptureIP is false', async () => {
    const { client, http } = makeClient({ shouldCaptureIP: false });
    client.track('x');
    await client.flush();
    expect(http.envelopes()[0]?.clientIp).toBe('0.0.0.0');
  });

  it('sends one request at a time, in seq order', async () => {
    let release: () => void = () => undefined;
    const { client, http } = makeClient({}, {});
    http.fetch.mockImplementationOnce(async (_url, init) => {
      http.bodies.push(String(init?.body));
      await new Promise<void>((resolve) => { release = resolve; });
      return new Response('{}');
    });
    client.track('a');
    client.sendBuffered();
    client.track('b');
    client.sendBuffered();
    await settle();
    expect(http.fetch).toHaveBeenCalledTimes(1);
    release();
    await settle();
    expect(http.envelopes().map((batch) => batch.seq)).toEqual([0, 1]);
  });
});
