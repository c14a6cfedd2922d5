// A view's live mode: the subscription client (./live) is loaded the first time a view goes live, not before.
import { useEffect, useRef, useState } from 'preact/hooks';
import { storedKey } from './api';
import type { LiveState } from './live';

export type { LiveState };

/** While `on`, follow `query`: `next` gets each update, `variables` is asked at each (re)connect. Restarted when
 * `inputs` change; null while off. */
export function useLive<T>(on: boolean, query: string, variables: () => Record<string, unknown>, next: (data: T) => void,
  inputs: unknown[]): LiveState | null {
  const [state, setState] = useState<LiveState | null>(null);
  const handlers = useRef({ variables, next });
  handlers.current = { variables, next }; // the latest closures: the socket outlives renders
  useEffect(() => {
    if (!on) return setState(null);
    let open = true;
    let stop = () => {};
    void import('./live').then(({ subscribe }) => {
      if (!open) return;
      stop = subscribe<T>(query, {
        key: () => storedKey() ?? '',
        variables: () => handlers.current.variables(),
        next: (data) => handlers.current.next(data),
        state: setState,
      });
    });
    return () => {
      open = false;
      stop();
    };
  }, [on, query, ...inputs]);
  return state;
}

const SAID: Record<LiveState['state'], (s: LiveState) => string> = {
  connecting: () => 'Connecting…',
  live: () => 'Live',
  retrying: (s) => (s.state === 'retrying' ? `${s.reason} Retrying in ${s.inSeconds} s…` : ''),
  stopped: (s) => (s.state === 'stopped' ? s.reason : ''),
};

export function LiveStatus({ state }: { state: LiveState | null }) {
  if (state === null) return null;
  return (
    <span class={`live-state live-${state.state}`} data-live-state={state.state} role={state.state === 'stopped' ? 'alert' : 'status'}>
      {SAID[state.state](state)}
    </span>
  );
}
