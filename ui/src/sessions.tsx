// The sessions list: query string + quick filters, sortable columns, cursor pages; the URL holds all of it.
import { FilterBox } from './filterbox';
import { dateTime, duration } from './format';
import { onLinkClick, navigate, urlOf } from './router';
import { useQuery } from './query';
import { Show } from './status';

const PAGE_SIZE = 25;

const SESSIONS_QUERY = `query Sessions($query: String, $filter: SessionFilter, $timeRange: TimeRange,
  $orderBy: SessionOrder, $after: String, $first: Int!) {
  sessions(query: $query, filter: $filter, timeRange: $timeRange, orderBy: $orderBy, after: $after, first: $first) {
    appliedQuery
    totalCount
    pageInfo { hasNextPage endCursor }
    nodes {
      id startedAt durationMs pageCount errorCount rageClickCount deadClickCount errorClickCount
      country deviceType browser
      user { id identified name email }
    }
  }
}`;
const BROWSERS_QUERY = 'query Browsers { topValues(entity: SESSIONS, key: "browser", limit: 20) { values { value } } }';

interface SessionRow {
  id: string;
  startedAt: string;
  durationMs: number;
  pageCount: number;
  errorCount: number;
  rageClickCount: number;
  deadClickCount: number;
  errorClickCount: number;
  country: string | null;
  deviceType: string | null;
  browser: string | null;
  user: { id: string; identified: boolean; name: string | null; email: string | null };
}

interface SessionsAnswer {
  sessions: {
    appliedQuery: string | null;
    totalCount: number;
    pageInfo: { hasNextPage: boolean; endCursor: string | null };
    nodes: SessionRow[];
  };
}

const RANGES: Record<string, { label: string; hours: number }> = {
  '24h': { label: 'Last 24 hours', hours: 24 },
  '7d': { label: 'Last 7 days', hours: 24 * 7 },
  '30d': { label: 'Last 30 days', hours: 24 * 30 },
};

interface Column {
  label: string;
  sort?: string; // the API's SessionOrderField, for columns the API can order by
  cell: (row: SessionRow) => string | number;
}

const COLUMNS: Column[] = [
  { label: 'User', cell: (r) => (r.user.identified ? (r.user.name ?? r.user.email ?? r.user.id) : 'anonymous') },
  { label: 'Start', sort: 'STARTED_AT', cell: (r) => dateTime(r.startedAt) },
  { label: 'Duration', sort: 'DURATION', cell: (r) => duration(r.durationMs) },
  { label: 'Pages', sort: 'PAGE_COUNT', cell: (r) => r.pageCount },
  { label: 'Errors', sort: 'ERROR_COUNT', cell: (r) => r.errorCount },
  { label: 'Frustration', cell: (r) => r.rageClickCount + r.deadClickCount + r.errorClickCount },
  { label: 'Country', cell: (r) => r.country ?? '' },
  { label: 'Device', cell: (r) => [r.deviceType, r.browser].filter(Boolean).join(' · ') },
];

/** The list's state as the URL holds it. */
function stateOf(params: URLSearchParams): Record<string, string | undefined> {
  const keys = ['q', 'range', 'browser', 'errors', 'sort', 'dir', 'after'];
  return Object.fromEntries(keys.map((key) => [key, params.get(key) ?? undefined]));
}

/** The API's variables for a state: the query string as `query`, quick filters as the typed `filter`. */
function variablesOf(state: Record<string, string | undefined>): Record<string, unknown> {
  const filter: Record<string, unknown> = {};
  if (state.browser) filter.browser = { eq: state.browser };
  if (state.errors) filter.hasErrors = state.errors === 'yes';
  const range = state.range ? RANGES[state.range] : undefined;
  return {
    query: state.q || null,
    filter: Object.keys(filter).length ? filter : null,
    // rounded to the minute, so a reload within it asks the same question
    timeRange: range ? { from: new Date(Math.floor(Date.now() / 60_000) * 60_000 - range.hours * 3_600_000).toISOString() } : null,
    orderBy: state.sort ? { field: state.sort, direction: state.dir === 'ASC' ? 'ASC' : 'DESC' } : null,
    after: state.after || null,
    first: PAGE_SIZE,
  };
}

export function SessionsPage({ params }: { params: URLSearchParams }) {
  const state = stateOf(params);
  const loaded = useQuery<SessionsAnswer>(SESSIONS_QUERY, variablesOf(state));
  // a changed filter or order starts again at the first page
  const change = (changes: Record<string, string | undefined>) => navigate(urlOf('/sessions', { ...state, after: undefined, ...changes }));
  return (
    <section class="sessions">
      <FilterBox value={state.q ?? ''} onSubmit={(q) => change({ q })} />
      <QuickFilters state={state} change={change} />
      <Show
        loaded={loaded}
        render={({ sessions }) => (
          <>
            <p class="applied">
              {sessions.totalCount} sessions
              {sessions.appliedQuery && (
                <>
                  {' '}
                  matching <code class="applied-query">{sessions.appliedQuery}</code>
                </>
              )}
            </p>
            <SessionsTable rows={sessions.nodes} state={state} change={change} />
            <nav class="pager">
              {state.after && <button onClick={() => change({})}>← First page</button>}
              {sessions.pageInfo.hasNextPage && (
                <button onClick={() => navigate(urlOf('/sessions', { ...state, after: sessions.pageInfo.endCursor ?? undefined }))}>
                  Next page →
                </button>
              )}
            </nav>
          </>
        )}
      />
    </section>
  );
}

type Change = (changes: Record<string, string | undefined>) => void;

function QuickFilters({ state, change }: { state: Record<string, string | undefined>; change: Change }) {
  const browsers = useQuery<{ topValues: { values: { value: string }[] } }>(BROWSERS_QUERY, {});
  const names = browsers.state === 'done' ? browsers.data.topValues.values.map((v) => v.value) : [];
  return (
    <div class="quick">
      <label>
        Time
        <select value={state.range ?? ''} onChange={(e) => change({ range: e.currentTarget.value })}>
          <option value="">All time</option>
          {Object.entries(RANGES).map(([value, range]) => (
            <option key={value} value={value}>{range.label}</option>
          ))}
        </select>
      </label>
      <label>
        Browser
        <select value={state.browser ?? ''} onChange={(e) => change({ browser: e.currentTarget.value })}>
          <option value="">Any</option>
          {[...new Set([...names, ...(state.browser ? [state.browser] : [])])].map((name) => (
            <option key={name} value={name}>{name}</option>
          ))}
        </select>
      </label>
      <label>
        Errors
        <select value={state.errors ?? ''} onChange={(e) => change({ errors: e.currentTarget.value })}>
          <option value="">Any</option>
          <option value="yes">With errors</option>
          <option value="no">Without errors</option>
        </select>
      </label>
    </div>
  );
}

function SessionsTable({ rows, state, change }: { rows: SessionRow[]; state: Record<string, string | undefined>; change: Change }) {
  if (rows.length === 0) return <p class="empty">No sessions match.</p>;
  return (
    <div class="table-scroll">
      <table class="sessions-table">
        <thead>
          <tr>
            {COLUMNS.map((column) => (
              <SortHeader key={column.label} column={column} state={state} change={change} />
            ))}
          </tr>
        </thead>
        <tbody>
          {rows.map((row) => (
            <tr key={row.id} data-session-id={row.id}>
              {COLUMNS.map((column, i) => (
                <td key={column.label}>
                  {i === 0 ? (
                    <a href={`/sessions/${encodeURIComponent(row.id)}`} onClick={onLinkClick}>
                      {column.cell(row)}
                    </a>
                  ) : (
                    column.cell(row)
                  )}
                </td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function SortHeader({ column, state, change }: { column: Column; state: Record<string, string | undefined>; change: Change }) {
  if (!column.sort) return <th>{column.label}</th>;
  const sorted = (state.sort ?? 'STARTED_AT') === column.sort;
  const direction = sorted ? (state.dir ?? 'DESC') : undefined;
  const next = direction === 'DESC' ? 'ASC' : 'DESC';
  return (
    <th aria-sort={direction === 'ASC' ? 'ascending' : direction === 'DESC' ? 'descending' : 'none'}>
      <button type="button" class="sort" onClick={() => change({ sort: column.sort, dir: next })}>
        {column.label} {direction === 'ASC' ? '▲' : direction === 'DESC' ? '▼' : ''}
      </button>
    </th>
  );
}
