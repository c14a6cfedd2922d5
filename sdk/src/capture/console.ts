/** Console events: the configured console methods are wrapped; the original is always called. */
import type { ConsoleLevel } from '../events';
import { safeString, safeStringify, truncate } from '../json';
import type { Sink } from '../sink';

const MAX_MESSAGE_CHARS = 2_000;

export function installConsole(sink: Sink, levels: readonly ConsoleLevel[]): void {
  let capturing = false; // a console call made while formatting (a toJSON that logs) is not captured again
  for (const level of levels) {
    const original = console[level];
    if (typeof original !== 'function') continue;
    console[level] = function (this: Console, ...args: unknown[]) {
      if (!capturing && sink.active) {
        capturing = true;
        try {
          sink.emit({ type: 'console', ts: sink.now(), level, message: formatConsoleArgs(args) });
        } catch {
          sink.health.internalErrors++;
        } finally {
          capturing = false;
        }
      }
      return original.apply(this, args);
    };
  }
}

/** Strings as they are, errors with their stack, other values as JSON; joined by spaces like the console. */
export function formatConsoleArgs(args: unknown[]): string {
  let message = '';
  for (const arg of args) {
    if (message.length >= MAX_MESSAGE_CHARS) break; // formatting the rest would be thrown away
    message += (message ? ' ' : '') + formatValue(arg);
  }
  return truncate(message, MAX_MESSAGE_CHARS);
}

function formatValue(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value instanceof Error) return value.stack || `${value.name}: ${value.message}`;
  if (value === undefined || typeof value === 'function' || typeof value === 'symbol') return safeString(value);
  return safeStringify(value) ?? safeString(value);
}
