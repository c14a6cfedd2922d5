/** Network events for window.fetch. The app gets the very promise fetch returned; recording hangs off it. */
import type { NetworkRecorder, PendingRequest, RequestEnd } from './network';
import { isTextContentType, parseContentLength } from './network';
import type { Sink } from '../sink';

/** Bodies larger than this (by Content-Length) are not read for captureBodies. */
const MAX_READ_BODY_BYTES = 1024 * 1024;
const BODY_READ_TIMEOUT_MS = 5_000;

export function installFetch(sink: Sink, recorder: NetworkRecorder): void {
  const original = window.fetch;
  if (typeof original !== 'function') return;
  window.fetch = function (this: unknown, ...args: Parameters<typeof fetch>) {
    let request: PendingRequest | null = null;
    try {
      request = begin(recorder, args[0], args[1]);
    } catch {
      sink.health.internalErrors++;
    }
    const result = original.apply(this, args);
    if (request && typeof result?.then === 'function') {
      const started = request;
      result.then(
        (response) => responseEnd(response, recorder).then((end) => recorder.finish(started, end))
          .catch(() => { sink.health.internalErrors++; }),
        sink.health.guard(() => recorder.finish(started, {})),
      );
    }
    return result;
  };
}

function begin(recorder: NetworkRecorder, input: RequestInfo | URL, init: RequestInit | undefined): PendingRequest | null {
  const isRequest = typeof Request !== 'undefined' && input instanceof Request;
  const url = isRequest ? input.url : String(input);
  const method = init?.method ?? (isRequest ? input.method : 'GET');
  const headers = recorder.options.captureHeaders ? headerObject(init?.headers ?? (isRequest ? input.headers : undefined))
    : undefined;
  return recorder.begin(method, url, headers, init?.body);
}

async function responseEnd(response: Response, recorder: NetworkRecorder): Promise<RequestEnd> {
  const responseBytes = parseContentLength(response.headers.get('content-length'));
  const end: RequestEnd = { status: response.status, responseBytes };
  if (recorder.options.captureHeaders) end.responseHeaders = headerObject(response.headers);
  if (recorder.options.captureBodies && isTextContentType(response.headers.get('content-type'))
      && (responseBytes === undefined || responseBytes <= MAX_READ_BODY_BYTES)) {
    end.responseBody = await readText(response);
  }
  return end;
}

/** The body of a copy of the response, so the app's own read is untouched; given up on after a timeout. */
function readText(response: Response): Promise<string | undefined> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(undefined), BODY_READ_TIMEOUT_MS);
    response.clone().text().then(
      (text) => { clearTimeout(timer); resolve(text); },
      () => { clearTimeout(timer); resolve(undefined); },
    );
  });
}

function headerObject(init: HeadersInit | undefined): Record<string, string> | undefined {
  if (init === undefined) return undefined;
  const result: Record<string, string> = {};
  new Headers(init).forEach((value, name) => { result[name] = value; });
  return result;
}
