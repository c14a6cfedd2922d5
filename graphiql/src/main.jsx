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

createRoot(document.getElementById('graphiql')).render(
  <GraphiQL
    fetcher={fetcher}
    storage={memoryStorage()}
    shouldPersistHeaders={false}
    defaultHeaders={'{"Authorization": "token <your key>"}'}
    defaultQuery={'{\n  viewer {\n    appId\n    scopes\n  }\n}\n'}
  />,
);
