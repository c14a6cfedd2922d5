// The users list (cursor pages) and one user's page: traits and sessions, each a link to its replay.
import { Section, type Row } from './facts';
import { dateTime } from './format';
import { type Column, Link, Pager, stateOf, Table } from './list';
import { useQuery } from './query';
import { SESSION_LINK_FIELDS, type SessionLink, SessionLinks, userUrl } from './sessions';
import { Problem, Show } from './status';

const USERS_QUERY = `query Users($after: String, $first: Int!) { users(after: $after, first: $first) {
  totalCount pageInfo { hasNextPage endCursor } nodes { id name email sessionCount firstSeen lastSeen } } }`;
const USER_QUERY = `query User($id: ID!, $after: String) { user(id: $id) {
  id identified name email traits firstSeen lastSeen sessionCount sessions(first: 25, after: $after) { ${SESSION_LINK_FIELDS} } } }`;

interface UserRow {
  id: string;
  name: string | null;
  email: string | null;
  sessionCount: number;
  firstSeen: string;
  lastSeen: string;
}

interface UserDetail extends UserRow {
  traits: Record<string, unknown>;
  sessions: { totalCount: number; pageInfo: { hasNextPage: boolean; endCursor: string | null }; nodes: SessionLink[] };
}

const COLUMNS: Column<UserRow>[] = [
  { label: 'Name', cell: (r) => <Link href={userUrl(r.id)}>{r.name ?? r.id}</Link> },
  { label: 'Email', cell: (r) => r.email ?? '' },
  { label: 'Sessions', cell: (r) => r.sessionCount },
  { label: 'First seen', cell: (r) => dateTime(r.firstSeen) },
  { label: 'Last seen', cell: (r) => dateTime(r.lastSeen) },
];

export function UsersPage({ params }: { params: URLSearchParams }) {
  const state = stateOf(params, ['after']);
  const loaded = useQuery<{ users: { totalCount: number; pageInfo: { hasNextPage: boolean; endCursor: string | null }; nodes: UserRow[] } }>(
    USERS_QUERY,
    { after: state.after || null, first: 25 },
  );
  return (
    <section class="users">
      <Show
        loaded={loaded}
        render={({ users }) => (
          <>
            <p class="applied">{users.totalCount} users</p>
            <Table rows={users.nodes} columns={COLUMNS} name="user" id={(r) => r.id} empty="No users." />
            <Pager path="/users" state={state} pageInfo={users.pageInfo} />
          </>
        )}
      />
    </section>
  );
}

export function UserPage({ id, params }: { id: string; params: URLSearchParams }) {
  const state = stateOf(params, ['after']);
  const loaded = useQuery<{ user: UserDetail | null }>(USER_QUERY, { id, after: state.after || null });
  return (
    <section class="user">
      <p class="crumbs">
        <Link href="/users">Users</Link> / <code>{id}</code>
      </p>
      <Show
        loaded={loaded}
        render={({ user }) =>
          user ? (
            <>
              <h2>{user.name ?? user.id}</h2>
              <aside class="facts">
                <Section
                  title="User"
                  rows={[
                    ['id', user.id],
                    ['email', user.email],
                    ['sessions', user.sessionCount],
                    ['first seen', dateTime(user.firstSeen)],
                    ['last seen', dateTime(user.lastSeen)],
                  ]}
                />
                <Section title="Traits" rows={Object.entries(user.traits).map(([k, v]): Row => [k, typeof v === 'string' ? v : JSON.stringify(v)])} />
              </aside>
              <h3>Sessions ({user.sessions.totalCount})</h3>
              <SessionLinks rows={user.sessions.nodes} />
              <Pager path={userUrl(user.id)} state={state} pageInfo={user.sessions.pageInfo} />
            </>
          ) : (
            <Problem message={`There is no user ${id}.`} />
          )
        }
      />
    </section>
  );
}
