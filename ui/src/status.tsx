// Loading and error states, the same everywhere.
import type { ComponentChildren } from 'preact';
import type { Loaded } from './query';

export function Problem({ message }: { message: string }) {
  return (
    <pre class="problem" role="alert">
      {message}
    </pre>
  );
}

export function Loading() {
  return (
    <p class="loading" aria-busy="true">
      Loading…
    </p>
  );
}

/** Renders `loaded`'s data with `render`, or its loading or error state. */
export function Show<T>({ loaded, render }: { loaded: Loaded<T>; render: (data: T) => ComponentChildren }) {
  if (loaded.state === 'loading') return <Loading />;
  if (loaded.state === 'error') return <Problem message={loaded.message} />;
  return <>{render(loaded.data)}</>;
}
