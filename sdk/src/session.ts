/** The session: an id shared by every page load of a tab until the user is idle for `timeoutMs`, and the seq
 * numbering of its batches. Kept in sessionStorage so a reload continues both. */
import type { KeyValueStore } from './storage';

export const SESSION_KEY = 'replayql.session';
export const TAB_KEY = 'replayql.tab';
/** Set while a page of this tab is open, removed on pagehide. Duplicating a tab copies sessionStorage: a
 * page that finds the mark set was copied from a live page, so it is another tab with a session of its own. */
export const OPEN_KEY = 'replayql.open';

export interface SessionState {
  id: string;
  /** The seq of the next batch. */
  seq: number;
  lastActivity: number;
  sampled: boolean;
}

export interface SessionOptions {
  timeoutMs: number;
  sampleRate: number;
  now: () => number;
  random: () => number;
}

export class SessionManager {
  readonly tabId: string;
  private state: SessionState;

  constructor(private readonly store: KeyValueStore, private readonly options: SessionOptions) {
    const duplicated = store.get(OPEN_KEY) !== null;
    this.tabId = (duplicated ? null : store.get(TAB_KEY)) ?? this.newTabId();
    const stored = duplicated ? null : readState(store.get(SESSION_KEY));
    this.state = stored && !this.isIdleSince(stored.lastActivity) ? stored : this.freshState();
    this.save();
    this.markOpen();
  }

  /** On load and on pageshow (back from the back/forward cache). */
  markOpen(): void {
    this.store.set(OPEN_KEY, '1');
  }

  /** On pagehide: a reload of this tab then continues the session. */
  markClosed(): void {
    this.store.remove(OPEN_KEY);
  }

  get id(): string {
    return this.state.id;
  }

  get sampled(): boolean {
    return this.state.sampled;
  }

  /** True when the user has been idle longer than the timeout: the next activity starts a new session. */
  isExpired(): boolean {
    return this.isIdleSince(this.state.lastActivity);
  }

  /** Record user activity (clicks, inputs, navigations, track, identify). */
  touch(): void {
    this.state.lastActivity = this.options.now();
    this.save();
  }

  /** Start a new session: new id, seq 0, sampling decided anew. */
  restart(): void {
    this.state = this.freshState();
    this.save();
  }

  /** The seq for the next batch; the increment is persisted at once so a reload never reuses a seq. */
  takeSeq(): number {
    const seq = this.state.seq;
    this.state.seq = seq + 1;
    this.save();
    return seq;
  }

  private isIdleSince(lastActivity: number): boolean {
    return this.options.now() - lastActivity > this.options.timeoutMs;
  }

  private freshState(): SessionState {
    return {
      id: `rq-${randomBase36(this.options.random)}`,
      seq: 0,
      lastActivity: this.options.now(),
      sampled: this.options.random() < this.options.sampleRate,
    };
  }

  private newTabId(): string {
    const id = `t-${randomBase36(this.options.random)}`;
    this.store.set(TAB_KEY, id);
    return id;
  }

  private save(): void {
    this.store.set(SESSION_KEY, JSON.stringify(this.state));
  }
}

function readState(text: string | null): SessionState | null {
  if (text === null) return null;
  try {
    const value = JSON.parse(text) as Partial<SessionState>;
    const valid = typeof value.id === 'string' && /^[A-Za-z0-9._:-]{1,128}$/.test(value.id)
      && Number.isInteger(value.seq) && (value.seq as number) >= 0
      && typeof value.lastActivity === 'number' && typeof value.sampled === 'boolean';
    return valid ? (value as SessionState) : null;
  } catch {
    return null;
  }
}

/** 128 random bits in base 36, from crypto when there is one (ids must not collide across a fleet). */
export function randomBase36(fallbackRandom: () => number): string {
  const words = new Uint32Array(4);
  const cryptoApi = typeof crypto !== 'undefined' ? crypto : undefined;
  if (cryptoApi && typeof cryptoApi.getRandomValues === 'function') cryptoApi.getRandomValues(words);
  else for (let i = 0; i < words.length; i++) words[i] = Math.floor(fallbackRandom() * 2 ** 32);
  return Array.from(words, (word) => word.toString(36).padStart(7, '0')).join('');
}
