/**
 * replayql's browser SDK. Every public function is safe to call at any time: before init it does nothing,
 * and it never throws into the app (a failure inside the SDK is counted and reported to the server instead).
 */
import { Client } from './client';
import type { ClientEnv } from './client';
import type { CaptureOptions } from './capture/errors';
import { gzip } from './compress';
import type { InitOptions } from './options';
import { resolveOptions } from './options';
import { openStore } from './storage';

export type { InitOptions, NetworkOptions, NetworkRecord, DomOptions } from './options';
export type { CaptureOptions } from './capture/errors';
export type { ConsoleLevel } from './events';

let client: Client | null = null;

/** Start recording for `appId`. A second call, or one with unusable options, does nothing. */
export function init(appId: string, options: InitOptions): void {
  try {
    if (client || typeof window === 'undefined' || typeof document === 'undefined') return;
    if (typeof appId !== 'string' || appId === '') return;
    client = new Client(appId, resolveOptions(options), browserEnv());
    client.start();
  } catch {
    // unusable options or a hostile environment: the app goes on without the SDK
  }
}

export function identify(userId: string, traits?: Record<string, unknown>): void {
  withClient((running) => running.identify(userId, traits));
}

export function track(name: string, properties?: Record<string, unknown>): void {
  withClient((running) => running.track(name, properties));
}

export function captureException(error: unknown, options?: CaptureOptions): void {
  withClient((running) => running.captureException(error, options));
}

export function captureMessage(message: string, options?: CaptureOptions): void {
  withClient((running) => running.captureMessage(message, options));
}

/** Calls back with the replay's URL in the replayql UI; not at all while the session is not sampled. */
export function getSessionURL(callback: (url: string) => void): void {
  withClient((running) => {
    const url = running.sessionUrl();
    if (url !== null && typeof callback === 'function') callback(url);
  });
}

export function startNewSession(): void {
  withClient((running) => running.startNewSession());
}

/** Send what is buffered now (for tests and SPA teardown); never rejects. */
export function flush(): Promise<void> {
  try {
    return client ? client.flush().catch(() => undefined) : Promise.resolve();
  } catch {
    if (client) client.health.internalErrors++;
    return Promise.resolve();
  }
}

function withClient(action: (running: Client) => void): void {
  if (!client) return;
  try {
    action(client);
  } catch {
    client.health.internalErrors++;
  }
}

function browserEnv(): ClientEnv {
  const nativeFetch = window.fetch; // taken before capture wraps it: the SDK's own requests are not recorded
  return {
    store: openStore(),
    fetch: (input, requestInit) => nativeFetch.call(window, input, requestInit),
    sendBeacon: typeof navigator.sendBeacon === 'function' ? (url, data) => navigator.sendBeacon(url, data) : null,
    compress: gzip,
    now: () => Date.now(),
    random: Math.random,
  };
}
