// The session's facts: who, on what, from where, which release and campaign, and how fast the pages were.
import { dateTime, duration } from './format';

export const FACT_FIELDS = `id startedAt durationMs activeDurationMs browser browserVersion os osVersion deviceType
  country language timezone release referrer initialUrl utmSource utmMedium utmCampaign viewport { width height }
  pageCount clickCount errorCount hasRecording webVitals { lcp fcp cls inp ttfb }
  user { id identified name email traits }`;

export interface Facts {
  id: string;
  startedAt: string;
  durationMs: number;
  activeDurationMs: number;
  browser: string | null;
  browserVersion: string | null;
  os: string | null;
  osVersion: string | null;
  deviceType: string | null;
  country: string | null;
  language: string | null;
  timezone: string | null;
  release: string | null;
  referrer: string | null;
  initialUrl: string | null;
  utmSource: string | null;
  utmMedium: string | null;
  utmCampaign: string | null;
  viewport: { width: number; height: number } | null;
  pageCount: number;
  clickCount: number;
  errorCount: number;
  hasRecording: boolean;
  webVitals: Record<Vital, number | null>;
  user: { id: string; identified: boolean; name: string | null; email: string | null; traits: Record<string, unknown> };
}

type Vital = 'lcp' | 'fcp' | 'cls' | 'inp' | 'ttfb';

/** The standard (web.dev) good / needs-improvement limits; beyond the second, poor. */
const VITALS: Record<Vital, { label: string; good: number; poor: number; unit: string }> = {
  lcp: { label: 'LCP', good: 2500, poor: 4000, unit: 'ms' },
  fcp: { label: 'FCP', good: 1800, poor: 3000, unit: 'ms' },
  inp: { label: 'INP', good: 200, poor: 500, unit: 'ms' },
  cls: { label: 'CLS', good: 0.1, poor: 0.25, unit: '' },
  ttfb: { label: 'TTFB', good: 800, poor: 1800, unit: 'ms' },
};

export type Row = [string, string | number | null | undefined];

export function Section({ title, rows }: { title: string; rows: Row[] }) {
  const shown = rows.filter(([, value]) => value != null && value !== '');
  if (shown.length === 0) return null;
  return (
    <section>
      <h3>{title}</h3>
      <dl>
        {shown.map(([name, value]) => (
          <div key={name}>
            <dt>{name}</dt>
            <dd>{value}</dd>
          </div>
        ))}
      </dl>
    </section>
  );
}

function Vitals({ values }: { values: Facts['webVitals'] }) {
  const measured = (Object.keys(VITALS) as Vital[]).filter((name) => values[name] != null);
  if (measured.length === 0) return null;
  return (
    <section>
      <h3>Web vitals</h3>
      <ul class="vitals">
        {measured.map((name) => {
          const { label, good, poor, unit } = VITALS[name];
          const value = values[name]!;
          const rating = value <= good ? 'good' : value <= poor ? 'needs-improvement' : 'poor';
          return (
            <li key={name} class={rating} title={`good ≤ ${good}${unit}, poor > ${poor}${unit}`}>
              {label} <b>{unit ? `${Math.round(value)} ${unit}` : value.toFixed(3)}</b> <small>{rating.replace('-', ' ')}</small>
            </li>
          );
        })}
      </ul>
    </section>
  );
}

const joined = (...parts: (string | null)[]) => parts.filter(Boolean).join(' ') || null;

export function FactsPanel({ facts }: { facts: Facts }) {
  const { user } = facts;
  const traits = Object.entries(user.traits ?? {}).map(([k, v]): Row => [`trait.${k}`, typeof v === 'string' ? v : JSON.stringify(v)]);
  return (
    <aside class="facts">
      <Section title="User" rows={[['id', user.identified ? user.id : 'anonymous'], ['name', user.name], ['email', user.email], ...traits]} />
      <Section
        title="Session"
        rows={[
          ['started', dateTime(facts.startedAt)],
          ['duration', duration(facts.durationMs)],
          ['active', duration(facts.activeDurationMs)],
          ['pages', facts.pageCount],
          ['clicks', facts.clickCount],
          ['errors', facts.errorCount],
          ['release', facts.release],
        ]}
      />
      <Section
        title="Device"
        rows={[
          ['browser', joined(facts.browser, facts.browserVersion)],
          ['os', joined(facts.os, facts.osVersion)],
          ['type', facts.deviceType],
          ['viewport', facts.viewport && `${facts.viewport.width}×${facts.viewport.height}`],
        ]}
      />
      <Section title="Location" rows={[['country', facts.country], ['language', facts.language], ['time zone', facts.timezone]]} />
      <Section
        title="Acquisition"
        rows={[
          ['landing page', facts.initialUrl],
          ['referrer', facts.referrer],
          ['utm_source', facts.utmSource],
          ['utm_medium', facts.utmMedium],
          ['utm_campaign', facts.utmCampaign],
        ]}
      />
      <Vitals values={facts.webVitals} />
    </aside>
  );
}
