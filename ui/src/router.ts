// Every view is a URL: the path says which, the query string holds its state (filter, sort, page, time).
import { useEffect, useState } from 'preact/hooks';

const CHANGE = 'replayql:navigate';

export function navigate(url: string, replace = false): void {
  if (url === location.pathname + location.search) return;
  if (replace) history.replaceState(null, '', url);
  else history.pushState(null, '', url);
  dispatchEvent(new Event(CHANGE));
}

export interface Place {
  path: string;
  params: URLSearchParams;
}

/** The browser SDK's getSessionURL answers `<server>/#/sessions/<id>`, and links handed out so keep that form:
 * a path in the hash of / becomes the URL's path (replaced: Back does not return to the hash form). */
function adoptHashPath(): void {
  if (location.pathname === '/' && location.hash.startsWith('#/')) history.replaceState(null, '', location.hash.slice(1));
}

function here(): Place {
  adoptHashPath();
  return { path: location.pathname, params: new URLSearchParams(location.search) };
}

export function usePlace(): Place {
  const [place, setPlace] = useState(here);
  useEffect(() => {
    const update = () => setPlace(here());
    addEventListener('popstate', update);
    addEventListener(CHANGE, update);
    return () => {
      removeEventListener('popstate', update);
      removeEventListener(CHANGE, update);
    };
  }, []);
  return place;
}

/** The URL of `path` with `params`, dropping empty values so shared links stay short. */
export function urlOf(path: string, params: Record<string, string | undefined>): string {
  const kept = Object.entries(params).filter((entry): entry is [string, string] => !!entry[1]);
  const search = new URLSearchParams(kept).toString();
  return search ? `${path}?${search}` : path;
}

/** A same-origin link that navigates without a page load (a modified click still opens a new tab). */
export function onLinkClick(event: MouseEvent): void {
  const target = event.currentTarget as HTMLAnchorElement;
  if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  event.preventDefault();
  navigate(target.getAttribute('href') ?? '/');
}
