// The time ranges the lists offer, and the API's `timeRange` for one.

export const RANGES: Record<string, { label: string; hours: number }> = {
  '24h': { label: 'Last 24 hours', hours: 24 },
  '7d': { label: 'Last 7 days', hours: 24 * 7 },
  '30d': { label: 'Last 30 days', hours: 24 * 30 },
};

/** Now, rounded down to the minute, so a reload within it asks the same question. */
export function thisMinute(): number {
  return Math.floor(Date.now() / 60_000) * 60_000;
}

/** The API's `timeRange` for a range's key; null (all time) for none. */
export function timeRangeOf(range: string | undefined): { from: string } | null {
  const known = range ? RANGES[range] : undefined;
  return known ? { from: new Date(thisMinute() - known.hours * 3_600_000).toISOString() } : null;
}

export function RangeSelect({ value, onChange }: { value: string | undefined; onChange: (range: string) => void }) {
  return (
    <label>
      Time
      <select value={value ?? ''} onChange={(e) => onChange(e.currentTarget.value)}>
        <option value="">All time</option>
        {Object.entries(RANGES).map(([key, range]) => (
          <option key={key} value={key}>{range.label}</option>
        ))}
      </select>
    </label>
  );
}
