/** The envelope's `context`: who is sending, rebuilt per batch (the viewport changes). */
import { SDK_NAME, SDK_VERSION } from './version';

export interface Context {
  userAgent?: string;
  viewport?: { width: number; height: number };
  language?: string;
  timezone?: string;
  release?: string;
  sdk: { name: string; version: string };
  tabId: string;
}

export function currentContext(tabId: string, release: string | undefined): Context {
  return {
    userAgent: typeof navigator !== 'undefined' ? navigator.userAgent : undefined,
    viewport: typeof window !== 'undefined' && Number.isFinite(window.innerWidth)
      ? { width: Math.round(window.innerWidth), height: Math.round(window.innerHeight) }
      : undefined,
    language: typeof navigator !== 'undefined' ? navigator.language || undefined : undefined,
    timezone: timezone(),
    release,
    sdk: { name: SDK_NAME, version: SDK_VERSION },
    tabId,
  };
}

function timezone(): string | undefined {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || undefined;
  } catch {
    return undefined;
  }
}
