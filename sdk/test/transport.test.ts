import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Batch } from '../src/batch';
import { Health } from '../src/health';
import { MemoryStore } from '../src/storage';
import { PENDING_KEY, retryAfterMs, Transport, UNLOAD_BATCH_BYTES } from '../src/transport';
import type { TransportDeps } from '../src/transport';
import { ENDPOINT, fakeFetch, makeClient, ok, settle } from './helpers';

const NOW = Date.parse('2025-03-01T10:00:00Z');

function batch(seq: number, json = `{"seq":${seq}}`): Batch {
  return { sessionId: 'rq-1', seq, json };
}

function makeTransport(http: ReturnType<typeof fakeFetch>, deps: Partial<TransportDeps> = {}) {
  const health = new Health();
  const store = new MemoryStore();
  const transport = new Transport({
    endpoint: ENDPOINT,
    fetch: http.fetch as unknown as typeof fetch,
    sendBeacon: null,
    compress: async (json) => `gz:${json}`,
    store,
    health,
    random: () => 0,
    now: () => Date.now(),
    setTimeout: (callback, ms) => setTimeout(callback, ms),
    ...deps,
  });
  return { transport, health, store };
}

const status = (code: number, headers: Record<string, string> = {}) => () => new Response('{}', { status: code, headers });
const networkError = () => Promise.reject(new TypeError('Failed to fetch'));

describe('Transport', () => {
  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(NOW);
  });
  afterEach(() => {
    vi.clearAllTimers();
    vi.useRealTimers();
  });

  it('posts a simple CORS request: text/plain, no credentials, no other headers', async () => {
    const http = fakeFetch(ok);
    const { transport } = makeTransport(http);
    transport.enqueue([batch(0)]);
    await settle();
    const [url, init] = http.fetch.mock.calls[0] ?? [];
    expect(url).toBe(ENDPOINT);
    expect(init).toEqual({ method: 'POST', body: 'gz:{"seq":0}', credentials: 'omit',
      headers: { 'Content-Type': 'text/plain;charset=UTF-8' } });
  });

  it.each([503, 429])('resends the same seq and body after Retry-After on %i', async (code) => {
    const http = fakeFetch(status(code, { 'Retry-After': '3' }), ok);
    const { transport, health } = makeTransport(http);
    transport.enqueue([batch(4)]);
    await settle();
    expect(http.fetch).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(2_999);
    expect(http.fetch).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(http.fetch).toHaveBeenCalledTimes(2);
    expect(http.bodies[1]).toBe(http.bodies[0]);
    expect(health.retries).toBe(1);
    expect(transport.queuedBatches).toBe(0);
  });

  it('stamps a resent batch with the time it leaves, so the server does not shift its events', async () => {
    const http = fakeFetch(status(503, { 'Retry-After': '3' }), ok);
    const { transport } = makeTransport(http);
    const json = `{"appId":"shop","sessionId":"rq-1","seq":2,"sentAt":${NOW},"events":[{"type":"custom","ts":${NOW},`
      + `"name":"x","properties":{"note":"\\"sentAt\\":1"}}]}`;
    transport.enqueue([batch(2, json)]);
    await vi.advanceTimersByTimeAsync(3_000);
    expect(http.bodies).toEqual([`gz:${json}`, `gz:${json.replace(`"sentAt":${NOW}`, `"sentAt":${NOW + 3_000}`)}`]);
  });

  it('waits 1 s on 429 without Retry-After', async () => {
    const http = fakeFetch(status(429), ok);
    const { transport } = makeTransport(http);
    transport.enqueue([batch(0)]);
    await vi.advanceTimersByTimeAsync(999);
    expect(http.fetch).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(http.fetch).toHaveBeenCalledTimes(2);
  });

  it('backs off exponentially on network errors and 5xx, capped at 30 s', async () => {
    const http = fakeFetch(networkError, networkError, status(500), networkError, networkError, networkError,
      networkError, ok);
    const { transport, health } = makeTransport(http);
    transport.enqueue([batch(0)]);
    await settle();
    const expectedDelays = [1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000];
    for (const [index, delay] of expectedDelays.entries()) {
      await vi.advanceTimersByTimeAsync(delay - 1);
      expect(http.fetch).toHaveBeenCalledTimes(index + 1);
      await vi.advanceTimersByTimeAsync(1);
      expect(http.fetch).toHaveBeenCalledTimes(index + 2);
    }
    expect(health.retries).toBe(7);
    expect(new Set(http.bodies).size).toBe(1);
    expect(transport.queuedBatches).toBe(0);
  });

  it('adds jitter that only shortens the delay', async () => {
    const http = fakeFetch(networkError, ok);
    const { transport } = makeTransport(http, { random: () => 1 });
    transport.enqueue([batch(0)]);
    await vi.advanceTimersByTimeAsync(799);
    expect(http.fetch).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(http.fetch).toHaveBeenCalledTimes(2);
  });

  it.each([400, 404, 413, 415])('drops the batch on %i, counts a send failure, and goes on', async (code) => {
    const http = fakeFetch(status(code), ok);
    const { transport, health } = makeTransport(http);
    transport.enqueue([batch(0), batch(1)]);
    await settle();
    await settle();
    expect(http.bodies).toEqual(['gz:{"seq":0}', 'gz:{"seq":1}']);
    expect(health.sendFailures).toBe(1);
    expect(health.retries).toBe(0);
    expect(transport.queuedBatches).toBe(0);
  });

  it('whenIdle resolves while the head batch waits for a retry', async () => {
    const http = fakeFetch(networkError, ok);
    const { transport } = makeTransport(http);
    transport.enqueue([batch(0)]);
    await transport.whenIdle();
    expect(transport.queuedBatches).toBe(1);
  });

  it('on unload sends everything with keepalive and stores what is unacknowledged', async () => {
    const http = fakeFetch(() => new Promise<Response>(() => undefined)); // the page is gone: no answer
    const { transport, store } = makeTransport(http);
    transport.sendAllNow([batch(0), batch(1)]);
    expect(http.fetch).toHaveBeenCalledTimes(2);
    expect(http.fetch.mock.calls[0]?.[1]).toMatchObject({ keepalive: true, body: '{"seq":0}',
      headers: { 'Content-Type': 'text/plain;charset=UTF-8' } });
    expect(JSON.parse(store.get(PENDING_KEY) ?? '[]')).toEqual([
      { sessionId: 'rq-1', seq: 0, json: '{"seq":0}' }, { sessionId: 'rq-1', seq: 1, json: '{"seq":1}' }]);
  });

  it('uses sendBeacon for batches over 60 KiB', () => {
    const http = fakeFetch(ok);
    const sendBeacon = vi.fn((_url: string, _data: Blob) => true);
    const { transport } = makeTransport(http, { sendBeacon });
    transport.sendAllNow([batch(0, `"${'x'.repeat(UNLOAD_BATCH_BYTES)}"`)]);
    expect(http.fetch).not.toHaveBeenCalled();
    expect(sendBeacon).toHaveBeenCalledTimes(1);
    expect(sendBeacon.mock.calls[0]?.[0]).toBe(ENDPOINT);
    expect(sendBeacon.mock.calls[0]?.[1].type).toBe('text/plain;charset=utf-8');
    expect(transport.queuedBatches).toBe(0);
  });

  it('forgets stored batches once acknowledged, and a new page load resends what is left', async () => {
    const http = fakeFetch(ok);
    const { transport, store } = makeTransport(http);
    transport.sendAllNow([batch(0)]);
    await settle();
    expect(store.get(PENDING_KEY)).toBeNull();

    const lost = fakeFetch(() => Promise.reject(new TypeError('unloaded')));
    const before = makeTransport(lost);
    before.transport.sendAllNow([batch(5)]);
    const afterReload = fakeFetch(ok);
    const { transport: next } = makeTransport(afterReload, { store: before.store });
    next.restorePending();
    await settle();
    expect(afterReload.bodies).toEqual(['gz:{"seq":5}']);
    expect(before.store.get(PENDING_KEY)).toBeNull();
  });
});

describe('retryAfterMs', () => {
  it('reads seconds and HTTP dates, and defaults to 1 s', () => {
    expect(retryAfterMs('7', NOW)).toBe(7_000);
    expect(retryAfterMs(null, NOW)).toBe(1_000);
    expect(retryAfterMs('soon', NOW)).toBe(1_000);
    expect(retryAfterMs(new Date(NOW + 12_000).toUTCString(), NOW)).toBe(12_000);
  });
});

describe('client on page hide', () => {
  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(NOW);
  });
  afterEach(() => {
    vi.clearAllTimers();
    vi.useRealTimers();
  });

  it('splits the buffer into keepalive-sized batches with consecutive seqs', () => {
    const { client, http } = makeClient();
    const chunk = 'y'.repeat(20_000);
    for (let i = 0; i < 10; i++) client.track('t', { chunk });
    client.sendBeforeUnload();
    const sent = http.envelopes();
    expect(sent.length).toBeGreaterThan(3);
    expect(sent.map((batch) => batch.seq)).toEqual(sent.map((_, i) => i));
    for (const body of http.bodies) expect(body.length).toBeLessThanOrEqual(UNLOAD_BATCH_BYTES);
    expect(sent.flatMap((batch) => batch.events)).toHaveLength(10);
  });
});
