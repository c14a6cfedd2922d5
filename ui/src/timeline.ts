// The session's timeline: its events as entries with a place on the recording's clock.

export interface SessionEvent {
  __typename: string;
  id: string;
  timestamp: string;
  url: string | null;
  path?: string | null;
  title?: string | null;
  selector?: string | null;
  text?: string | null;
  method?: string | null;
  status?: number | null;
  level?: string | null;
  message?: string | null;
  errorType?: string | null;
}

export interface Entry {
  kind: string; // page, click, rage, dead, error-click, network, console, error
  label: string;
  detail: string;
  failed: boolean;
  at: number; // epoch ms
}

export const EVENT_FIELDS = `__typename id timestamp url
  ... on PageEvent { path title }
  ... on ClickEvent { selector text }
  ... on RageClickEvent { selector text }
  ... on DeadClickEvent { selector text }
  ... on ErrorClickEvent { selector text }
  ... on NetworkEvent { method status path }
  ... on ConsoleEvent { level message }
  ... on ErrorEvent { errorType message }`;

type Describe = (e: SessionEvent) => Omit<Entry, 'at'>;

const click = (kind: string, label: string): Describe => (e) => ({
  kind,
  label,
  detail: [e.selector, e.text].filter(Boolean).join(' · '),
  failed: kind !== 'click',
});

/** Event types on the timeline; others (vitals, inputs, custom events) are left to the facts panel. */
const DESCRIBE: Record<string, Describe> = {
  PageEvent: (e) => ({ kind: 'page', label: 'Page', detail: e.path ?? e.url ?? '', failed: false }),
  ClickEvent: click('click', 'Click'),
  RageClickEvent: click('rage', 'Rage click'),
  DeadClickEvent: click('dead', 'Dead click'),
  ErrorClickEvent: click('error-click', 'Error click'),
  NetworkEvent: (e) => ({
    kind: 'network',
    label: e.status == null ? 'Network (no answer)' : `Network ${e.status}`,
    detail: `${e.method ?? ''} ${e.path ?? e.url ?? ''}`.trim(),
    failed: e.status == null || e.status >= 400,
  }),
  ConsoleEvent: (e) => ({
    kind: 'console',
    label: `Console ${e.level ?? ''}`.trim(),
    detail: e.message ?? '',
    failed: e.level === 'error',
  }),
  ErrorEvent: (e) => ({ kind: 'error', label: e.errorType ?? 'Error', detail: e.message ?? '', failed: true }),
};

export function entriesOf(events: SessionEvent[]): Entry[] {
  return events.flatMap((event) => {
    const describe = DESCRIBE[event.__typename];
    return describe ? [{ ...describe(event), at: Date.parse(event.timestamp) }] : [];
  });
}
