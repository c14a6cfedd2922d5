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
    props: {
      events: events.map(withoutHandlers) as never,
      width,
      height: Math.round(width * 0.6),
      autoPlay: false,
      skipInactive: true,
    },
  });
  player.addEventListener('ui-update-current-time', (event) => onTime((event as { payload: number }).payload));
  return {
    goto: (ms) => player.goto(ms, false),
    add: (more) => more.forEach((event) => player.addEvent(withoutHandlers(event) as never)),
    // a Svelte component; its typings come from svelte, which is not installed
    destroy: () => (player as unknown as { $destroy(): void }).$destroy(),
  };
}

/** A serialized node of rrweb-snapshot, as far as the attributes go. */
interface RecordedNode {
  attributes?: Record<string, unknown>;
  childNodes?: RecordedNode[];
}

interface RecordedEvent {
  type: number;
  data?: {
    source?: number;
    node?: RecordedNode; // a full snapshot's document
    adds?: { node: RecordedNode }[]; // a mutation's added nodes
    attributes?: { attributes: Record<string, unknown> }[]; // a mutation's changed attributes
  };
}

const FULL_SNAPSHOT = 2;
const INCREMENTAL_SNAPSHOT = 3;
const MUTATION = 0;
const HANDLER = /^on/i;

/** The event without the recorded page's inline event handlers (`onclick="…"`, changed in place). The replay's
 * sandboxed iframe never runs them, but Chrome logs "Blocked script execution … sandboxed" as a console error
 * for every one the player sets, on each rebuild: recorded pages are full of them. */
function withoutHandlers(event: unknown): unknown {
  const { type, data } = event as RecordedEvent;
  if (type === FULL_SNAPSHOT && data?.node) dropHandlers(data.node);
  if (type === INCREMENTAL_SNAPSHOT && data?.source === MUTATION) {
    data.adds?.forEach((add) => dropHandlers(add.node));
    data.attributes?.forEach((change) => dropHandlerNames(change.attributes));
  }
  return event;
}

function dropHandlers(node: RecordedNode): void {
  if (node.attributes) dropHandlerNames(node.attributes);
  node.childNodes?.forEach(dropHandlers);
}

function dropHandlerNames(attributes: Record<string, unknown>): void {
  for (const name of Object.keys(attributes)) if (HANDLER.test(name)) delete attributes[name];
}
