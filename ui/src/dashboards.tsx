// The dashboards: sessions by browser and the error rate over time, LCP by page, an editable funnel, a retention
// grid and the top paths. One time range and one time zone (in the URL with the funnel's steps) drive them all;
// each card asks the API its own question, so they load side by side.
import type { ComponentChildren } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import type { Series, TimeChart } from './charts';
import { duration } from './format';
import { type State, stateOf } from './list';
import { useQuery } from './query';
import { intervalOf, LOCAL_ZONE, RangeSelect, type Span, spanOf, ZoneSelect } from './ranges';
import { navigate, urlOf } from './router';
import { Show } from './status';

const DEFAULT_RANGE = '7d';
const AGGREGATE_QUERY = `query Aggregate($input: AggregateInput!) {
  aggregate(input: $input) { rows totals otherRows truncated } }`;

interface Context {
  span: Span;
  tz: string;
  timeRange: { from: string; to: string };
}

export function DashboardsPage({ params }: { params: URLSearchParams }) {
  const state = stateOf(params, ['range', 'from', 'to', 'tz', 'steps']);
  const span = spanOf(state, DEFAULT_RANGE) as Span; // a preset is the fallback: never all time
  const tz = state.tz ?? LOCAL_ZONE;
  const context = { span, tz, timeRange: { from: new Date(span.from).toISOString(), to: new Date(span.to).toISOString() } };
  const change = (changes: State) => navigate(urlOf('/dashboards', { ...state, ...changes }));
  return (
    <section class="dashboards">
      <div class="quick">
        <RangeSelect state={state} onChange={change} allTime={false} fallback={DEFAULT_RANGE} />
        <ZoneSelect value={tz} onChange={(zone) => change({ tz: zone })} />
      </div>
      <div class="cards">
        <SessionsByBrowser context={context} />
        <ErrorRate context={context} />
        <LcpByPage context={context} />
        <Funnel context={context} steps={state.steps} onSteps={(steps) => change({ steps })} />
        <Retention context={context} />
        <TopPaths context={context} />
      </div>
    </section>
  );
}

function Card({ title, name, wide, children }: { title: string; name: string; wide?: boolean; children: ComponentChildren }) {
  return (
    <article class={`card card-${name}${wide ? ' wide' : ''}`}>
      <h2>{title}</h2>
      {children}
    </article>
  );
}

const COLOURS = ['#3856d6', '#e8590c', '#2f9e44', '#ae3ec9', '#1098ad', '#868e96', '#d6336c', '#f59f00'];

const percent = (share: number | null | undefined) => (share == null ? '–' : `${(share * 100).toFixed(1)}%`);
const count = (n: number) => n.toLocaleString('en-US');

interface AggregateAnswer {
  aggregate: { rows: unknown[][]; totals: unknown[]; otherRows: unknown[][] | null; truncated: boolean };
}

function aggregateInput(context: Context, input: Record<string, unknown>) {
  return { input: { ...input, interval: intervalOf(context.span), timeRange: context.timeRange, timeZone: context.tz } };
}

/** Per series (first-seen order), its value in each bucket: rows are [time, group, value], buckets filled. */
function seriesOf(rows: unknown[][], other: unknown[][] | null): { times: number[]; series: Series[] } {
  const times = [...new Set(rows.map((row) => Date.parse(row[0] as string)))];
  const byGroup = new Map<string, (number | null)[]>();
  const add = (group: string, time: string, value: number | null) => {
    const values = byGroup.get(group) ?? times.map(() => null);
    values[times.indexOf(Date.parse(time))] = value;
    byGroup.set(group, values);
  };
  for (const [time, group, value] of rows) add(group == null ? '(none)' : String(group), time as string, value as number);
  for (const [time, , value] of other ?? []) add('Other', time as string, value as number);
  const series = [...byGroup].map(([label, values], i) => ({ label, values, colour: COLOURS[i % COLOURS.length] }));
  return { times, series };
}

/** A uPlot chart of `series` over `times`, drawn once the chart code has loaded, redrawn at the card's width. */
function LineChart({ times, series, tz, format }: { times: number[]; series: Series[]; tz: string; format: (v: number) => string }) {
  const host = useRef<HTMLDivElement>(null);
  const data = JSON.stringify([times, series, tz]);
  useEffect(() => {
    let chart: TimeChart | null = null;
    let open = true;
    const watcher = new ResizeObserver(() => chart?.resize(host.current?.clientWidth ?? 0));
    import('./charts').then(({ timeChart }) => {
      if (!open || !host.current) return;
      chart = timeChart(host.current, times, series, tz, format);
      watcher.observe(host.current);
    });
    return () => {
      open = false;
      watcher.disconnect();
      chart?.destroy();
    };
  }, [data]);
  return <div class="chart" ref={host} />;
}

/** Each series with its total over the range, as a list beside the chart. */
function Totals({ series, total }: { series: Series[]; total: (values: (number | null)[]) => string }) {
  return (
    <ul class="totals">
      {series.map((one) => (
        <li key={one.label} data-series={one.label}>
          <i class="swatch" style={{ background: one.colour }} />
          <span>{one.label}</span> <b>{total(one.values)}</b>
        </li>
      ))}
    </ul>
  );
}

const sum = (values: (number | null)[]) => values.reduce<number>((a, b) => a + (b ?? 0), 0);

function SessionsByBrowser({ context }: { context: Context }) {
  const loaded = useQuery<AggregateAnswer>(AGGREGATE_QUERY, aggregateInput(context, {
    source: 'SESSIONS', measures: [{ alias: 'sessions', fn: 'COUNT' }], groupBy: [{ field: 'browser' }], limit: 5, other: true,
  }));
  return (
    <Card title="Sessions by browser" name="browsers" wide>
      <Show loaded={loaded} render={({ aggregate }) => {
        const { times, series } = seriesOf(aggregate.rows, aggregate.otherRows);
        return (
          <>
            <LineChart times={times} series={series} tz={context.tz} format={count} />
            <Totals series={series} total={(values) => count(sum(values))} />
          </>
        );
      }} />
    </Card>
  );
}

function ErrorRate({ context }: { context: Context }) {
  const loaded = useQuery<AggregateAnswer>(AGGREGATE_QUERY, aggregateInput(context, {
    source: 'SESSIONS', measures: [{ alias: 'errorRate', fn: 'RATE', where: 'hasErrors = true' }],
  }));
  return (
    <Card title="Sessions with errors" name="errors" wide>
      <Show loaded={loaded} render={({ aggregate }) => {
        const times = aggregate.rows.map((row) => Date.parse(row[0] as string));
        const series = [{ label: 'Share of sessions', colour: COLOURS[0], values: aggregate.rows.map((row) => row[1] as number | null) }];
        return (
          <>
            <LineChart times={times} series={series} tz={context.tz} format={(v) => `${Math.round(v * 1000) / 10}%`} />
            <Totals series={series} total={() => ''} />
            <p class="overall">Over the range: <b class="overall-rate">{percent(aggregate.totals[1] as number | null)}</b></p>
          </>
        );
      }} />
    </Card>
  );
}

interface Vital {
  group: string | null;
  count: number;
  p75: number | null;
  good: number | null;
  needsImprovement: number | null;
  poor: number | null;
  goodThreshold: number;
  poorThreshold: number;
}

const VITALS_QUERY = `query Lcp($timeRange: TimeRange) {
  webVitals(timeRange: $timeRange, query: "name = LCP", groupBy: PATH_PATTERN, limit: 10) {
    truncated vitals { group count p75 good needsImprovement poor goodThreshold poorThreshold } } }`;

function rating(vital: Vital): string {
  if (vital.p75 == null) return '';
  return vital.p75 <= vital.goodThreshold ? 'good' : vital.p75 <= vital.poorThreshold ? 'needs-improvement' : 'poor';
}

function LcpByPage({ context }: { context: Context }) {
  const loaded = useQuery<{ webVitals: { truncated: boolean; vitals: Vital[] } }>(VITALS_QUERY, { timeRange: context.timeRange });
  return (
    <Card title="Largest Contentful Paint by page (p75)" name="lcp" wide>
      <Show loaded={loaded} render={({ webVitals }) => webVitals.vitals.length === 0 ? <p class="empty">No LCP measured.</p> : (
        <>
          <div class="table-scroll">
          <table class="vitals-table">
            <thead><tr><th>Page</th><th>Views</th><th>p75</th><th>Good / needs improvement / poor</th></tr></thead>
            <tbody>
              {webVitals.vitals.map((vital) => (
                <tr key={vital.group} data-page={vital.group}>
                  <td>{vital.group}</td>
                  <td>{count(vital.count)}</td>
                  <td class={`p75 ${rating(vital)}`}>{vital.p75 == null ? '–' : `${Math.round(vital.p75)} ms`}</td>
                  <td><Shares vital={vital} /></td>
                </tr>
              ))}
            </tbody>
          </table>
          </div>
          {webVitals.truncated && <p class="hint">The ten pages with the most LCP measurements.</p>}
        </>
      )} />
    </Card>
  );
}

function Shares({ vital }: { vital: Vital }) {
  const parts = [['good', vital.good], ['needs-improvement', vital.needsImprovement], ['poor', vital.poor]] as const;
  return (
    <div class="shares" title={parts.map(([name, share]) => `${name} ${percent(share)}`).join(', ')}>
      {parts.map(([name, share]) => (
        <span key={name} class={`share ${name}`} style={{ width: `${(share ?? 0) * 100}%` }}>{(share ?? 0) >= 0.08 ? percent(share) : ''}</span>
      ))}
    </div>
  );
}

// -- funnel -------------------------------------------------------------------------------------------------

interface FunnelStep {
  index: number;
  step: string;
  count: number;
  conversionFromFirst: number | null;
  conversionFromPrevious: number | null;
  droppedOff: number;
  medianTimeToConvertMs: number | null;
}

const FUNNEL_QUERY = `query Funnel($input: FunnelInput!) { funnel(input: $input) {
  steps { index step count conversionFromFirst conversionFromPrevious droppedOff medianTimeToConvertMs } } }`;
const TOP_PAGES_QUERY = 'query TopPages { topValues(entity: EVENTS, key: "path", limit: 3) { values { value } } }';

/** The funnel's steps: the URL's (one per line), or the app's three most visited paths to start with. */
function useSteps(steps: string | undefined): string[] | null {
  const top = useQuery<{ topValues: { values: { value: string }[] } }>(steps ? null : TOP_PAGES_QUERY, {});
  if (steps) return steps.split('\n');
  if (top.state !== 'done') return null;
  return top.data.topValues.values.map(({ value }) => `visited(path = ${JSON.stringify(value)})`);
}

function Funnel({ context, steps, onSteps }: { context: Context; steps: string | undefined; onSteps: (steps: string) => void }) {
  const chosen = useSteps(steps);
  return (
    <Card title="Funnel" name="funnel" wide>
      {chosen && <StepsEditor key={chosen.join('\n')} steps={chosen} onApply={(edited) => onSteps(edited.join('\n'))} />}
      {chosen && chosen.length > 0 && <FunnelResult context={context} steps={chosen} />}
    </Card>
  );
}

function StepsEditor({ steps, onApply }: { steps: string[]; onApply: (steps: string[]) => void }) {
  const [edited, setEdited] = useState(steps);
  const set = (i: number, value: string) => setEdited(edited.map((step, j) => (j === i ? value : step)));
  return (
    <form class="steps" onSubmit={(e) => { e.preventDefault(); onApply(edited.map((s) => s.trim()).filter(Boolean)); }}>
      <ol>
        {edited.map((step, i) => (
          <li key={i}>
            <input value={step} aria-label={`Step ${i + 1}`} spellcheck={false} onInput={(e) => set(i, e.currentTarget.value)} />
            <button type="button" aria-label={`Remove step ${i + 1}`} onClick={() => setEdited(edited.filter((_, j) => j !== i))}>×</button>
          </li>
        ))}
      </ol>
      <button type="button" onClick={() => setEdited([...edited, ''])}>Add step</button>{' '}
      <button type="submit" class="primary">Apply</button>
      <p class="hint">Each step is one event condition: <code>visited(path = "/cart")</code>, <code>custom("Signup")</code>, <code>clicked(selector = "#buy")</code>.</p>
    </form>
  );
}

function FunnelResult({ context, steps }: { context: Context; steps: string[] }) {
  const loaded = useQuery<{ funnel: { steps: FunnelStep[] } }>(FUNNEL_QUERY, { input: { steps, timeRange: context.timeRange } });
  return (
    <Show loaded={loaded} render={({ funnel }) => (
      <ol class="funnel">
        {funnel.steps.map((step) => (
          <li key={step.index} data-step={step.index}>
            <code>{step.step}</code>
            <div class="bar"><span style={{ width: `${(step.conversionFromFirst ?? 0) * 100}%` }} /></div>
            <span class="funnel-count"><b>{count(step.count)}</b> · {percent(step.conversionFromFirst)}</span>
            {step.index > 1 && (
              <small>
                {count(step.droppedOff)} dropped off ({percent(1 - (step.conversionFromPrevious ?? 0))})
                {step.medianTimeToConvertMs != null && ` · median ${duration(step.medianTimeToConvertMs)} from the step before`}
              </small>
            )}
          </li>
        ))}
      </ol>
    )} />
  );
}

// -- retention and paths ---------------------------------------------------------------------------------------

interface Cohort {
  start: string;
  size: number;
  rates: (number | null)[];
  completePeriods: number;
}

const RETENTION_QUERY = `query Retention($input: RetentionInput!) { retention(input: $input) {
  periods cohorts { start size rates completePeriods } overall { size rates } } }`;

function Retention({ context }: { context: Context }) {
  const interval = intervalOf(context.span, 31) === 'WEEK' ? 'WEEK' : 'DAY';
  const buckets = Math.ceil((context.span.to - context.span.from) / (interval === 'DAY' ? 86_400_000 : 7 * 86_400_000));
  const loaded = useQuery<{ retention: { periods: number; cohorts: Cohort[]; overall: { size: number; rates: (number | null)[] } } }>(
    RETENTION_QUERY, { input: { timeRange: context.timeRange, interval, periods: Math.min(Math.max(buckets, 2), 12), timeZone: context.tz } });
  const label = interval === 'DAY' ? 'Day' : 'Week';
  const day = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeZone: context.tz });
  return (
    <Card title="Retention: users by their first day, and who came back" name="retention" wide>
      <Show loaded={loaded} render={({ retention }) => (
        <div class="table-scroll">
          <table class="retention-table">
            <thead>
              <tr><th>Cohort</th><th>Users</th>{retention.overall.rates.map((_, i) => <th key={i}>{label} {i}</th>)}</tr>
            </thead>
            <tbody>
              <tr class="overall-row"><td>All</td><td>{count(retention.overall.size)}</td>{retention.overall.rates.map((rate, i) => <RateCell key={i} rate={rate} />)}</tr>
              {retention.cohorts.map((cohort) => (
                <tr key={cohort.start} data-cohort={cohort.start}>
                  <td>{day.format(new Date(cohort.start))}</td>
                  <td>{count(cohort.size)}</td>
                  {cohort.rates.map((rate, i) => <RateCell key={i} rate={i < cohort.completePeriods ? rate : null} />)}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )} />
    </Card>
  );
}

function RateCell({ rate }: { rate: number | null }) {
  if (rate == null) return <td class="rate" />;
  return <td class="rate" style={{ background: `rgb(56 86 214 / ${(0.08 + rate * 0.8).toFixed(2)})`, color: rate > 0.5 ? '#fff' : undefined }}>{percent(rate)}</td>;
}

interface PathEdge {
  step: number;
  from: string;
  to: string;
  count: number;
}

const PATHS_QUERY = `query Paths($input: PathsInput!) { paths(input: $input) {
  truncated edgeCount steps { step sessions dropOff } edges { step from to count } } }`;

function TopPaths({ context }: { context: Context }) {
  const loaded = useQuery<{ paths: { truncated: boolean; edgeCount: number; steps: { step: number; sessions: number; dropOff: number }[]; edges: PathEdge[] } }>(
    PATHS_QUERY, { input: { timeRange: context.timeRange, steps: 4, limit: 24 } });
  return (
    <Card title="Top paths from the landing page" name="paths" wide>
      <Show loaded={loaded} render={({ paths }) => (
        <>
          <div class="paths">
            {paths.steps.filter((step) => step.step > 0).map((step) => {
              const edges = paths.edges.filter((edge) => edge.step === step.step);
              const top = Math.max(1, ...edges.map((edge) => edge.count));
              return (
                <section key={step.step} class="path-step" data-step={step.step}>
                  <h3>Step {step.step} <small>{count(step.sessions)} sessions</small></h3>
                  <ul>
                    {edges.map((edge) => (
                      <li key={`${edge.from}→${edge.to}`}>
                        <span class="edge">{edge.from} → {edge.to}</span> <b>{count(edge.count)}</b>
                        <div class="bar"><span style={{ width: `${(edge.count / top) * 100}%` }} /></div>
                      </li>
                    ))}
                  </ul>
                </section>
              );
            })}
          </div>
          {paths.truncated && <p class="hint">The {paths.edges.length} most taken of {count(paths.edgeCount)} steps between pages.</p>}
        </>
      )} />
    </Card>
  );
}
