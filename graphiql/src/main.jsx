// The GraphiQL page served at GET /graphql. The page's Content-Security-Policy allows no inline script, so the
// boot code is here, in the bundle.
import { createGraphiQLFetcher } from '@graphiql/toolkit';
import { GraphiQL } from 'graphiql';
import 'graphiql/graphiql.css';
import './page.css';
import { createRoot } from 'react-dom/client';

/** A Storage that lives as long as the page: GraphiQL keeps tabs, queries, variables and headers in its
 * storage, and a pasted API key must never reach localStorage or sessionStorage. */
function memoryStorage() {
  const items = new Map();
  return {
    getItem: (key) => (items.has(key) ? items.get(key) : null),
    setItem: (key, value) => void items.set(key, String(value)),
    removeItem: (key) => void items.delete(key),
    clear: () => items.clear(),
    get length() {
      return items.size;
    },
  };
}

const fetcher = createGraphiQLFetcher({ url: location.pathname });

// The web UI (same origin) keeps its signed-in key in the tab's sessionStorage; its GraphiQL link lands here with
// that key in the headers. This page only reads it: what GraphiQL keeps still lives in memory only.
const uiKey = sessionStorage.getItem('replayql.key');
const headers = `{"Authorization": ${JSON.stringify(`token ${uiKey ?? '<your key>'}`)}}`;

createRoot(document.getElementById('graphiql')).render(
  <GraphiQL
    fetcher={fetcher}
    storage={memoryStorage()}
    shouldPersistHeaders={false}
    defaultHeaders={headers}
    defaultQuery={'{\n  viewer {\n    appId\n    scopes\n  }\n}\n'}
  />,
);
