// The GraphQL-over-HTTP audit (graphql-http's auditServer) of a running replayql server.
// Usage: node audit.mjs <graphql-url> <api-key>
// Prints a JSON array with one {id, name, status, reason} per audit; status is ok, notice, warn or error.
import { auditServer } from 'graphql-http';

const [url, key] = process.argv.slice(2);
if (!url || !key) {
  console.error('usage: node audit.mjs <graphql-url> <api-key>');
  process.exit(2);
}

// Every audit request carries the key: without one replayql answers 401 before looking at the request.
function fetchWithKey(input, init = {}) {
  const headers = new Headers(init.headers);
  headers.set('authorization', `token ${key}`);
  return fetch(input, { ...init, headers });
}

const results = await auditServer({ url, fetchFn: fetchWithKey });
const summary = results.map(({ id, name, status, reason }) => ({ id, name, status, ...(reason && { reason }) }));
console.log(JSON.stringify(summary, null, 2));
