// Autocomplete for the filter language's query string: what the caret is in (a key or a value after an
// operator), what to offer there, and the text once a suggestion is taken.

export interface FilterKey {
  name: string;
  type: string;
  kind: string;
}

/** The part of the text being completed: a key, or a value of `key`, from `start` to the caret. */
export interface Slot {
  kind: 'key' | 'value';
  key: string;
  partial: string;
  start: number;
}

const VALUE_AT_END = /([A-Za-z_][\w.]*)\s*(?:!=|=|!~|~|\^=|\$=|\bIN\s*\((?:[^)]*,)?)\s*("?)([^",()\s]*)$/i;
const WORD_AT_END = /[A-Za-z_][\w.]*$/;

export function slotAt(text: string, caret: number): Slot | null {
  const before = text.slice(0, caret);
  const value = VALUE_AT_END.exec(before);
  if (value) {
    const [, key, quote, partial] = value;
    return { kind: 'value', key, partial, start: caret - partial.length - quote.length };
  }
  const word = WORD_AT_END.exec(before);
  if (word) return { kind: 'key', key: '', partial: word[0], start: caret - word[0].length };
  return null;
}

/** How a key is written in a query: fields as is, custom events as `custom("Name")`. */
export function keyText(key: FilterKey): string {
  return key.kind === 'CUSTOM_EVENT' ? `custom(${quoted(key.name)})` : key.name;
}

export function valueText(value: string): string {
  return /^[\w.-]+$/.test(value) ? value : quoted(value);
}

function quoted(text: string): string {
  return `"${text.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/** Candidates that start with the partial text first, then those that contain it. */
export function matching<T>(candidates: T[], label: (candidate: T) => string, partial: string, limit = 10): T[] {
  const wanted = partial.toLowerCase();
  const starts = candidates.filter((c) => label(c).toLowerCase().startsWith(wanted));
  const contains = candidates.filter((c) => !starts.includes(c) && label(c).toLowerCase().includes(wanted));
  return [...starts, ...contains].slice(0, limit);
}

/** The text with the slot replaced by `insert` and a space, and where the caret goes (after the space). */
export function applied(text: string, caret: number, slot: Slot, insert: string): [string, number] {
  const before = `${text.slice(0, slot.start)}${insert} `;
  const after = text.slice(caret).replace(/^[\w."]*/, '').trimStart(); // the rest of a word being replaced
  return [before + after, before.length];
}
