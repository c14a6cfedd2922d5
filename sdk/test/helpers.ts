import { vi } from 'vitest';
import { Client } from '../src/client';
import type { ClientEnv } from '../src/client';
import type { InitOptions } from '../src/options';
import { resolveOptions } from '../src/options';
import { MemoryStore } from '../src/storage';

export const SERVER = 'https://replayql.test';
export const ENDPOINT = `${SERVER}/v1/ingest`;

export interface Envelope {
  appId: string;
  sessionId: string;
  seq: number;
  sentAt: number;
  context: Record<string, unknown>;
  clientIp?: string;
  events: Array<Record<string, unknown> & { type: string; ts: number }>;
}

/** A fetch that answers from `responses` in turn (the last one repeats) and keeps every request body. */
export function fakeFetch(...responses: Array<() => Response | Promise<Response>>) {
  const bodies: string[] = [];
  let call = 0;
  const fetch = vi.fn(async (_url: RequestInfo | URL, init?: RequestInit) => {
    bodies.push(String(init?.body));
    const respond = responses[Math.min(call++, responses.length - 1)] ?? (() => new Response('{}'));
    return respond();
  });
  return { fetch, bodies, envelopes: () => bodies.map((body) => JSON.parse(body) as Envelope) };
}

export const ok = () => new Response('{"ok":true}', { status: 200 });

export function makeClient(options: Partial<InitOptions> = {}, env: Partial<ClientEnv> = {}) {
  const store = env.store ?? new MemoryStore();
  const http = fakeFetch(ok);
  const client = new Client('shop', resolveOptions({ serverUrl: SERVER, dom: false, console: false,
    network: false, ...options }), {
    store,
    fetch: http.fetch as unknown as typeof fetch,
    sendBeacon: null,
    compress: async (json) => json, // bodies stay readable; gzip has its own test
    now: () => Date.now(),
    random: () => 0,
    ...env,
  });
  return { client, store, http };
}

/** Let pending promise callbacks run (the transport chains a few). */
export async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await Promise.resolve();
}

/** The server's event schema (ingest/wire.py): required and optional fields per type; nothing else allowed. */
const EVENT_FIELDS: Record<string, { required: string[]; optional: string[] }> = {
  page: { required: ['url'], optional: ['title', 'referrer'] },
  click: { required: ['selector'], optional: ['text', 'x', 'y'] },
  input: { required: ['selector'], optional: [] },
  console: { required: ['level', 'message'], optional: [] },
  network: { required: ['method', 'url'], optional: ['status', 'durationMs', 'requestBytes', 'responseBytes',
    'requestHeaders', 'responseHeaders', 'requestBody', 'responseBody'] },
  error: { required: ['message'], optional: ['errorType', 'stack', 'handled', 'tags', 'extra'] },
  custom: { required: ['name'], optional: ['properties'] },
  identify: { required: ['userId'], optional: ['traits'] },
  vital: { required: ['name', 'value'], optional: [] },
  recording: { required: ['data'], optional: [] },
};

/** Problems the server would reject the event for (wrong or missing fields, null, bad timestamps). */
export function schemaProblems(event: Record<string, unknown>, sentAt: number): string[] {
  const spec = EVENT_FIELDS[String(event.type)];
  if (!spec) return [`unknown type ${String(event.type)}`];
  const problems: string[] = [];
  const allowed = new Set(['type', 'ts', ...spec.required, ...spec.optional]);
  for (const [key, value] of Object.entries(event)) {
    if (!allowed.has(key)) problems.push(`${event.type}: unknown field ${key}`);
    if (value === null) problems.push(`${event.type}: ${key} is null`);
  }
  for (const key of spec.required) if (!(key in event)) problems.push(`${event.type}: missing ${key}`);
  const ts = event.ts;
  if (!Number.isInteger(ts) || (ts as number) < sentAt - 24 * 3600 * 1000 || (ts as number) > sentAt + 60_000) {
    problems.push(`${event.type}: bad ts ${String(ts)}`);
  }
  return problems;
}

/** A request body as text: gunzipped when it starts with gzip's magic bytes, as the server does. */
export async function bodyText(body: unknown): Promise<string> {
  if (!(body instanceof Uint8Array)) return String(body);
  if (body[0] !== 0x1f || body[1] !== 0x8b) return new TextDecoder().decode(body);
  const stream = new Response(new Uint8Array(body)).body?.pipeThrough(new DecompressionStream('gzip'));
  return new Response(stream).text();
}
