import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { SESSION_KEY, SessionManager, TAB_KEY } from '../src/session';
import { MemoryStore, openStore, SessionStore } from '../src/storage';
import { makeClient, settle } from './helpers';

const MINUTE = 60_000;
const options = { timeoutMs: 30 * MINUTE, sampleRate: 1, now: () => Date.now(), random: Math.random };

describe('SessionManager', () => {
  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(new Date('2025-03-01T10:00:00Z'));
    sessionStorage.clear();
  });
  afterEach(() => vi.useRealTimers());

  it('makes ids the server accepts', () => {
    const session = new SessionManager(new MemoryStore(), options);
    expect(session.id).toMatch(/^rq-[a-z0-9]+$/);
    expect(session.id).toMatch(/^[A-Za-z0-9._:-]{1,128}$/);
    expect(session.tabId).toMatch(/^t-[a-z0-9]+$/);
  });

  it('continues the same session and seq numbering after a reload', () => {
    const first = new SessionManager(new SessionStore(sessionStorage), options);
    expect([first.takeSeq(), first.takeSeq(), first.takeSeq()]).toEqual([0, 1, 2]);
    vi.advanceTimersByTime(5 * MINUTE);
    first.markClosed(); // pagehide
    const reloaded = new SessionManager(new SessionStore(sessionStorage), options);
    expect(reloaded.id).toBe(first.id);
    expect(reloaded.tabId).toBe(first.tabId);
    expect(reloaded.takeSeq()).toBe(3);
  });

  it('gives a duplicated tab (a copy of a live page\'s sessionStorage) its own tab and session', () => {
    const original = new SessionManager(new SessionStore(sessionStorage), options);
    original.takeSeq();
    const copy = new MemoryStore();
    for (const key of Object.keys(sessionStorage)) copy.set(key, sessionStorage.getItem(key) ?? '');
    const duplicate = new SessionManager(copy, options);
    expect(duplicate.id).not.toBe(original.id);
    expect(duplicate.tabId).not.toBe(original.tabId);
    expect(duplicate.takeSeq()).toBe(0);
    expect(original.takeSeq()).toBe(1); // the original goes on undisturbed
  });

  it('persists every seq increment at once', () => {
    const session = new SessionManager(new SessionStore(sessionStorage), options);
    session.takeSeq();
    expect(JSON.parse(sessionStorage.getItem(SESSION_KEY) ?? '{}').seq).toBe(1);
  });

  it('starts a new session with seq 0 when reloaded after 30 idle minutes', () => {
    const first = new SessionManager(new SessionStore(sessionStorage), options);
    first.takeSeq();
    vi.advanceTimersByTime(30 * MINUTE + 1);
    first.markClosed();
    const later = new SessionManager(new SessionStore(sessionStorage), options);
    expect(later.id).not.toBe(first.id);
    expect(later.takeSeq()).toBe(0);
    expect(later.tabId).toBe(first.tabId); // same tab
  });

  it('expires only after timeoutMs without activity', () => {
    const session = new SessionManager(new MemoryStore(), options);
    vi.advanceTimersByTime(20 * MINUTE);
    session.touch();
    vi.advanceTimersByTime(20 * MINUTE);
    expect(session.isExpired()).toBe(false);
    vi.advanceTimersByTime(10 * MINUTE + 1);
    expect(session.isExpired()).toBe(true);
  });

  it('decides sampling once per session and keeps it across reloads', () => {
    const store = new MemoryStore();
    const unsampled = new SessionManager(store, { ...options, sampleRate: 0.5, random: () => 0.9 });
    expect(unsampled.sampled).toBe(false);
    unsampled.markClosed();
    const reloaded = new SessionManager(store, { ...options, sampleRate: 0.5, random: () => 0.1 });
    expect(reloaded.sampled).toBe(false);
    reloaded.restart();
    expect(reloaded.sampled).toBe(true);
  });

  it('ignores a corrupt stored session', () => {
    const store = new MemoryStore();
    store.set(SESSION_KEY, '{"id":"bad id!","seq":-1}');
    store.set(TAB_KEY, 't-kept');
    const session = new SessionManager(store, options);
    expect(session.id).toMatch(/^rq-/);
    expect(session.tabId).toBe('t-kept');
    expect(session.takeSeq()).toBe(0);
  });
});

describe('openStore', () => {
  it('keeps state in memory where sessionStorage is blocked', () => {
    const blocked = vi.spyOn(window, 'sessionStorage', 'get').mockImplementation(() => {
      throw new DOMException('denied', 'SecurityError');
    });
    const store = openStore();
    blocked.mockRestore();
    expect(store).toBeInstanceOf(MemoryStore);
    const session = new SessionManager(store, options);
    expect(session.takeSeq()).toBe(0);
    session.markClosed();
    expect(new SessionManager(store, options).id).toBe(session.id);
  });

  it('falls back to memory for a write over the quota', () => {
    const full = { getItem: () => null, setItem: () => { throw new DOMException('full', 'QuotaExceededError'); },
      removeItem: () => undefined } as unknown as Storage;
    const store = new SessionStore(full);
    store.set('k', 'v');
    expect(store.get('k')).toBe('v');
  });
});

describe('session expiry in the client', () => {
  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(new Date('2025-03-01T10:00:00Z'));
  });
  afterEach(() => {
    vi.clearAllTimers();
    vi.useRealTimers();
  });

  it('sends the old session\'s events under it, then a new session from seq 0 after 30 idle minutes', async () => {
    const { client, http } = makeClient();
    client.track('before');
    await client.flush();
    vi.advanceTimersByTime(30 * MINUTE + 1);
    client.track('after'); // user activity after the timeout starts the new session
    await client.flush();
    await settle();
    const [first, second] = http.envelopes();
    expect(first?.seq).toBe(0);
    expect(second?.seq).toBe(0);
    expect(second?.sessionId).not.toBe(first?.sessionId);
    expect(second?.events.map((event) => event.type)).toEqual(['page', 'custom']);
    expect(second?.events[1]).toMatchObject({ name: 'after' });
  });
});
