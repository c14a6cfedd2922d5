/** One running SDK: the session, the buffer, the transport and every capture, wired together. */
import { cutBatches, MAX_BATCH_CHARS } from './batch';
import type { Batch } from './batch';
import { EventBuffer } from './buffer';
import { installConsole } from './capture/console';
import { errorEvent, installErrorHandlers, messageEvent } from './capture/errors';
import type { CaptureOptions } from './capture/errors';
import { installFetch } from './capture/fetch';
import { installInteractions } from './capture/interactions';
import { PageTracker } from './capture/navigation';
import { NetworkRecorder } from './capture/network';
import { privateSelectors, Recorder } from './capture/recording';
import { installVitals } from './capture/vitals';
import { installXhr } from './capture/xhr';
import type { Compress } from './compress';
import { currentContext } from './context';
import type { WireEvent } from './events';
import { Health } from './health';
import { toJsonObject } from './json';
import type { ResolvedOptions } from './options';
import { SessionManager } from './session';
import type { Sink } from './sink';
import type { KeyValueStore } from './storage';
import { Transport, UNLOAD_BATCH_BYTES } from './transport';
import { DEFAULT_STRIP_QUERY_PARAMS } from './url';

/** A batch is cut as soon as this much is buffered, not only every flushIntervalMs. */
export const FLUSH_AT_BYTES = 1024 * 1024;
/** Batches waiting behind the one in flight. While the server is slow or away, events wait in the buffer
 * instead, where the memory bound (and its choice of what to drop) applies. */
const MAX_QUEUED_BATCHES = 2;
export const HEALTH_EVENT_NAME = 'replayql.sdk_health';

/** What the client takes from the browser, injectable for tests. */
export interface ClientEnv {
  store: KeyValueStore;
  fetch: typeof fetch;
  sendBeacon: ((url: string, data: Blob) => boolean) | null;
  compress: Compress;
  now: () => number;
  random: () => number;
}

export class Client implements Sink {
  readonly health = new Health();
  private readonly session: SessionManager;
  private readonly buffer: EventBuffer;
  private readonly transport: Transport;
  private readonly pages: PageTracker;
  private recorder: Recorder | null = null;
  private snapshotScheduled = false;

  constructor(readonly appId: string, readonly options: ResolvedOptions, private readonly env: ClientEnv) {
    this.session = new SessionManager(env.store, {
      timeoutMs: options.sessionTimeoutMs,
      sampleRate: options.sampleRate,
      now: env.now,
      random: env.random,
    });
    this.buffer = new EventBuffer(options.maxBufferBytes);
    this.transport = new Transport({
      endpoint: `${options.serverUrl}/v1/ingest`,
      fetch: env.fetch,
      sendBeacon: env.sendBeacon,
      compress: env.compress,
      store: env.store,
      health: this.health,
      random: env.random,
      now: env.now,
      setTimeout: (callback, ms) => setTimeout(callback, ms),
    });
    this.pages = new PageTracker(this, this.stripQueryParams());
  }

  get active(): boolean {
    return this.session.sampled;
  }

  /** Install every capture (each on its own: one failing leaves the others working) and start sending. */
  start(): void {
    const { options } = this;
    this.transport.restorePending();
    this.session.touch(); // a page load is a navigation
    this.pages.emitCurrent();
    const network = options.network;
    const recorder = network === false ? null
      : new NetworkRecorder(this, { ...network, serverUrl: options.serverUrl });
    const installs: Array<() => void> = [
      () => this.startRecorder(),
      () => this.pages.install(),
      () => installInteractions(this, { privateSelectors: privateSelectors(options.dom) }),
      () => installConsole(this, options.consoleLevels),
      () => recorder && installFetch(this, recorder),
      () => recorder && installXhr(this, recorder),
      () => installErrorHandlers(this),
      () => installVitals(this),
      () => this.installLifecycle(),
    ];
    for (const install of installs) this.health.guard(install)();
  }

  now(): number {
    return this.env.now();
  }

  emit(event: WireEvent): void {
    if (!this.session.sampled) return;
    let json: string | undefined;
    try {
      json = JSON.stringify(event);
    } catch {
      json = undefined;
    }
    if (json === undefined) {
      this.health.droppedEvents++;
      return;
    }
    const rrwebType = event.type === 'recording' ? event.data.type : undefined;
    const { dropped, droppedRecording } = this.buffer.add({ json, ts: event.ts, rrwebType });
    this.health.droppedEvents += dropped;
    if (droppedRecording) this.scheduleFullSnapshot();
    if (this.buffer.bytes >= FLUSH_AT_BYTES) this.sendBuffered();
  }

  activity(): void {
    if (this.session.isExpired()) this.startNewSession();
    this.session.touch();
  }

  identify(userId: string, traits?: Record<string, unknown>): void {
    if (typeof userId !== 'string' || userId === '') return;
    this.activity();
    this.emit({ type: 'identify', ts: this.now(), userId, traits: toJsonObject(traits) });
  }

  track(name: string, properties?: Record<string, unknown>): void {
    if (typeof name !== 'string' || name === '') return;
    this.activity();
    this.emit({ type: 'custom', ts: this.now(), name, properties: toJsonObject(properties) });
  }

  captureException(error: unknown, options?: CaptureOptions): void {
    this.emit(errorEvent(error, true, this.now(), options));
  }

  captureMessage(message: string, options?: CaptureOptions): void {
    this.emit(messageEvent(message, this.now(), options));
  }

  /** The replay's address in the replayql UI; null while this session is not sampled (it is not recorded). */
  sessionUrl(): string | null {
    if (!this.session.sampled) return null;
    return `${this.options.serverUrl}/#/sessions/${encodeURIComponent(this.session.id)}`;
  }

  /** Close the current session (its buffered events are sent under it) and start a new one from a fresh
   * full snapshot and page event. */
  startNewSession(): void {
    this.transport.enqueue(this.cut(MAX_BATCH_CHARS));
    this.session.restart();
    this.health.guard(() => {
      if (!this.recorder) return;
      if (!this.session.sampled) this.recorder.stop();
      else if (this.recorder.running) this.recorder.takeFullSnapshot();
      else this.recorder.start();
    })();
    this.pages.emitCurrent();
  }

  /** Send what is buffered now; resolves when everything that could be sent has been (retries aside). */
  flush(): Promise<void> {
    this.transport.enqueue(this.cut(MAX_BATCH_CHARS));
    return this.transport.whenIdle();
  }

  /** Every flushIntervalMs, and when the buffer reaches FLUSH_AT_BYTES. */
  sendBuffered(): void {
    if (this.transport.queuedBatches >= MAX_QUEUED_BATCHES) return;
    this.transport.enqueue(this.cut(MAX_BATCH_CHARS));
  }

  /** The page is hidden or going away: everything goes out now, in batches small enough for keepalive. */
  sendBeforeUnload(): void {
    this.transport.sendAllNow(this.cut(UNLOAD_BATCH_BYTES));
  }

  private cut(maxChars: number): Batch[] {
    if (this.buffer.length === 0) return [];
    const events = this.buffer.takeAll();
    if (this.health.hasNews()) {
      const ts = this.now();
      events.push({ ts, json: JSON.stringify({ type: 'custom', ts, name: HEALTH_EVENT_NAME,
        properties: this.health.takeReport() } satisfies WireEvent) });
    }
    const { batches, dropped } = cutBatches(events, {
      appId: this.appId,
      sessionId: this.session.id,
      sentAt: this.now(),
      context: currentContext(this.session.tabId, this.options.release),
      clientIp: this.options.shouldCaptureIP ? undefined : '0.0.0.0',
    }, maxChars, () => this.session.takeSeq());
    this.health.droppedEvents += dropped;
    return batches;
  }

  private startRecorder(): void {
    if (this.options.dom === false) return;
    this.recorder = new Recorder(this, this.options.dom, (data) => {
      this.emit({ type: 'recording', ts: Math.round(data.timestamp), data });
    });
    if (this.session.sampled) this.recorder.start();
  }

  /** After recording events were dropped the replay cannot continue from them; a full snapshot restarts it.
   * Taken after the current call returns, not from inside rrweb's emit. */
  private scheduleFullSnapshot(): void {
    if (this.snapshotScheduled || !this.recorder?.running) return;
    this.snapshotScheduled = true;
    setTimeout(this.health.guard(() => {
      this.snapshotScheduled = false;
      this.recorder?.takeFullSnapshot();
    }), 0);
  }

  private installLifecycle(): void {
    setInterval(this.health.guard(() => this.sendBuffered()), this.options.flushIntervalMs);
    const onHidden = this.health.guard(() => this.sendBeforeUnload());
    document.addEventListener('visibilitychange', this.health.guard(() => {
      if (document.visibilityState === 'hidden') onHidden();
    }));
    window.addEventListener('pagehide', this.health.guard(() => {
      onHidden();
      this.session.markClosed();
    }));
    window.addEventListener('pageshow', this.health.guard(() => this.session.markOpen()));
  }

  private stripQueryParams(): readonly string[] {
    return this.options.network === false ? DEFAULT_STRIP_QUERY_PARAMS : this.options.network.stripQueryParams;
  }
}
