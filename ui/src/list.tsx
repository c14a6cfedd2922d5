// What every list shows: a table of rows and cursor pages.
import type { ComponentChildren } from 'preact';
import { navigate, onLinkClick, urlOf } from './router';

export type State = Record<string, string | undefined>;

export interface Column<T> {
  label: string;
  cell: (row: T) => ComponentChildren;
}

interface TableProps<T, C extends Column<T>> {
  rows: T[];
  columns: C[];
  name: string; // what a row is: the table's class is `<name>s-table`, a row's id is in `data-<name>-id`
  id: (row: T) => string;
  empty: string;
  head?: (column: C) => ComponentChildren; // a header cell of its own (sorting)
}

export function Table<T, C extends Column<T>>({ rows, columns, name, id, empty, head }: TableProps<T, C>) {
  if (rows.length === 0) return <p class="empty">{empty}</p>;
  return (
    <div class="table-scroll">
      <table class={`${name}s-table`}>
        <thead>
          <tr>{columns.map((column) => (head ? head(column) : <th key={column.label}>{column.label}</th>))}</tr>
        </thead>
        <tbody>
          {rows.map((row) => (
            <tr key={id(row)} {...{ [`data-${name}-id`]: id(row) }}>
              {columns.map((column) => (
                <td key={column.label}>{column.cell(row)}</td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

/** A link to another view of the UI, followed without a page load. */
export function Link({ href, children }: { href: string; children: ComponentChildren }) {
  return (
    <a href={href} onClick={onLinkClick}>
      {children}
    </a>
  );
}

export interface PageInfo {
  hasNextPage: boolean;
  endCursor: string | null;
}

/** First-page and next-page buttons for a list at `path` whose URL state keeps the cursor in `after`. */
export function Pager({ path, state, pageInfo }: { path: string; state: State; pageInfo: PageInfo }) {
  return (
    <nav class="pager">
      {state.after && <button onClick={() => navigate(urlOf(path, { ...state, after: undefined }))}>← First page</button>}
      {pageInfo.hasNextPage && (
        <button onClick={() => navigate(urlOf(path, { ...state, after: pageInfo.endCursor ?? undefined }))}>Next page →</button>
      )}
    </nav>
  );
}

/** The list's state as the URL holds it, for the given keys. */
export function stateOf(params: URLSearchParams, keys: string[]): State {
  return Object.fromEntries(keys.map((key) => [key, params.get(key) ?? undefined]));
}
