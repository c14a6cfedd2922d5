// One issue: what failed and where (the sample's stack), its counts and releases, the sessions and users it hit,
// and its status, changed with `updateIssue` when the key may write.
import { useState } from 'preact/hooks';
import { gql } from './api';
import { Section } from './facts';
import { dateTime } from './format';
import { Link, Pager, stateOf } from './list';
import { issueUrl, STATUSES, StatusBadge } from './issues';
import { useQuery } from './query';
import { SESSION_LINK_FIELDS, type SessionLink, SessionLinks, userName, userUrl } from './sessions';
import type { Viewer } from './signin';
import { Problem, Show } from './status';

const ISSUE_QUERY = `query Issue($id: ID!, $after: String) { issue(id: $id) {
  id title errorType message status firstSeen lastSeen count sessionCount userCount releases sampleStack
  sessions(first: 25, after: $after) { ${SESSION_LINK_FIELDS} } } }`;
const UPDATE_ISSUE = `mutation UpdateIssue($id: ID!, $status: IssueStatus!) { updateIssue(id: $id, status: $status) { status } }`;

interface IssueDetail {
  id: string;
  title: string;
  errorType: string;
  message: string;
  status: string;
  firstSeen: string;
  lastSeen: string;
  count: number;
  sessionCount: number;
  userCount: number;
  releases: string[];
  sampleStack: string | null;
  sessions: { totalCount: number; pageInfo: { hasNextPage: boolean; endCursor: string | null }; nodes: SessionLink[] };
}

const ACTIONS: Record<(typeof STATUSES)[number], string> = { RESOLVED: 'Resolve', IGNORED: 'Ignore', OPEN: 'Reopen' };

export function IssuePage({ id, params, viewer }: { id: string; params: URLSearchParams; viewer: Viewer | null }) {
  const state = stateOf(params, ['after']);
  const loaded = useQuery<{ issue: IssueDetail | null }>(ISSUE_QUERY, { id, after: state.after || null });
  return (
    <section class="issue">
      <p class="crumbs">
        <Link href="/issues">Issues</Link> / <code>{id}</code>
      </p>
      <Show
        loaded={loaded}
        render={({ issue }) =>
          issue ? <IssueView issue={issue} viewer={viewer} state={state} /> : <Problem message={`There is no issue ${id}.`} />
        }
      />
    </section>
  );
}

function IssueView({ issue, viewer, state }: { issue: IssueDetail; viewer: Viewer | null; state: Record<string, string | undefined> }) {
  const users = [...new Map(issue.sessions.nodes.filter((s) => s.user.identified).map((s) => [s.user.id, s.user])).values()];
  return (
    <>
      <h2 class="issue-title">{issue.title}</h2>
      <StatusActions id={issue.id} initial={issue.status} viewer={viewer} />
      <aside class="facts">
        <Section
          title="Issue"
          rows={[
            ['error type', issue.errorType],
            ['message', issue.message],
            ['occurrences', issue.count],
            ['sessions', issue.sessionCount],
            ['users', issue.userCount],
            ['first seen', dateTime(issue.firstSeen)],
            ['last seen', dateTime(issue.lastSeen)],
            ['releases', issue.releases.join(', ')],
          ]}
        />
      </aside>
      <h3>Stack</h3>
      {issue.sampleStack ? <pre class="stack">{issue.sampleStack}</pre> : <p class="empty">The sample has no stack.</p>}
      <h3>Sessions ({issue.sessions.totalCount})</h3>
      <SessionLinks rows={issue.sessions.nodes} />
      <Pager path={issueUrl(issue.id)} state={state} pageInfo={issue.sessions.pageInfo} />
      <h3>Users in these sessions</h3>
      <ul class="users-hit">
        {users.map((user) => (
          <li key={user.id}>
            <Link href={userUrl(user.id)}>{userName(user)}</Link>
          </li>
        ))}
      </ul>
    </>
  );
}

/** Why the key may not change an issue's status; null when it may. */
function readOnlyReason(viewer: Viewer | null): string | null {
  if (!viewer) return "Checking the key's scopes…";
  if (viewer.scopes.some((scope) => scope === 'WRITE' || scope === 'ADMIN')) return null;
  return `This key's scope is ${viewer.scopes.join(', ').toLowerCase()}: changing an issue's status needs the write scope.`;
}

function StatusActions({ id, initial, viewer }: { id: string; initial: string; viewer: Viewer | null }) {
  const [status, setStatus] = useState(initial);
  const [busy, setBusy] = useState(false);
  const [problem, setProblem] = useState<string | null>(null);
  const reason = readOnlyReason(viewer);
  const change = (next: string) => {
    setBusy(true);
    setProblem(null);
    gql<{ updateIssue: { status: string } }>(UPDATE_ISSUE, { id, status: next })
      .then((answer) => setStatus(answer.updateIssue.status), (error: Error) => setProblem(error.message))
      .finally(() => setBusy(false));
  };
  return (
    <div class="status-actions">
      <StatusBadge status={status} />
      {STATUSES.filter((next) => next !== status).map((next) => (
        <button key={next} type="button" disabled={busy || reason !== null} title={reason ?? undefined} onClick={() => change(next)}>
          {ACTIONS[next]}
        </button>
      ))}
      {reason && <span class="reason">{reason}</span>}
      {problem && <Problem message={problem} />}
    </div>
  );
}
