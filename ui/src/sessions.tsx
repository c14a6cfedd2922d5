// The sessions list: query string + quick filters, sortable columns, cursor pages, a live mode; the URL holds all
// of it. Live: sessionUpdates with the list's filter; a new session comes in at the top, a shown one is updated
// in place.
import { useState } from 'preact/hooks';
import { FilterBox } from './filterbox';
import { dateTime, duration } from './format';
import { type Column, Link, Pager, type State, stateOf, Table } from './list';
import { RangeSelect, timeRangeOf } from './ranges';
import { navigate, urlOf } from './router';
import { useQuery } from './query';
import { Show } from './status';
import { LiveStatus, useLive } from './uselive';

const PAGE_SIZE = 25;

const ROW_FIELDS = `id startedAt durationMs pageCount errorCount rageClickCount deadClickCount errorClickCount
  country deviceType browser user { id identified name email }`;
const LIVE_QUERY = `subscription LiveSessions($query: String, $filter: SessionFilter) {
  sessionUpdates(query: $query, filter: $filter) { ${ROW_FIELDS} } }`;
const SESSIONS_QUERY = `query Sessions($query: String, $filter: SessionFilter, $timeRange: TimeRange,
  $orderBy: SessionOrder, $after: String, $first: Int!) {
  sessions(query: $query, filter: $filter, timeRange: $timeRange, orderBy: $orderBy, after: $after, first: $first) {
    appliedQuery
    totalCount
    pageInfo { hasNextPage endCursor }
    nodes { ${ROW_FIELDS} }
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

interface SortColumn extends Column<SessionRow> {
  sort?: string; // the API's SessionOrderField, for columns the API can order by
}

const COLUMNS: SortColumn[] = [
  { label: 'User', sort: 'USER', cell: (r) => <Link href={sessionUrl(r.id)}>{userName(r.user)}</Link> },
  { label: 'Start', sort: 'STARTED_AT', cell: (r) => dateTime(r.startedAt) },
  { label: 'Duration', sort: 'DURATION', cell: (r) => duration(r.durationMs) },
  { label: 'Pages', sort: 'PAGE_COUNT', cell: (r) => r.pageCount },
  { label: 'Errors', sort: 'ERROR_COUNT', cell: (r) => r.errorCount },
  { label: 'Frustration', sort: 'FRUSTRATION', cell: (r) => r.rageClickCount + r.deadClickCount + r.errorClickCount },
  { label: 'Country', sort: 'COUNTRY', cell: (r) => r.country ?? '' },
  { label: 'Device', sort: 'DEVICE', cell: (r) => [r.deviceType?.toLowerCase(), r.browser].filter(Boolean).join(' · ') },
];

export const sessionUrl = (id: string) => `/sessions/${encodeURIComponent(id)}`;

export function userName(user: { id: string; identified: boolean; name: string | null; email: string | null }): string {
  return user.identified ? (user.name ?? user.email ?? user.id) : 'anonymous';
}

const FRUSTRATIONS = ['rageClickCount', 'deadClickCount', 'errorClickCount'];

/** The API's variables for a state: the query string as `query`, quick filters as the typed `filter`. */
function variablesOf(state: State): Record<string, unknown> {
  const filter: Record<string, unknown> = {};
  if (state.browser) filter.browser = { eq: state.browser };
  if (state.errors) filter.hasErrors = state.errors === 'yes';
  if (state.frustrated) {
    const signals = FRUSTRATIONS.map((field) => ({ [field]: { gt: 0 } }));
    if (state.frustrated === 'yes') filter.or = signals;
    else filter.and = signals.map((signal) => ({ not: signal }));
  }
  return {
    query: state.q || null,
    filter: Object.keys(filter).length ? filter : null,
    timeRange: timeRangeOf(state),
    orderBy: state.sort ? { field: state.sort, direction: state.dir === 'ASC' ? 'ASC' : 'DESC' } : null,
    after: state.after || null,
    first: PAGE_SIZE,
  };
}

/** The loaded rows with the live updates: a session not shown comes in at the top (the latest first), a shown
 * one is replaced in place. */
function withLive(rows: SessionRow[], live: SessionRow[]): SessionRow[] {
  const updated = new Map(live.map((row) => [row.id, row]));
  const shown = new Set(rows.map((row) => row.id));
  return [...live.filter((row) => !shown.has(row.id)), ...rows.map((row) => updated.get(row.id) ?? row)];
}

export function SessionsPage({ params }: { params: URLSearchParams }) {
  const state = stateOf(params, ['q', 'range', 'from', 'to', 'browser', 'errors', 'frustrated', 'sort', 'dir', 'after', 'live']);
  const variables = variablesOf(state);
  const loaded = useQuery<SessionsAnswer>(SESSIONS_QUERY, variables);
  const [live, setLive] = useState<{ inputs: string; rows: SessionRow[] }>({ inputs: '', rows: [] });
  const inputs = JSON.stringify(variables); // updates for another filter or page are dropped
  const liveRows = live.inputs === inputs ? live.rows : [];
  const liveState = useLive<{ sessionUpdates: SessionRow }>(state.live === '1', LIVE_QUERY,
    () => ({ query: variables.query, filter: variables.filter }),
    ({ sessionUpdates: row }) => setLive((was) => ({
      inputs, rows: [row, ...(was.inputs === inputs ? was.rows : []).filter((r) => r.id !== row.id)] })),
    [inputs]);
  // a changed filter or order starts again at the first page
  const change = (changes: Record<string, string | undefined>) => navigate(urlOf('/sessions', { ...state, after: undefined, ...changes }));
  return (
    <section class="sessions">
      <FilterBox value={state.q ?? ''} onSubmit={(q) => change({ q })} />
      <QuickFilters state={state} change={change} />
      <div class="live-bar">
        <label class="live-toggle">
          <input type="checkbox" checked={state.live === '1'} onChange={(e) => change({ live: e.currentTarget.checked ? '1' : undefined })} />
          Live
        </label>
        <LiveStatus state={liveState} />
      </div>
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
            <SessionsTable rows={withLive(sessions.nodes, liveRows)} state={state} change={change} />
            <Pager path="/sessions" state={state} pageInfo={sessions.pageInfo} />
          </>
        )}
      />
    </section>
  );
}

type Change = (changes: State) => void;

function QuickFilters({ state, change }: { state: State; change: Change }) {
  const browsers = useQuery<{ topValues: { values: { value: string }[] } }>(BROWSERS_QUERY, {});
  const names = browsers.state === 'done' ? browsers.data.topValues.values.map((v) => v.value) : [];
  return (
    <div class="quick">
      <RangeSelect state={state} onChange={change} />
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
      <label>
        Frustration
        <select value={state.frustrated ?? ''} onChange={(e) => change({ frustrated: e.currentTarget.value })}>
          <option value="">Any</option>
          <option value="yes">Rage, dead or error clicks</option>
          <option value="no">None</option>
        </select>
      </label>
    </div>
  );
}

function SessionsTable({ rows, state, change }: { rows: SessionRow[]; state: State; change: Change }) {
  const head = (column: SortColumn) => <SortHeader key={column.label} column={column} state={state} change={change} />;
  return <Table rows={rows} columns={COLUMNS} name="session" id={(r) => r.id} empty="No sessions match." head={head} />;
}

function SortHeader({ column, state, change }: { column: SortColumn; state: State; change: Change }) {
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

/** The fields `SessionLinks` shows, for a page of some sessions (an issue's, a user's). */
export const SESSION_LINK_FIELDS = `pageInfo { hasNextPage endCursor } totalCount
  nodes { id startedAt durationMs pageCount errorCount user { id identified name email } }`;

export type SessionLink = Pick<SessionRow, 'id' | 'startedAt' | 'durationMs' | 'pageCount' | 'errorCount' | 'user'>;

const LINK_COLUMNS: Column<SessionLink>[] = [
  { label: 'Start', cell: (r) => <Link href={sessionUrl(r.id)}>{dateTime(r.startedAt)}</Link> },
  { label: 'User', cell: (r) => (r.user.identified ? <Link href={userUrl(r.user.id)}>{userName(r.user)}</Link> : 'anonymous') },
  { label: 'Duration', cell: (r) => duration(r.durationMs) },
  { label: 'Pages', cell: (r) => r.pageCount },
  { label: 'Errors', cell: (r) => r.errorCount },
];

export const userUrl = (id: string) => `/users/${encodeURIComponent(id)}`;

/** Some sessions, each a link to its replay, with their user. */
export function SessionLinks({ rows }: { rows: SessionLink[] }) {
  return <Table rows={rows} columns={LINK_COLUMNS} name="session" id={(r) => r.id} empty="No sessions." />;
}
