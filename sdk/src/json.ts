/** JSON helpers that never throw: host values can be circular, hostile (throwing getters) or huge. */

export type JsonObject = { [key: string]: unknown };

/** JSON text of any value; circular references become "[Circular]", BigInts and functions become strings. */
export function safeStringify(value: unknown): string | undefined {
  const ancestors: object[] = [];
  try {
    return JSON.stringify(value, function (this: unknown, _key: string, current: unknown) {
      if (typeof current === 'bigint') return `${current.toString()}n`;
      if (typeof current === 'function') return `[Function ${current.name || 'anonymous'}]`;
      if (typeof current === 'symbol') return current.toString();
      if (current === null || typeof current !== 'object') return current;
      // `this` is the object holding `current`: unwind the stack to it, so only real cycles are cut.
      while (ancestors.length > 0 && ancestors[ancestors.length - 1] !== this) ancestors.pop();
      if (ancestors.includes(current)) return '[Circular]';
      ancestors.push(current);
      return describeNode(current) ?? current;
    });
  } catch {
    return undefined;
  }
}

function describeNode(value: object): string | undefined {
  if (typeof Node === 'undefined' || !(value instanceof Node)) return undefined;
  return value instanceof Element ? `<${value.tagName.toLowerCase()}>` : `[${value.nodeName}]`;
}

/** A JSON-safe copy of a plain object (for properties, traits, extra), or undefined when it is not one. */
export function toJsonObject(value: unknown): JsonObject | undefined {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return undefined;
  const text = safeStringify(value);
  if (text === undefined) return undefined;
  try {
    const copy: unknown = JSON.parse(text);
    return copy !== null && typeof copy === 'object' && !Array.isArray(copy) ? (copy as JsonObject) : undefined;
  } catch {
    return undefined;
  }
}

export function truncate(text: string, maxChars: number): string {
  return text.length > maxChars ? text.slice(0, maxChars) : text;
}

/** Bytes of `text` as UTF-8, without allocating an encoded copy. */
export function utf8Length(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x80) bytes += 1;
    else if (code < 0x800) bytes += 2;
    else if (code >= 0xd800 && code <= 0xdbff && i + 1 < text.length) {
      bytes += 4; // a surrogate pair is one 4-byte character
      i++;
    } else bytes += 3;
  }
  return bytes;
}

/** String(value) for anything, including objects whose toString throws or is missing. */
export function safeString(value: unknown): string {
  try {
    return String(value);
  } catch {
    return safeStringify(value) ?? '[unprintable]';
  }
}
