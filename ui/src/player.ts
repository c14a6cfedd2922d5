// rrweb-player, loaded only when a session is opened (it is most of the UI's code).
import Player from 'rrweb-player';

export interface Replay {
  goto(ms: number): void;
  add(events: unknown[]): void;
  destroy(): void;
}

/** A paused player in `target` showing `events`; `onTime` hears its clock (ms from the start). */
export function createReplay(target: HTMLElement, events: unknown[], onTime: (ms: number) => void): Replay {
  const width = Math.max(target.clientWidth, 280);
  // rrweb-player's typings ask for its own event type; these are the recording exactly as the API returns it
  const player = new Player({
    target,
    props: { events: events as never, width, height: Math.round(width * 0.6), autoPlay: false, skipInactive: true },
  });
  player.addEventListener('ui-update-current-time', (event) => onTime((event as { payload: number }).payload));
  return {
    goto: (ms) => player.goto(ms, false),
    add: (more) => more.forEach((event) => player.addEvent(event as never)),
    // a Svelte component; its typings come from svelte, which is not installed
    destroy: () => (player as unknown as { $destroy(): void }).$destroy(),
  };
}
