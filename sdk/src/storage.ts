/** sessionStorage when the browser allows it (it can be missing, disabled, or over quota), else memory. */
export interface KeyValueStore {
  get(key: string): string | null;
  set(key: string, value: string): void;
  remove(key: string): void;
}

export class MemoryStore implements KeyValueStore {
  private readonly values = new Map<string, string>();
  get(key: string): string | null {
    return this.values.get(key) ?? null;
  }
  set(key: string, value: string): void {
    this.values.set(key, value);
  }
  remove(key: string): void {
    this.values.delete(key);
  }
}

/** Writes that fail (quota) fall back to memory for that key, so reads still see the latest value. */
export class SessionStore implements KeyValueStore {
  private readonly fallback = new MemoryStore();
  constructor(private readonly storage: Storage) {}

  get(key: string): string | null {
    const kept = this.fallback.get(key);
    if (kept !== null) return kept;
    try {
      return this.storage.getItem(key);
    } catch {
      return null;
    }
  }
  set(key: string, value: string): void {
    try {
      this.storage.setItem(key, value);
      this.fallback.remove(key);
    } catch {
      this.fallback.set(key, value);
    }
  }
  remove(key: string): void {
    this.fallback.remove(key);
    try {
      this.storage.removeItem(key);
    } catch {
      // nothing stored there to remove
    }
  }
}

export function openStore(): KeyValueStore {
  try {
    const storage = window.sessionStorage; // throws where storage is blocked
    const probe = 'replayql.probe';
    storage.setItem(probe, '1');
    storage.removeItem(probe);
    return new SessionStore(storage);
  } catch {
    return new MemoryStore();
  }
}
