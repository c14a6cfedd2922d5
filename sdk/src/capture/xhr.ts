/** Network events for XMLHttpRequest, by patching its prototype's open, setRequestHeader and send. */
import type { NetworkRecorder, RequestEnd } from './network';
import { isTextContentType, parseContentLength } from './network';
import { safeStringify } from '../json';
import type { Sink } from '../sink';

interface OpenedRequest { method: string; url: string; headers: Record<string, string> }

export function installXhr(sink: Sink, recorder: NetworkRecorder): void {
  if (typeof XMLHttpRequest !== 'function') return;
  const proto = XMLHttpRequest.prototype;
  const opened = new WeakMap<XMLHttpRequest, OpenedRequest>();
  const { open, setRequestHeader, send } = proto;

  proto.open = function (this: XMLHttpRequest, ...args: unknown[]) {
    try {
      opened.set(this, { method: String(args[0]), url: String(args[1]), headers: {} });
    } catch {
      sink.health.internalErrors++;
    }
    return (open as (...openArgs: unknown[]) => void).apply(this, args);
  } as typeof proto.open;

  proto.setRequestHeader = function (this: XMLHttpRequest, name: string, value: string) {
    const request = opened.get(this);
    if (request && recorder.options.captureHeaders) request.headers[String(name).toLowerCase()] = String(value);
    return setRequestHeader.call(this, name, value);
  };

  proto.send = function (this: XMLHttpRequest, body?: Document | XMLHttpRequestBodyInit | null) {
    try {
      const request = opened.get(this);
      const started = request && recorder.begin(request.method, request.url, request.headers, body);
      if (started) {
        const xhr = this;
        xhr.addEventListener('loadend', sink.health.guard(() => recorder.finish(started, requestEnd(xhr, recorder))));
      }
    } catch {
      sink.health.internalErrors++;
    }
    return send.call(this, body);
  };
}

function requestEnd(xhr: XMLHttpRequest, recorder: NetworkRecorder): RequestEnd {
  if (xhr.status === 0) return {}; // network error, CORS failure or abort: no response
  const text = xhr.responseType === '' || xhr.responseType === 'text' ? xhr.responseText : undefined;
  const end: RequestEnd = {
    status: xhr.status,
    responseBytes: parseContentLength(xhr.getResponseHeader('content-length')) ?? text?.length,
  };
  if (recorder.options.captureHeaders) end.responseHeaders = parseHeaders(xhr.getAllResponseHeaders());
  if (recorder.options.captureBodies && isTextContentType(xhr.getResponseHeader('content-type'))) {
    end.responseBody = text ?? (xhr.responseType === 'json' ? safeStringify(xhr.response) : undefined);
  }
  return end;
}

function parseHeaders(raw: string): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const line of raw.trim().split(/[\r\n]+/)) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return headers;
}
