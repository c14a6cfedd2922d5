/** init() options, their defaults, and their validation (a bad option disables the SDK, never the app). */
import type { record } from '@rrweb/record';
import type { ConsoleLevel, NetworkEvent } from './events';
import { DEFAULT_STRIP_QUERY_PARAMS } from './url';

type RecordOptions = NonNullable<Parameters<typeof record>[0]>;

/** A network request as the `sanitizer` sees it; return it (changed or not) to keep it, or null to drop it. */
export type NetworkRecord = Omit<NetworkEvent, 'type' | 'ts'>;

export interface NetworkOptions {
  /** Record request and response headers (Authorization, Cookie, Set-Cookie are never recorded). Default false. */
  captureHeaders?: boolean;
  /** Record text request and response bodies, up to 10,000 characters each. Default false. */
  captureBodies?: boolean;
  /** Query parameters removed from every recorded URL: a name containing one of these (any case) is removed. */
  stripQueryParams?: string[];
  sanitizer?: (record: NetworkRecord) => NetworkRecord | null;
}

/** rrweb's privacy and fidelity options that may be changed; see README.md for what each one loosens. */
export type DomOptions = Pick<RecordOptions,
  | 'maskAllInputs' | 'maskInputOptions' | 'maskInputFn' | 'maskTextSelector' | 'maskTextClass' | 'maskTextFn'
  | 'blockSelector' | 'ignoreClass' | 'ignoreSelector' | 'recordCanvas' | 'collectFonts' | 'inlineImages'
  | 'inlineStylesheet' | 'sampling' | 'slimDOMOptions'> & { blockClass?: string };

export interface InitOptions {
  serverUrl: string;
  release?: string;
  console?: { levels?: ConsoleLevel[] } | false;
  network?: NetworkOptions | false;
  dom?: DomOptions | false;
  /** The share of sessions recorded, 0..1, decided once per session. Default 1. */
  sampleRate?: number;
  /** false: ask the server not to locate the user by IP address. Default true. */
  shouldCaptureIP?: boolean;
  flushIntervalMs?: number;
  maxBufferBytes?: number;
  sessionTimeoutMs?: number;
}

export interface ResolvedOptions {
  serverUrl: string;
  release?: string;
  consoleLevels: ConsoleLevel[];
  network: (Required<Omit<NetworkOptions, 'sanitizer'>> & Pick<NetworkOptions, 'sanitizer'>) | false;
  dom: DomOptions | false;
  sampleRate: number;
  shouldCaptureIP: boolean;
  flushIntervalMs: number;
  maxBufferBytes: number;
  sessionTimeoutMs: number;
}

const CONSOLE_LEVELS: readonly ConsoleLevel[] = ['debug', 'info', 'log', 'warn', 'error'];
const DEFAULT_CONSOLE_LEVELS: ConsoleLevel[] = ['log', 'info', 'warn', 'error'];

/** The options with defaults filled in; throws on options that make no sense (init then does nothing). */
export function resolveOptions(options: InitOptions): ResolvedOptions {
  if (options === null || typeof options !== 'object') throw new TypeError('options must be an object');
  const { serverUrl } = options;
  if (typeof serverUrl !== 'string' || !/^https?:\/\//i.test(serverUrl)) {
    throw new TypeError('serverUrl must be an http(s) URL');
  }
  const network = options.network === false ? false : {
    captureHeaders: options.network?.captureHeaders === true,
    captureBodies: options.network?.captureBodies === true,
    stripQueryParams: stringList(options.network?.stripQueryParams) ?? DEFAULT_STRIP_QUERY_PARAMS,
    sanitizer: typeof options.network?.sanitizer === 'function' ? options.network.sanitizer : undefined,
  };
  const levels = options.console === false ? [] : options.console?.levels ?? DEFAULT_CONSOLE_LEVELS;
  return {
    serverUrl: serverUrl.replace(/\/+$/, ''),
    release: typeof options.release === 'string' ? options.release : undefined,
    consoleLevels: CONSOLE_LEVELS.filter((level) => Array.isArray(levels) && levels.includes(level)),
    network,
    dom: options.dom === false ? false : { ...(options.dom ?? {}) },
    sampleRate: numberIn(options.sampleRate, 1, 0, 1),
    shouldCaptureIP: options.shouldCaptureIP !== false,
    flushIntervalMs: numberIn(options.flushIntervalMs, 5_000, 100, 3_600_000),
    maxBufferBytes: numberIn(options.maxBufferBytes, 8 * 1024 * 1024, 64 * 1024, 512 * 1024 * 1024),
    sessionTimeoutMs: numberIn(options.sessionTimeoutMs, 30 * 60_000, 1_000, 7 * 24 * 3_600_000),
  };
}

/** `value` when it is a number, clamped to [min, max]; `fallback` when absent or not a finite number. */
function numberIn(value: unknown, fallback: number, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) return fallback;
  return Math.min(max, Math.max(min, value));
}

function stringList(value: unknown): string[] | undefined {
  return Array.isArray(value) ? value.filter((item): item is string => typeof item === 'string') : undefined;
}
