import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { installFetch } from '../src/capture/fetch';
import { MAX_BODY_CHARS, NetworkRecorder } from '../src/capture/network';
import type { NetworkCaptureOptions } from '../src/capture/network';
import { installXhr } from '../src/capture/xhr';
import type { WireEvent } from '../src/events';
import { Health } from '../src/health';
import type { Sink } from '../src/sink';
import { DEFAULT_STRIP_QUERY_PARAMS } from '../src/url';
import { SERVER } from './helpers';

/** Events as the server sees them: JSON, where undefined fields are absent. */
function makeSink() {
  const events: WireEvent[] = [];
  const sink: Sink = { emit: (event) => { events.push(JSON.parse(JSON.stringify(event)) as WireEvent); }, activity: () => undefined, now: () => Date.now(),
    active: true, health: new Health() };
  return { sink, events };
}

function recorderWith(sink: Sink, options: Partial<NetworkCaptureOptions> = {}) {
  return new NetworkRecorder(sink, { captureHeaders: false, captureBodies: false,
    stripQueryParams: DEFAULT_STRIP_QUERY_PARAMS, serverUrl: SERVER, ...options });
}

function record(recorder: NetworkRecorder, url = 'https://api.test/x?token=1&a=2') {
  const request = recorder.begin('get', url, { 'x-a': '1' }, 'body');
  if (request) recorder.finish(request, { status: 200, responseBytes: 4, responseBody: 'resp' });
}

describe('NetworkRecorder', () => {
  it('sends only size and timing by default, with the URL sanitised', () => {
    const { sink, events } = makeSink();
    record(recorderWith(sink));
    expect(events).toEqual([{ type: 'network', ts: expect.any(Number), method: 'GET', url: 'https://api.test/x?a=2',
      status: 200, durationMs: expect.any(Number), requestBytes: 4, responseBytes: 4 }]);
  });

  it('ignores requests to the replayql server', () => {
    const { sink, events } = makeSink();
    record(recorderWith(sink), `${SERVER}/v1/ingest`);
    expect(events).toEqual([]);
  });

  it('lets the sanitizer change a record, and keeps only the fields the server knows', () => {
    const { sink, events } = makeSink();
    record(recorderWith(sink, { captureBodies: true, sanitizer: (entry) => ({ ...entry, url: 'https://api.test/redacted',
      responseBody: undefined, extra: 'not sent' } as never) }));
    expect(events[0]).toMatchObject({ url: 'https://api.test/redacted', requestBody: 'body' });
    expect(events[0]).not.toHaveProperty('responseBody');
    expect(events[0]).not.toHaveProperty('extra');
  });

  it('drops a record the sanitizer rejects or fails on', () => {
    const { sink, events } = makeSink();
    record(recorderWith(sink, { sanitizer: () => null }));
    record(recorderWith(sink, { sanitizer: () => { throw new Error('bug'); } }));
    expect(events).toEqual([]);
  });

  it('truncates bodies to 10,000 characters', () => {
    const { sink, events } = makeSink();
    const recorder = recorderWith(sink, { captureBodies: true });
    const request = recorder.begin('POST', 'https://api.test/', undefined, 'q'.repeat(MAX_BODY_CHARS + 5));
    if (request) recorder.finish(request, { status: 200, responseBody: 'r'.repeat(MAX_BODY_CHARS * 2) });
    const event = events[0] as { requestBody: string; responseBody: string; requestBytes: number };
    expect(event.requestBody).toHaveLength(MAX_BODY_CHARS);
    expect(event.responseBody).toHaveLength(MAX_BODY_CHARS);
    expect(event.requestBytes).toBe(MAX_BODY_CHARS + 5);
  });
});

describe('fetch and XMLHttpRequest capture', () => {
  const originalFetch = window.fetch;
  const originalXhr = { ...Object.getOwnPropertyDescriptors(XMLHttpRequest.prototype) };

  beforeEach(() => {
    window.fetch = vi.fn(async () => new Response('ok', { status: 404 })) as unknown as typeof fetch;
  });
  afterEach(() => {
    window.fetch = originalFetch;
    Object.defineProperties(XMLHttpRequest.prototype, originalXhr);
  });

  it('returns the very promise fetch returned, and records from the side', async () => {
    const { sink, events } = makeSink();
    const inner = window.fetch;
    installFetch(sink, recorderWith(sink));
    const response = await window.fetch(new Request('https://api.test/r', { method: 'PUT' }));
    expect(inner).toHaveBeenCalledTimes(1);
    expect(response.status).toBe(404);
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect(events).toEqual([expect.objectContaining({ method: 'PUT', url: 'https://api.test/r', status: 404 })]);
  });

  it('passes a synchronous throw of the wrapped fetch through unchanged', () => {
    const { sink } = makeSink();
    window.fetch = (() => { throw new SyntaxError('app bug'); }) as unknown as typeof fetch;
    installFetch(sink, recorderWith(sink));
    expect(() => window.fetch('x')).toThrow(SyntaxError);
  });

  it('records XMLHttpRequest responses and failures (no status)', async () => {
    const { sink, events } = makeSink();
    installXhr(sink, recorderWith(sink, { captureHeaders: true, captureBodies: true }));
    const load = (url: string) => new Promise<void>((resolve) => {
      const xhr = new XMLHttpRequest();
      xhr.open('GET', url);
      xhr.setRequestHeader('X-Req', 'r1');
      xhr.addEventListener('loadend', () => resolve());
      xhr.send();
    });
    await load('data:application/json,%7B%22a%22%3A1%7D');
    await load('http://127.0.0.1:1/refused'); // nothing listens on port 1: a network error
    expect(events[0]).toMatchObject({ method: 'GET', status: 200, responseBody: '{"a":1}', responseBytes: 7,
      requestHeaders: { 'x-req': 'r1' } });
    expect(events[1]).toMatchObject({ method: 'GET', url: 'http://127.0.0.1:1/refused' });
    expect(events[1]).not.toHaveProperty('status');
  });
});
