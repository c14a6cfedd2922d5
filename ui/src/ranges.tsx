// Time ranges (presets, or a custom from/to) and time zones, as the URL holds them: `range`, `from`, `to`, `tz`.
import type { State } from './list';

export const RANGES: Record<string, { label: string; hours: number }> = {
  '24h': { label: 'Last 24 hours', hours: 24 },
  '7d': { label: 'Last 7 days', hours: 24 * 7 },
  '30d': { label: 'Last 30 days', hours: 24 * 30 },
};
const CUSTOM = 'custom';

/** Now, rounded down to the minute, so a reload within it asks the same question. */
export function thisMinute(): number {
  return Math.floor(Date.now() / 60_000) * 60_000;
}

export interface Span {
  from: number; // ms since the epoch
  to: number;
}

/** The span a state names: a preset ending this minute, or the custom `from`/`to` (ISO instants); null for all time. */
export function spanOf(state: State, fallback?: string): Span | null {
  if (state.range === CUSTOM) {
    const from = Date.parse(state.from ?? '');
    const to = state.to ? Date.parse(state.to) : thisMinute();
    if (!Number.isNaN(from) && !Number.isNaN(to)) return { from, to };
  }
  const preset = RANGES[state.range ?? ''] ?? (fallback ? RANGES[fallback] : undefined);
  if (!preset) return null;
  const to = thisMinute();
  return { from: to - preset.hours * 3_600_000, to };
}

/** A bucket size that draws a span in tens of points: hours up to two days, days up to `maxDays`, then weeks. */
export function intervalOf(span: Span, maxDays = 92): 'HOUR' | 'DAY' | 'WEEK' {
  const days = (span.to - span.from) / 86_400_000;
  return days <= 2 ? 'HOUR' : days <= maxDays ? 'DAY' : 'WEEK';
}

/** The API's `timeRange` for a state: a preset's `from` alone (open to now), a custom range's both ends. */
export function timeRangeOf(state: State): { from: string; to?: string } | null {
  const span = spanOf(state);
  if (!span) return null;
  const from = new Date(span.from).toISOString();
  return state.range === CUSTOM ? { from, to: new Date(span.to).toISOString() } : { from };
}

/** A `datetime-local` input's value (the browser's wall time) for an instant, and back. */
function localInput(ms: number): string {
  const date = new Date(ms - new Date(ms).getTimezoneOffset() * 60_000);
  return date.toISOString().slice(0, 16);
}

function fromLocalInput(value: string): string | undefined {
  const ms = Date.parse(value); // a date-time without an offset is the browser's local time
  return Number.isNaN(ms) ? undefined : new Date(ms).toISOString();
}

interface RangeProps {
  state: State;
  onChange: (changes: State) => void;
  allTime?: boolean; // lists may ask for all time; charts need both ends
  fallback?: string; // the preset shown when the state names none
}

export function RangeSelect({ state, onChange, allTime = true, fallback }: RangeProps) {
  const chosen = state.range ?? (allTime ? '' : fallback);
  const pick = (range: string) => {
    if (range !== CUSTOM) return onChange({ range, from: undefined, to: undefined });
    // a custom range starts as the span shown so far, then each end is edited
    const span = spanOf(state, fallback) ?? { from: thisMinute() - 7 * 86_400_000, to: thisMinute() };
    onChange({ range, from: new Date(span.from).toISOString(), to: new Date(span.to).toISOString() });
  };
  const span = chosen === CUSTOM ? spanOf(state) : null;
  return (
    <>
      <label>
        Time
        <select class="range" value={chosen} onChange={(e) => pick(e.currentTarget.value)}>
          {allTime && <option value="">All time</option>}
          {Object.entries(RANGES).map(([key, range]) => (
            <option key={key} value={key}>{range.label}</option>
          ))}
          <option value={CUSTOM}>Custom…</option>
        </select>
      </label>
      {span && (
        <span class="custom-range">
          <input type="datetime-local" aria-label="From" value={localInput(span.from)}
            onChange={(e) => onChange({ from: fromLocalInput(e.currentTarget.value) })} />
          –
          <input type="datetime-local" aria-label="To" value={localInput(span.to)}
            onChange={(e) => onChange({ to: fromLocalInput(e.currentTarget.value) })} />
        </span>
      )}
    </>
  );
}

/** The browser's own time zone, the default for charts. */
export const LOCAL_ZONE = Intl.DateTimeFormat().resolvedOptions().timeZone;

let zoneList: string[] | null = null;

/** Every IANA zone the browser knows, UTC and its own first: asked once (some 400 names). */
function zones(): string[] {
  if (zoneList === null) {
    const all = (Intl as { supportedValuesOf?: (key: string) => string[] }).supportedValuesOf?.('timeZone') ?? [];
    zoneList = [...new Set(['UTC', LOCAL_ZONE, ...all])];
  }
  return zoneList;
}

export function ZoneSelect({ value, onChange }: { value: string; onChange: (tz: string) => void }) {
  return (
    <label>
      Time zone
      <select class="zone" value={value} onChange={(e) => onChange(e.currentTarget.value)}>
        {zones().map((zone) => (
          <option key={zone} value={zone}>{zone}</option>
        ))}
      </select>
    </label>
  );
}
