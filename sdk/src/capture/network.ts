/** The part of network capture shared by fetch and XMLHttpRequest: which requests to record, sanitising, the
 * user's sanitizer, and the event the server accepts (only its known fields, whatever the sanitizer returns). */
import type { NetworkEvent } from '../events';
import type { NetworkOptions, NetworkRecord } from '../options';
import type { Sink } from '../sink';
import { sanitizeUrl } from '../url';
import { truncate } from '../json';

export const MAX_BODY_CHARS = 10_000;
/** Never recorded, even with captureHeaders: they are credentials. */
const SECRET_HEADERS = new Set(['authorization', 'proxy-authorization', 'cookie', 'set-cookie']);

export interface NetworkCaptureOptions extends Required<Omit<NetworkOptions, 'sanitizer'>> {
  sanitizer?: NetworkOptions['sanitizer'];
  serverUrl: string;
}

/** A request that has started; `finish` turns it into an event once it has ended. */
export interface PendingRequest {
  ts: number;
  startedAt: number;
  method: string;
  url: string;
  requestBytes?: number;
  requestHeaders?: Record<string, string>;
  requestBody?: string;
}

export interface RequestEnd {
  /** Absent when the request failed without a response (network error, CORS, abort). */
  status?: number;
  responseBytes?: number;
  responseHeaders?: Record<string, string>;
  responseBody?: string;
}

export class NetworkRecorder {
  constructor(private readonly sink: Sink, readonly options: NetworkCaptureOptions) {}

  /** The request's start, or null for requests not recorded (the SDK's own, to the replayql server). */
  begin(method: string, rawUrl: string, headers: Record<string, string> | undefined, body: unknown): PendingRequest | null {
    if (!this.sink.active) return null;
    const url = absoluteUrl(rawUrl);
    if (url.startsWith(this.options.serverUrl)) return null;
    return {
      ts: this.sink.now(),
      startedAt: performance.now(),
      method: (method || 'GET').toUpperCase(),
      url,
      requestBytes: bodySize(body),
      requestHeaders: this.options.captureHeaders && headers ? withoutSecrets(headers) : undefined,
      requestBody: this.options.captureBodies ? bodyText(body) : undefined,
    };
  }

  finish(request: PendingRequest, end: RequestEnd): void {
    const { ts, startedAt, ...started } = request;
    let record: NetworkRecord | null = {
      ...started,
      url: sanitizeUrl(request.url, this.options.stripQueryParams),
      status: end.status,
      durationMs: Math.max(0, Math.round(performance.now() - startedAt)),
      responseBytes: end.responseBytes,
      responseHeaders: this.options.captureHeaders && end.responseHeaders ? withoutSecrets(end.responseHeaders) : undefined,
      responseBody: this.options.captureBodies && end.responseBody !== undefined
        ? truncate(end.responseBody, MAX_BODY_CHARS) : undefined,
    };
    if (this.options.sanitizer) {
      try {
        record = this.options.sanitizer(record);
      } catch {
        record = null; // a sanitizer that fails cannot vouch for the record
      }
    }
    const event = record && this.toEvent(record, ts);
    if (event) this.sink.emit(event);
  }

  private toEvent(record: NetworkRecord, ts: number): NetworkEvent | null {
    if (typeof record !== 'object' || typeof record.url !== 'string' || record.url === '') return null;
    const { captureHeaders, captureBodies } = this.options;
    return {
      type: 'network',
      ts,
      method: typeof record.method === 'string' && record.method ? record.method : 'GET',
      url: record.url,
      status: integerIn(record.status, 0, 999),
      durationMs: typeof record.durationMs === 'number' && record.durationMs >= 0 && record.durationMs <= 86_400_000
        ? record.durationMs : undefined,
      requestBytes: integerIn(record.requestBytes, 0, Number.MAX_SAFE_INTEGER),
      responseBytes: integerIn(record.responseBytes, 0, Number.MAX_SAFE_INTEGER),
      requestHeaders: captureHeaders ? stringMap(record.requestHeaders) : undefined,
      responseHeaders: captureHeaders ? stringMap(record.responseHeaders) : undefined,
      requestBody: captureBodies && typeof record.requestBody === 'string'
        ? truncate(record.requestBody, MAX_BODY_CHARS) : undefined,
      responseBody: captureBodies && typeof record.responseBody === 'string'
        ? truncate(record.responseBody, MAX_BODY_CHARS) : undefined,
    };
  }
}

/** Response bodies worth reading as text; event streams never end, so they are not read. */
export function isTextContentType(contentType: string | null): boolean {
  return contentType !== null && !/event-stream/i.test(contentType)
    && /json|text\/|xml|javascript|x-www-form-urlencoded|graphql/i.test(contentType);
}

export function parseContentLength(value: string | null): number | undefined {
  return value !== null && /^\d+$/.test(value.trim()) ? Number(value.trim()) : undefined;
}

function absoluteUrl(url: string): string {
  try {
    return new URL(url, location.href).href;
  } catch {
    return url;
  }
}

function withoutSecrets(headers: Record<string, string>): Record<string, string> {
  const kept: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (!SECRET_HEADERS.has(name.toLowerCase())) kept[name.toLowerCase()] = value;
  }
  return kept;
}

function bodySize(body: unknown): number | undefined {
  if (typeof body === 'string') return body.length;
  if (typeof Blob !== 'undefined' && body instanceof Blob) return body.size;
  if (body instanceof ArrayBuffer || ArrayBuffer.isView(body)) return body.byteLength;
  if (body instanceof URLSearchParams) return body.toString().length;
  return undefined; // FormData, streams: not cheaply known
}

function bodyText(body: unknown): string | undefined {
  if (typeof body === 'string') return truncate(body, MAX_BODY_CHARS);
  if (body instanceof URLSearchParams) return truncate(body.toString(), MAX_BODY_CHARS);
  return undefined;
}

function integerIn(value: unknown, min: number, max: number): number | undefined {
  return typeof value === 'number' && Number.isInteger(value) && value >= min && value <= max ? value : undefined;
}

function stringMap(value: unknown): Record<string, string> | undefined {
  if (value === null || typeof value !== 'object') return undefined;
  const result: Record<string, string> = {};
  for (const [key, item] of Object.entries(value)) if (typeof item === 'string') result[key] = item;
  return result;
}
