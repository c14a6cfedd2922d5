// The UI's only way to the data: the public GraphQL API, with the signed-in key.

/** Where the signed-in key lives: the tab's sessionStorage, which GraphiQL's page reads to prefill its headers. */
export const KEY_STORAGE = 'replayql.key';

export function storedKey(): string | null {
  return sessionStorage.getItem(KEY_STORAGE);
}

export function storeKey(key: string | null): void {
  if (key === null) sessionStorage.removeItem(KEY_STORAGE);
  else sessionStorage.setItem(KEY_STORAGE, key);
}

interface GraphQLError {
  message: string;
  extensions?: { code?: string };
}

/** An API answer that is not data, with a message a person can read (the server's, which names positions). */
export class ApiError extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
  }
}

export async function gql<T>(query: string, variables: Record<string, unknown> = {}, key = storedKey()): Promise<T> {
  let response: Response;
  try {
    response = await fetch('/graphql', {
      method: 'POST',
      headers: { authorization: `token ${key ?? ''}`, 'content-type': 'application/json' },
      body: JSON.stringify({ query, variables }),
    });
  } catch {
    throw new ApiError('The server could not be reached.', 'NETWORK');
  }
  const body = (await response.json().catch(() => null)) as { data?: T; errors?: GraphQLError[] } | null;
  const errors = body?.errors ?? [];
  if (errors.length > 0) {
    throw new ApiError(errors.map((e) => e.message).join('\n'), errors[0].extensions?.code ?? 'ERROR');
  }
  if (!response.ok || body?.data == null) {
    throw new ApiError(`The server answered ${response.status} ${response.statusText}.`, 'HTTP');
  }
  return body.data;
}
