// The issues list: status and time filters, cursor pages, and a sparkline per issue from one `aggregate` request.
import { dateTime } from './format';
import { type Column, Link, Pager, type State, stateOf, Table } from './list';
import { useQuery } from './query';
import { intervalOf, RangeSelect, spanOf, thisMinute, timeRangeOf } from './ranges';
import { navigate, urlOf } from './router';
import { Show } from './status';

const PAGE_SIZE = 25;
export const STATUSES = ['OPEN', 'RESOLVED', 'IGNORED'] as const;

const ISSUES_QUERY = `query Issues($filter: IssueFilter, $timeRange: TimeRange, $after: String, $first: Int!) {
  issues(filter: $filter, timeRange: $timeRange, after: $after, first: $first) {
    totalCount
    pageInfo { hasNextPage endCursor }
    nodes { id title errorType status count sessionCount userCount firstSeen lastSeen }
  }
}`;
// occurrences (error events) per issue and time bucket, for the issues of one page
const TREND_QUERY = `query Trend($input: AggregateInput!) { aggregate(input: $input) { rows } }`;

interface IssueRow {
  id: string;
  title: string;
  errorType: string;
  status: string;
  count: number;
  sessionCount: number;
  userCount: number;
  firstSeen: string;
  lastSeen: string;
}

interface IssuesAnswer {
  issues: { totalCount: number; pageInfo: { hasNextPage: boolean; endCursor: string | null }; nodes: IssueRow[] };
}

export const issueUrl = (id: string) => `/issues/${encodeURIComponent(id)}`;

export function StatusBadge({ status }: { status: string }) {
  return <span class={`status status-${status.toLowerCase()}`}>{status.toLowerCase()}</span>;
}

export function IssuesPage({ params }: { params: URLSearchParams }) {
  const state = stateOf(params, ['status', 'range', 'from', 'to', 'after']);
  const loaded = useQuery<IssuesAnswer>(ISSUES_QUERY, {
    filter: state.status ? { status: { eq: state.status } } : null,
    timeRange: timeRangeOf(state),
    after: state.after || null,
    first: PAGE_SIZE,
  });
  const change = (changes: State) => navigate(urlOf('/issues', { ...state, after: undefined, ...changes }));
  return (
    <section class="issues">
      <div class="quick">
        <label>
          Status
          <select value={state.status ?? ''} onChange={(e) => change({ status: e.currentTarget.value })}>
            <option value="">Any</option>
            {STATUSES.map((status) => (
              <option key={status} value={status}>{status.toLowerCase()}</option>
            ))}
          </select>
        </label>
        <RangeSelect state={state} onChange={change} />
      </div>
      <Show
        loaded={loaded}
        render={({ issues }) => (
          <>
            <p class="applied">{issues.totalCount} issues</p>
            {issues.nodes.length ? <IssuesTable rows={issues.nodes} state={state} /> : <p class="empty">No issues match.</p>}
            <Pager path="/issues" state={state} pageInfo={issues.pageInfo} />
          </>
        )}
      />
    </section>
  );
}

/** The sparkline's span: the chosen range, or from the page's oldest first occurrence up to now. */
function trendSpan(rows: IssueRow[], state: State): { from: number; to: number } {
  const to = thisMinute() + 60_000;
  return spanOf(state) ?? { from: Math.min(...rows.map((r) => Date.parse(r.firstSeen))), to };
}

/** Per issue id, its occurrences in each bucket, oldest first (the API fills empty buckets). */
function useTrends(rows: IssueRow[], state: State): Map<string, number[]> {
  const { from, to } = trendSpan(rows, state);
  const interval = intervalOf({ from, to }, 120);
  const trend = useQuery<{ aggregate: { rows: [string, string, number][] } }>(TREND_QUERY, {
    input: {
      source: 'ERRORS',
      query: `issueId IN (${rows.map((r) => JSON.stringify(r.id)).join(', ')})`,
      measures: [{ alias: 'occurrences', fn: 'COUNT' }],
      groupBy: [{ field: 'issueId' }],
      interval,
      timeRange: { from: new Date(from).toISOString(), to: new Date(to).toISOString() },
    },
  });
  const trends = new Map<string, number[]>();
  if (trend.state !== 'done') return trends;
  for (const [, id, count] of trend.data.aggregate.rows) trends.set(id, [...(trends.get(id) ?? []), count]);
  return trends;
}

function Sparkline({ counts }: { counts: number[] | undefined }) {
  if (!counts) return null;
  const top = Math.max(1, ...counts);
  const step = 100 / Math.max(1, counts.length - 1);
  const points = counts.map((n, i) => `${(i * step).toFixed(1)},${(19 - (n / top) * 18).toFixed(1)}`).join(' ');
  return (
    <svg class="sparkline" viewBox="0 0 100 20" preserveAspectRatio="none" data-counts={counts.join(',')} aria-label={`${counts.reduce((a, b) => a + b, 0)} occurrences`}>
      <polyline points={points} />
    </svg>
  );
}

function IssuesTable({ rows, state }: { rows: IssueRow[]; state: State }) {
  const trends = useTrends(rows, state);
  const columns: Column<IssueRow>[] = [
    { label: 'Status', cell: (r) => <StatusBadge status={r.status} /> },
    {
      label: 'Issue',
      cell: (r) => (
        <>
          <Link href={issueUrl(r.id)}>{r.title}</Link> <small class="error-type">{r.errorType}</small>
        </>
      ),
    },
    { label: 'Count', cell: (r) => r.count },
    { label: 'Sessions', cell: (r) => r.sessionCount },
    { label: 'Users', cell: (r) => r.userCount },
    { label: 'First seen', cell: (r) => dateTime(r.firstSeen) },
    { label: 'Last seen', cell: (r) => dateTime(r.lastSeen) },
    { label: 'Occurrences', cell: (r) => <Sparkline counts={trends.get(r.id)} /> },
  ];
  return <Table rows={rows} columns={columns} name="issue" id={(r) => r.id} empty="No issues match." />;
}
