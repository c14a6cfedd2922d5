// The shell: sign-in gate, navigation, and which page the URL names.
import { useEffect, useState } from 'preact/hooks';
import { storedKey, storeKey } from './api';
import { navigate, onLinkClick, type Place, usePlace } from './router';
import { DashboardsPage } from './dashboards';
import { IssuePage } from './issue';
import { IssuesPage } from './issues';
import { SessionPage } from './session';
import { SessionsPage } from './sessions';
import { fetchViewer, SignIn, type Viewer } from './signin';
import { Problem } from './status';
import { UserPage, UsersPage } from './users';

type Check = { state: 'checking' } | { state: 'signed-out'; problem?: string } | { state: 'in'; viewer: Viewer };

/** A key kept from earlier in this tab is checked once; a revoked or wrong one asks for a key again. */
function useViewer(): [Check, (check: Check) => void] {
  const [check, setCheck] = useState<Check>(() => (storedKey() ? { state: 'checking' } : { state: 'signed-out' }));
  useEffect(() => {
    const key = storedKey();
    if (!key) return;
    fetchViewer(key).then(
      (viewer) => setCheck({ state: 'in', viewer }),
      (error: Error) => {
        storeKey(null);
        setCheck({ state: 'signed-out', problem: error.message });
      },
    );
  }, []);
  return [check, setCheck];
}

export function App() {
  const [check, setCheck] = useViewer();
  const place = usePlace();
  if (check.state === 'signed-out') {
    // the URL is left alone, so signing in lands on the view it names
    return (
      <>
        <SignIn onSignedIn={(viewer) => setCheck({ state: 'in', viewer })} />
        {check.problem && <Problem message={check.problem} />}
      </>
    );
  }
  const signOut = () => {
    storeKey(null);
    setCheck({ state: 'signed-out' });
  };
  return (
    <div class="layout">
      {/* the page loads while a kept key is checked: one round trip less before the data shows */}
      <Header viewer={check.state === 'in' ? check.viewer : null} path={place.path} onSignOut={signOut} />
      <main class="page">
        <Page place={place} viewer={check.state === 'in' ? check.viewer : null} />
      </main>
    </div>
  );
}

const NAV = [
  { path: '/sessions', label: 'Sessions' },
  { path: '/issues', label: 'Issues' },
  { path: '/users', label: 'Users' },
  { path: '/dashboards', label: 'Dashboards' },
];

function Header({ viewer, path, onSignOut }: { viewer: Viewer | null; path: string; onSignOut: () => void }) {
  return (
    <header class="top">
      <a class="brand" href="/sessions" onClick={onLinkClick}>
        replayql
      </a>
      <nav>
        {NAV.map((item) => (
          <a
            key={item.path}
            href={item.path}
            onClick={onLinkClick}
            aria-current={path.startsWith(item.path) ? 'page' : undefined}
          >
            {item.label}
          </a>
        ))}
        {/* GraphiQL's page reads the signed-in key from this tab's sessionStorage */}
        <a href="/graphql">GraphiQL</a>
      </nav>
      {viewer && (
        <span class="viewer" title={`key ${viewer.keyId}`}>
          <b>{viewer.appId}</b> · <span class="scopes">{viewer.scopes.join(', ').toLowerCase()}</span>
        </span>
      )}
      <button type="button" class="signout" onClick={onSignOut}>
        Sign out
      </button>
    </header>
  );
}

function Redirect({ to }: { to: string }) {
  useEffect(() => navigate(to, true), [to]);
  return null;
}

function Page({ place, viewer }: { place: Place; viewer: Viewer | null }) {
  const [section, id] = place.path.split('/').slice(1).map(decodeURIComponent);
  const { params } = place;
  if (section === '') return <Redirect to="/sessions" />;
  if (section === 'sessions') return id ? <SessionPage id={id} params={params} /> : <SessionsPage params={params} />;
  if (section === 'issues') return id ? <IssuePage key={id} id={id} params={params} viewer={viewer} /> : <IssuesPage params={params} />;
  if (section === 'users') return id ? <UserPage id={id} params={params} /> : <UsersPage params={params} />;
  if (section === 'dashboards' && !id) return <DashboardsPage params={params} />;
  return <Problem message={`There is no page at ${place.path}.`} />;
}
