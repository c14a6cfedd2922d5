/** Page events: the page at init, then SPA navigations (history API, popstate, hashchange). */
import type { Sink } from '../sink';
import { sanitizeUrl } from '../url';

export class PageTracker {
  private lastUrl: string | null = null;

  constructor(private readonly sink: Sink, private readonly stripKeys: readonly string[]) {}

  install(): void {
    const onChange = this.sink.health.guard(() => this.onNavigation());
    patchHistory('pushState', onChange);
    patchHistory('replaceState', onChange);
    window.addEventListener('popstate', onChange);
    window.addEventListener('hashchange', onChange);
  }

  /** A page event for the current URL; the first one's referrer is document.referrer, later ones the previous URL. */
  emitCurrent(): void {
    const url = sanitizeUrl(location.href, this.stripKeys);
    const referrer = this.lastUrl ?? (document.referrer ? sanitizeUrl(document.referrer, this.stripKeys) : '');
    this.lastUrl = url;
    this.sink.emit({
      type: 'page',
      ts: this.sink.now(),
      url,
      title: document.title || undefined,
      referrer: referrer || undefined,
    });
  }

  private onNavigation(): void {
    if (sanitizeUrl(location.href, this.stripKeys) === this.lastUrl) return; // replaceState of the same URL
    this.sink.activity();
    this.emitCurrent();
  }
}

function patchHistory(method: 'pushState' | 'replaceState', onChange: () => void): void {
  const original = history[method];
  history[method] = function (this: History, ...args: Parameters<History['pushState']>) {
    const result = original.apply(this, args);
    onChange(); // guarded: never throws into the app's navigation
    return result;
  };
}
