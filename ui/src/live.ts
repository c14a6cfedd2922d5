// Subscriptions over /graphql's WebSocket (the graphql-transport-ws protocol), loaded only when a view goes live.
// Our own ~100 lines rather than the graphql-ws package: one subscription per socket, the key in connection_init,
// and a reconnect that asks the view for fresh variables (sessionLive resumes from its last cursor).
/** What the view shows about the socket: live, (re)connecting, or stopped for good with a reason. */
export type LiveState =
  | { state: 'connecting' }
  | { state: 'live' }
  | { state: 'retrying'; reason: string; inSeconds: number }
  | { state: 'stopped'; reason: string };

export interface LiveHandlers<T> {
  key: () => string; // the API key, asked at each (re)connect
  variables: () => Record<string, unknown>; // asked at each (re)connect
  next: (data: T) => void;
  state: (state: LiveState) => void;
}

const PROTOCOL = 'graphql-transport-ws';
const FIRST_RETRY_S = 1;
const LAST_RETRY_S = 30;
// Close codes after which trying again cannot help: a refused or revoked key, a request the server will not take.
const FINAL: Record<number, string> = {
  4400: 'The server did not understand the request.',
  4401: 'The API key was refused: sign in again.',
  4403: 'The API key was revoked: sign in again.',
  4406: 'The server does not speak this protocol.',
  4409: 'The subscription was sent twice.',
  4429: 'The connection was initialised twice.',
};
const RETRY: Record<number, string> = {
  1013: 'The server is full.',
  4408: 'The server did not answer in time.',
  4410: 'The updates came faster than this page took them.',
};

/** Subscribe to `query`; updates go to `handlers` until the returned function is called. */
export function subscribe<T>(query: string, handlers: LiveHandlers<T>): () => void {
  let socket: WebSocket | null = null;
  let timer: number | undefined;
  let stopped = false;
  let retryS = FIRST_RETRY_S;

  const stop = (state?: LiveState) => {
    stopped = true;
    clearTimeout(timer);
    if (state) handlers.state(state);
    socket?.close(1000);
  };

  const connect = () => {
    handlers.state({ state: 'connecting' });
    const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/graphql`;
    const opened = new WebSocket(url, PROTOCOL);
    socket = opened;
    const send = (message: object) => opened.send(JSON.stringify(message));
    opened.onopen = () => send({ type: 'connection_init', payload: { Authorization: `token ${handlers.key()}` } });
    opened.onmessage = (event) => {
      const message = JSON.parse(event.data as string) as { type: string; payload?: unknown };
      if (message.type === 'connection_ack') {
        send({ id: '1', type: 'subscribe', payload: { query, variables: handlers.variables() } });
        handlers.state({ state: 'live' });
        retryS = FIRST_RETRY_S;
      } else if (message.type === 'next') {
        handlers.next((message.payload as { data: T }).data);
      } else if (message.type === 'ping') {
        send({ type: 'pong' });
      } else if (message.type === 'error') {
        const errors = message.payload as { message: string }[];
        stop({ state: 'stopped', reason: errors.map((e) => e.message).join('\n') });
      } else if (message.type === 'complete') {
        stop({ state: 'stopped', reason: 'The server ended the subscription.' });
      }
    };
    opened.onclose = (event) => {
      if (stopped || socket !== opened) return;
      const final = FINAL[event.code];
      if (final) return stop({ state: 'stopped', reason: final });
      const inSeconds = retryS;
      retryS = Math.min(retryS * 2, LAST_RETRY_S);
      handlers.state({ state: 'retrying', reason: RETRY[event.code] ?? 'The connection was lost.', inSeconds });
      timer = setTimeout(connect, inSeconds * 1000);
    };
  };

  connect();
  return () => stop();
}
