// One session: the replay, its timeline (a click seeks the player) and its facts. `?t=` is the player's position.
// Live (`?live=1`): sessionLive from the cursor of the last batch stored before the page read the session, so
// every later batch is added to the player and the timeline (those stored while it read come twice: skipped).
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { gql } from './api';
import { FACT_FIELDS, type Facts, FactsPanel } from './facts';
import { clock } from './format';
import type { Replay } from './player';
import { useQuery } from './query';
import { navigate, onLinkClick } from './router';
import { Loading, Problem, Show } from './status';
import { type Entry, entriesOf, EVENT_FIELDS, type SessionEvent } from './timeline';
import { LiveStatus, useLive } from './uselive';

const FACTS_QUERY = `query Session($id: ID!) { session(id: $id) { ${FACT_FIELDS} } }`;
const EVENTS_QUERY = `query Events($id: ID!, $after: String) { session(id: $id) {
  list: events(first: 500, after: $after) { pageInfo { hasNextPage endCursor } nodes { ${EVENT_FIELDS} } } } }`;
const CURSOR_QUERY = 'query LiveCursor($id: ID!) { session(id: $id) { liveCursor } }';
const LIVE_QUERY = `subscription Live($id: ID!, $after: String) { sessionLive(id: $id, after: $after) {
  cursor events { ${EVENT_FIELDS} } recording } }`;
const RECORDING_QUERY = `query Recording($id: ID!, $after: String) { session(id: $id) {
  list: recording(first: 500, after: $after) { pageInfo { hasNextPage endCursor } nodes } } }`;

interface Page<T> {
  pageInfo: { hasNextPage: boolean; endCursor: string | null };
  nodes: T[];
}

/** Every page of one of the session's lists, in order, each handed to `onPage` as it arrives. */
async function everyPage<T>(query: string, id: string, onPage: (nodes: T[]) => boolean | void): Promise<void> {
  let after: string | null = null;
  do {
    const answer: { session: { list: Page<T> } | null } = await gql(query, { id, after });
    if (!answer.session) throw new Error(`There is no session ${id}.`);
    if (onPage(answer.session.list.nodes) === false) return;
    after = answer.session.list.pageInfo.hasNextPage ? answer.session.list.pageInfo.endCursor : null;
  } while (after);
}

/** The position in the URL, replaced without a navigation (nothing else depends on it once the page is open). */
function rememberPosition(ms: number): void {
  const url = new URL(location.href);
  url.searchParams.set('t', String(Math.round(ms)));
  history.replaceState(null, '', url);
}

type ReplayState = { state: 'loading' } | { state: 'error'; message: string } | { state: 'none' } | { state: 'ready'; start: number; complete: boolean };

const FULL_SNAPSHOT = 2; // rrweb's event type for a whole document

interface RecordedEvent {
  timestamp: number;
  type: number;
}

/** The player in `host`: the first page of the recording starts it, later pages (and live batches) are added. */
function useReplay(id: string, startAt: number, readable: Promise<unknown>) {
  const host = useRef<HTMLDivElement>(null);
  const replay = useRef<Replay | null>(null);
  const snapshots = useRef<number[]>([]); // the full snapshots' timestamps, as the pages of the recording arrive
  const loaded = useRef(new Set<string>()); // the events read, as JSON: a live batch read too is not added twice
  const [status, setStatus] = useState<ReplayState>({ state: 'loading' });
  const [count, setCount] = useState(0);
  const add = useRef<(nodes: RecordedEvent[], live: boolean) => void>(() => {});
  useEffect(() => {
    let open = true;
    let start = 0;
    let last = 0;
    let creating: Promise<unknown> | null = null;
    const loading = import('./player');
    let lastSecond = -1;
    const onTime = (ms: number) => {
      if (Math.floor(ms / 1000) !== lastSecond) rememberPosition(ms);
      lastSecond = Math.floor(ms / 1000);
    };
    snapshots.current = [];
    loaded.current = new Set();
    add.current = (nodes, live) => {
      if (live) nodes = nodes.filter((node) => !loaded.current.has(JSON.stringify(node)));
      else nodes.forEach((node) => loaded.current.add(JSON.stringify(node))); // before the player edits them
      if (!open || nodes.length === 0) return;
      snapshots.current.push(...nodes.filter((node) => node.type === FULL_SNAPSHOT).map((node) => node.timestamp));
      last = Math.max(last, ...nodes.map((node) => node.timestamp));
      setCount((n) => n + nodes.length);
      if (creating) {
        // the player follows the live edge: the latest state on screen
        void creating.then(() => replay.current?.add(nodes)).then(() => live && replay.current?.goto(last - start));
        return;
      }
      start = nodes[0].timestamp;
      creating = loading.then(({ createReplay }) => open && (replay.current = createReplay(host.current!, nodes, onTime)));
      setStatus({ state: 'ready', start, complete: live });
    };
    readable
      .then(() => everyPage<RecordedEvent>(RECORDING_QUERY, id, (nodes) => (open ? add.current(nodes, false) : false)))
      .then(() => creating ?? setStatus({ state: 'none' }))
      .then(() => {
        if (!open || !replay.current) return;
        if (startAt > 0) replay.current.goto(startAt); // a shared position, once the recording is whole
        setStatus({ state: 'ready', start, complete: true });
      })
      .catch((error: Error) => open && setStatus({ state: 'error', message: error.message }));
    return () => {
      open = false;
      replay.current?.destroy();
      replay.current = null;
    };
  }, [id]);
  return { host, replay, status, snapshots, count, add };
}

/** The timeline's events, read in pages; `add` appends live ones not read already (by event id). */
function useEntries(id: string, readable: Promise<unknown>) {
  const [entries, setEntries] = useState<Entry[] | string | null>(null);
  const events = useRef<SessionEvent[]>([]);
  const ids = useRef(new Set<string>());
  const add = (more: SessionEvent[]) => {
    const fresh = more.filter((event) => !ids.current.has(event.id));
    fresh.forEach((event) => ids.current.add(event.id));
    events.current.push(...fresh);
    if (fresh.length) setEntries(entriesOf(events.current));
  };
  useEffect(() => {
    let open = true;
    events.current = [];
    ids.current = new Set();
    readable
      .then(() => everyPage<SessionEvent>(EVENTS_QUERY, id, (nodes) => void add(nodes)))
      .then(() => open && setEntries(entriesOf(events.current)),
        (error: Error) => open && setEntries(error.message));
    return () => {
      open = false;
    };
  }, [id]);
  return { entries, add };
}

interface LiveUpdate {
  sessionLive: { cursor: string; events: SessionEvent[]; recording: RecordedEvent[] };
}

/** `?live=1` on or off, replacing the URL (like the position, it is not a step of the history). */
function setLiveMode(on: boolean): void {
  const url = new URL(location.href);
  if (on) url.searchParams.set('live', '1');
  else url.searchParams.delete('live');
  navigate(url.pathname + url.search, true);
}

export function SessionPage({ id, params }: { id: string; params: URLSearchParams }) {
  const facts = useQuery<{ session: Facts | null }>(FACTS_QUERY, { id });
  const [startAt] = useState(() => Number(params.get('t')) || 0);
  // the last batch's cursor, asked before the events and the recording are read: live goes on from there
  const cursor = useRef<string | null>(null);
  const readable = useMemo(() => gql<{ session: { liveCursor: string | null } | null }>(CURSOR_QUERY, { id }).then(
    (answer) => (cursor.current = answer.session?.liveCursor ?? null), () => null), [id]);
  const { host, replay, status, snapshots, count, add } = useReplay(id, startAt, readable);
  const { entries, add: addEvents } = useEntries(id, readable);
  const live = params.get('live') === '1';
  const liveState = useLive<LiveUpdate>(live, LIVE_QUERY, () => ({ id, after: cursor.current }), ({ sessionLive: batch }) => {
    cursor.current = batch.cursor; // a reconnect resumes after it
    addEvents(batch.events);
    add.current(batch.recording, true);
  }, [id]);
  const seek = (ms: number) => {
    replay.current?.goto(ms);
    rememberPosition(ms);
  };
  return (
    <section class="session">
      <p class="crumbs">
        <a href="/sessions" onClick={onLinkClick}>Sessions</a> / <code>{id}</code>{' '}
        <button type="button" class="live-button" aria-pressed={live} onClick={() => setLiveMode(!live)}>
          {live ? 'Stop live' : 'Live'}
        </button>{' '}
        <LiveStatus state={liveState} />
      </p>
      <div class="session-grid">
        <div class="replay" data-recording-events={count}>
          <div ref={host} class="player" />
          <ReplayStatus status={status} />
        </div>
        <Timeline entries={entries} start={status.state === 'ready' ? status.start : null} snapshots={snapshots.current} seek={seek} />
        <Show loaded={facts} render={({ session }) => (session ? <FactsPanel facts={session} /> : <Problem message={`There is no session ${id}.`} />)} />
      </div>
    </section>
  );
}

function ReplayStatus({ status }: { status: ReplayState }) {
  if (status.state === 'loading') return <Loading />;
  if (status.state === 'error') return <Problem message={status.message} />;
  if (status.state === 'none') return <p class="empty">This session has no recording.</p>;
  return status.complete ? null : <p class="loading">Loading the rest of the recording…</p>;
}

/** When a page entry's document is on screen: a full load's snapshot comes some ms after its page event, so its
 * first full snapshot before the next page, if any; else (a route change in place) the page event's own time. */
function shownAt(entries: Entry[], i: number, snapshots: number[]): number {
  const entry = entries[i];
  if (entry.kind !== 'page') return entry.at;
  const next = entries.slice(i + 1).find((later) => later.kind === 'page')?.at ?? Infinity;
  return snapshots.find((at) => at >= entry.at && at < next) ?? entry.at;
}

interface TimelineProps {
  entries: Entry[] | string | null;
  start: number | null;
  snapshots: number[];
  seek: (ms: number) => void;
}

function Timeline({ entries, start, snapshots, seek }: TimelineProps) {
  if (entries === null) return <Loading />;
  if (typeof entries === 'string') return <Problem message={entries} />;
  return (
    <ol class="timeline">
      {entries.map((entry, i) => {
        const offset = start === null ? null : Math.max(0, entry.at - start);
        const target = start === null ? null : Math.max(0, shownAt(entries, i, snapshots) - start);
        return (
          <li key={i} class={`entry kind-${entry.kind}${entry.failed ? ' failed' : ''}`}>
            <button type="button" disabled={target === null} onClick={() => target !== null && seek(target)}
              data-offset={offset ?? undefined} data-seek={target ?? undefined}>
              <time>{offset === null ? '' : clock(offset)}</time>
              <b>{entry.label}</b>
              <span>{entry.detail}</span>
            </button>
          </li>
        );
      })}
    </ol>
  );
}
