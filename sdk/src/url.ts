/** URL sanitising: secrets often travel in query strings (and in fragments, e.g. OAuth's #access_token=…). */

export const DEFAULT_STRIP_QUERY_PARAMS = ['token', 'password', 'auth'];
const MAX_URL_CHARS = 8_192;

/**
 * `raw` made absolute against `base`, without user:password, and without the query parameters whose name
 * contains any of `stripKeys` (case-insensitive), in the query and in a fragment that holds parameters.
 * Parameters that are kept stay exactly as written.
 */
export function sanitizeUrl(raw: string, stripKeys: readonly string[], base?: string): string {
  const keys = stripKeys.map((key) => key.toLowerCase()).filter((key) => key !== '');
  const absolute = absoluteWithoutCredentials(raw, base);
  const hashAt = absolute.indexOf('#');
  const beforeHash = hashAt >= 0 ? absolute.slice(0, hashAt) : absolute;
  const hash = hashAt >= 0 ? absolute.slice(hashAt + 1) : null;
  const queryAt = beforeHash.indexOf('?');
  let result = queryAt >= 0
    ? beforeHash.slice(0, queryAt) + withQuery(filterParams(beforeHash.slice(queryAt + 1), keys))
    : beforeHash;
  if (hash !== null) result += `#${sanitizeFragment(hash, keys)}`;
  return result.length > MAX_URL_CHARS ? result.slice(0, MAX_URL_CHARS) : result;
}

function absoluteWithoutCredentials(raw: string, base: string | undefined): string {
  try {
    const url = new URL(raw, base);
    url.username = '';
    url.password = '';
    return url.href;
  } catch {
    return raw; // not a URL we can parse: still filter what looks like parameters
  }
}

/** "#/reset?token=…" (hash routers) and "#access_token=…&state=…" (OAuth) hold parameters; "#section" does not. */
function sanitizeFragment(fragment: string, keys: string[]): string {
  const queryAt = fragment.indexOf('?');
  if (queryAt >= 0) {
    return fragment.slice(0, queryAt) + withQuery(filterParams(fragment.slice(queryAt + 1), keys));
  }
  return /^[^/]*=/.test(fragment) ? filterParams(fragment, keys) : fragment;
}

function withQuery(params: string): string {
  return params === '' ? '' : `?${params}`;
}

function filterParams(query: string, keys: string[]): string {
  if (keys.length === 0) return query;
  return query.split('&').filter((pair) => {
    if (pair === '') return false;
    const name = decodeName(pair.split('=', 1)[0] ?? '').toLowerCase();
    return !keys.some((key) => name.includes(key));
  }).join('&');
}

function decodeName(name: string): string {
  try {
    return decodeURIComponent(name.replace(/\+/g, ' '));
  } catch {
    return name;
  }
}
