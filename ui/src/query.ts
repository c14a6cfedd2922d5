// Loading data for a view: the answer, the loading state and a readable error, reloaded when the inputs change.
import { useEffect, useState } from 'preact/hooks';
import { gql } from './api';

export type Loaded<T> = { state: 'loading' } | { state: 'error'; message: string } | { state: 'done'; data: T };

/** `query`'s answer for `variables`; a null query asks nothing (a view that does not need it yet). */
export function useQuery<T>(query: string | null, variables: Record<string, unknown>): Loaded<T> {
  const [loaded, setLoaded] = useState<Loaded<T>>({ state: 'loading' });
  const inputs = JSON.stringify(variables);
  useEffect(() => {
    let current = true; // an answer to inputs that have since changed is dropped
    setLoaded({ state: 'loading' });
    if (query === null) return;
    gql<T>(query, variables).then(
      (data) => current && setLoaded({ state: 'done', data }),
      (error: Error) => current && setLoaded({ state: 'error', message: error.message }),
    );
    return () => {
      current = false;
    };
  }, [query, inputs]);
  return loaded;
}
