// Sign-in with an API key: checked against the API (`viewer`) before it is kept for the tab.
import { useState } from 'preact/hooks';
import { gql, storeKey } from './api';
import { Problem } from './status';

export interface Viewer {
  appId: string;
  keyId: string;
  scopes: string[];
}

export const VIEWER_QUERY = '{ viewer { appId keyId scopes } }';

export async function fetchViewer(key: string): Promise<Viewer> {
  return (await gql<{ viewer: Viewer }>(VIEWER_QUERY, {}, key)).viewer;
}

export function SignIn({ onSignedIn }: { onSignedIn: (viewer: Viewer) => void }) {
  const [key, setKey] = useState('');
  const [problem, setProblem] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  async function submit(event: Event) {
    event.preventDefault();
    setBusy(true);
    setProblem(null);
    try {
      const viewer = await fetchViewer(key.trim());
      storeKey(key.trim());
      onSignedIn(viewer);
    } catch (error) {
      setProblem((error as Error).message);
      setBusy(false);
    }
  }

  return (
    <main class="signin">
      <h1>replayql</h1>
      <form onSubmit={submit}>
        <label for="api-key">API key</label>
        <input
          id="api-key"
          type="password"
          autocomplete="off"
          placeholder="rq_…"
          value={key}
          onInput={(e) => setKey(e.currentTarget.value)}
          required
        />
        <button type="submit" disabled={busy}>
          Sign in
        </button>
        <p class="hint">The key stays in this tab (sessionStorage) and is sent only to this server.</p>
        {problem && <Problem message={problem} />}
      </form>
    </main>
  );
}
