/** Error events: uncaught errors, unhandled rejections, and captureException/captureMessage. */
import type { ErrorEvent } from '../events';
import { safeString, safeStringify, toJsonObject, truncate } from '../json';
import type { Sink } from '../sink';

const MAX_MESSAGE_CHARS = 64 * 1024;
const MAX_STACK_CHARS = 256 * 1024;

export interface CaptureOptions {
  tags?: Record<string, string>;
  extra?: Record<string, unknown>;
}

export function installErrorHandlers(sink: Sink): void {
  window.addEventListener('error', sink.health.guard((event: globalThis.ErrorEvent) => {
    const error: unknown = event.error;
    const fromError = error instanceof Error ? errorFields(error) : null;
    sink.emit({
      type: 'error',
      ts: sink.now(),
      handled: false,
      ...(fromError ?? { message: truncate(safeString(event.message || 'Unknown error'), MAX_MESSAGE_CHARS) }),
    });
  }));
  window.addEventListener('unhandledrejection', sink.health.guard((event: PromiseRejectionEvent) => {
    sink.emit(errorEvent(event.reason, false, sink.now()));
  }));
}

/** The error event for a thrown value: an Error's name, message and stack, or String(value) for anything else. */
export function errorEvent(error: unknown, handled: boolean, ts: number, options?: CaptureOptions): ErrorEvent {
  const fields = error instanceof Error ? errorFields(error) : { message: truncate(describe(error), MAX_MESSAGE_CHARS) };
  return { type: 'error', ts, handled, ...fields, ...captureFields(options) };
}

export function messageEvent(message: string, ts: number, options?: CaptureOptions): ErrorEvent {
  return { type: 'error', ts, handled: true, message: truncate(safeString(message), MAX_MESSAGE_CHARS),
    ...captureFields(options) };
}

/** String(value), except that "[object Object]" says nothing: such values are shown as JSON. */
function describe(value: unknown): string {
  const text = safeString(value);
  return /^\[object \w+\]$/.test(text) ? safeStringify(value) ?? text : text;
}

function errorFields(error: Error): Pick<ErrorEvent, 'message' | 'errorType' | 'stack'> {
  return {
    message: truncate(safeString(error.message), MAX_MESSAGE_CHARS),
    errorType: typeof error.name === 'string' && error.name ? error.name : undefined,
    stack: typeof error.stack === 'string' ? truncate(error.stack, MAX_STACK_CHARS) : undefined,
  };
}

function captureFields(options: CaptureOptions | undefined): Pick<ErrorEvent, 'tags' | 'extra'> {
  if (!options || typeof options !== 'object') return {};
  return { tags: stringValues(options.tags), extra: toJsonObject(options.extra) };
}

/** The server takes tags as string → string: other values are turned into strings. */
function stringValues(tags: unknown): Record<string, string> | undefined {
  if (tags === null || typeof tags !== 'object') return undefined;
  const result: Record<string, string> = {};
  for (const [key, value] of Object.entries(tags)) {
    if (value !== undefined && value !== null) result[key] = typeof value === 'string' ? value : safeString(value);
  }
  return result;
}
