/** Sending batches: one request in flight, in seq order, with retries that keep each batch's seq and body
 * (the server dedupes on (sessionId, seq)), a synchronous path for pages going away, and unacknowledged
 * batches kept in sessionStorage to be sent again after a reload. */
import { stamped } from './batch';
import type { Batch } from './batch';
import type { Compress } from './compress';
import type { Health } from './health';
import { utf8Length } from './json';
import type { KeyValueStore } from './storage';

export const PENDING_KEY = 'replayql.pending';
export const MAX_PENDING_CHARS = 2 * 1024 * 1024;
/** keepalive requests share a 64 KiB budget per page; stay under it. */
export const UNLOAD_BATCH_BYTES = 60 * 1024;
const CONTENT_TYPE = 'text/plain;charset=UTF-8';
const BACKOFF_BASE_MS = 1_000;
const BACKOFF_CAP_MS = 30_000;
const MAX_RETRY_AFTER_MS = 10 * 60_000;
/** A body this old is stamped with the time again (and compressed again) before it is sent. */
const RESTAMP_AFTER_MS = 1_000;
/** A server error that persists this long is a bug in the batch or the server, not a hiccup: give up. */
const MAX_SERVER_ERROR_ATTEMPTS = 10;

export interface TransportDeps {
  endpoint: string;
  fetch: typeof fetch;
  sendBeacon: ((url: string, data: Blob) => boolean) | null;
  compress: Compress;
  store: KeyValueStore;
  health: Health;
  random: () => number;
  now: () => number;
  setTimeout: (callback: () => void, ms: number) => unknown;
}

type Outcome = { kind: 'done' } | { kind: 'drop' } | { kind: 'retry'; delayMs: number; serverError: boolean };

export class Transport {
  private queue: Batch[] = [];
  private busy = false;
  private waitingToRetry = false;
  private failedAttempts = 0;
  private pendingStored = false;
  private idleWaiters: Array<() => void> = [];

  constructor(private readonly deps: TransportDeps) {}

  get queuedBatches(): number {
    return this.queue.length;
  }

  enqueue(batches: Batch[]): void {
    this.queue.push(...batches);
    this.pump();
  }

  /** Resolves once the queue is empty or its head waits for a retry: what could be sent now, was. */
  whenIdle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** The page may be going away: start `batches` and every unacknowledged one now, with requests the browser
   * finishes after unload, and keep them in sessionStorage in case it does not. */
  sendAllNow(batches: Batch[]): void {
    this.queue.push(...batches); // not pumped: the keepalive copies go first, the ordinary path after them
    this.storePending();
    for (const batch of this.queue) {
      if (batch.sentOnUnload) continue;
      batch.sentOnUnload = true;
      const json = stamped(batch.json, this.deps.now());
      if (utf8Length(json) <= UNLOAD_BATCH_BYTES) this.sendKeepalive(batch, json);
      else if (this.deps.sendBeacon?.(this.deps.endpoint, new Blob([json], { type: CONTENT_TYPE }))) {
        this.remove(batch); // queued by the browser; the stored copy covers the rare loss
      }
    }
  }

  /** Batches a previous page load of this tab left unacknowledged. */
  restorePending(): void {
    const stored = this.deps.store.get(PENDING_KEY);
    if (stored === null) return;
    this.deps.store.remove(PENDING_KEY);
    try {
      const items: unknown = JSON.parse(stored);
      if (!Array.isArray(items)) return;
      const batches = items.filter(isStoredBatch);
      this.queue.unshift(...batches.map(({ sessionId, seq, json }) => ({ sessionId, seq, json })));
      this.pump();
    } catch {
      this.deps.health.internalErrors++;
    }
  }

  private sendKeepalive(batch: Batch, json: string): void {
    let request: Promise<Response>;
    try {
      request = this.deps.fetch(this.deps.endpoint, {
        method: 'POST',
        body: json,
        keepalive: true,
        credentials: 'omit',
        headers: { 'Content-Type': CONTENT_TYPE },
      });
    } catch {
      return; // the queue and the stored copy still hold it
    }
    request.then((response) => {
      if (response.ok) this.acknowledge(batch);
    }, () => {
      // over the keepalive budget or offline: the queue and the stored copy still hold it
    });
  }

  private pump(): void {
    if (this.busy || this.waitingToRetry) return;
    const batch = this.queue[0];
    if (!batch) {
      this.notifyIdle();
      return;
    }
    this.busy = true;
    this.attempt(batch).then((outcome) => {
      this.busy = false;
      this.settle(batch, outcome);
    }, () => {
      this.busy = false;
      this.deps.health.internalErrors++;
      this.settle(batch, { kind: 'retry', delayMs: this.backoffMs(), serverError: false });
    });
  }

  private async attempt(batch: Batch): Promise<Outcome> {
    const now = this.deps.now();
    if (batch.body === undefined || now - (batch.stampedAt ?? 0) > RESTAMP_AFTER_MS) {
      batch.json = stamped(batch.json, now);
      batch.stampedAt = now;
      batch.body = await this.deps.compress(batch.json);
    }
    let response: Response;
    try {
      response = await this.deps.fetch(this.deps.endpoint, {
        method: 'POST',
        body: batch.body,
        credentials: 'omit',
        headers: { 'Content-Type': CONTENT_TYPE },
      });
    } catch {
      return { kind: 'retry', delayMs: this.backoffMs(), serverError: false };
    }
    const status = response.status;
    if (status >= 200 && status < 300) return { kind: 'done' };
    if (status === 429 || status === 503) {
      return { kind: 'retry', delayMs: retryAfterMs(response.headers.get('Retry-After'), Date.now()), serverError: false };
    }
    if (status >= 500 || status === 408) return { kind: 'retry', delayMs: this.backoffMs(), serverError: true };
    return { kind: 'drop' }; // 400, 404, 413, 415 …: sending it again cannot help
  }

  private settle(batch: Batch, outcome: Outcome): void {
    const stillQueued = this.queue.includes(batch); // a keepalive copy may have been acknowledged meanwhile
    if (outcome.kind === 'retry' && stillQueued) {
      this.failedAttempts++;
      if (!outcome.serverError || this.failedAttempts < MAX_SERVER_ERROR_ATTEMPTS) {
        this.deps.health.retries++;
        this.waitingToRetry = true;
        this.notifyIdle();
        this.deps.setTimeout(() => {
          this.waitingToRetry = false;
          this.pump();
        }, outcome.delayMs);
        return;
      }
    }
    if (outcome.kind !== 'done' && stillQueued) this.deps.health.sendFailures++;
    this.failedAttempts = 0;
    this.acknowledge(batch);
  }

  /** Forget a batch: sent, or given up on. */
  private acknowledge(batch: Batch): void {
    this.remove(batch);
    if (this.pendingStored) this.storePending();
    this.pump();
  }

  private remove(batch: Batch): void {
    const index = this.queue.indexOf(batch);
    if (index >= 0) this.queue.splice(index, 1);
  }

  /** Oldest first, as many as fit the bound. */
  private storePending(): void {
    const kept: Array<{ sessionId: string; seq: number; json: string }> = [];
    let chars = 0;
    for (const { sessionId, seq, json } of this.queue) {
      chars += json.length;
      if (chars > MAX_PENDING_CHARS) break;
      kept.push({ sessionId, seq, json });
    }
    this.pendingStored = kept.length > 0;
    if (this.pendingStored) this.deps.store.set(PENDING_KEY, JSON.stringify(kept));
    else this.deps.store.remove(PENDING_KEY);
  }

  /** 1 s, 2 s, 4 s … up to 30 s, each shortened by up to 20 % at random so a fleet does not retry in step. */
  private backoffMs(): number {
    const nominal = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** this.failedAttempts);
    return Math.round(nominal * (1 - 0.2 * this.deps.random()));
  }

  private isIdle(): boolean {
    return !this.busy && (this.waitingToRetry || this.queue.length === 0);
  }

  private notifyIdle(): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const resolve of waiters) resolve();
  }
}

/** Retry-After as seconds or an HTTP date; 1 s when absent or unreadable. */
export function retryAfterMs(header: string | null, now: number): number {
  const text = header?.trim() ?? '';
  let ms = 1_000;
  if (/^\d+(\.\d+)?$/.test(text)) ms = Number(text) * 1_000;
  else if (text !== '' && !Number.isNaN(Date.parse(text))) ms = Date.parse(text) - now;
  return Math.min(MAX_RETRY_AFTER_MS, Math.max(0, Math.round(ms)));
}

function isStoredBatch(value: unknown): value is { sessionId: string; seq: number; json: string } {
  const item = value as { sessionId?: unknown; seq?: unknown; json?: unknown } | null;
  return item !== null && typeof item === 'object' && typeof item.sessionId === 'string'
    && typeof item.seq === 'number' && typeof item.json === 'string';
}
