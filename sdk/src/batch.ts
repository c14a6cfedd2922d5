/** Cutting buffered events into wire batches within the server's limits. The envelope is assembled from the
 * events' JSON text, so nothing is serialised twice. */
import type { BufferedEvent } from './buffer';

export const MAX_EVENTS_PER_BATCH = 5_000;
export const MAX_BATCH_CHARS = 4 * 1024 * 1024;
/** The server rejects events stamped more than 24 h before the batch's sentAt. */
export const MAX_EVENT_AGE_MS = 24 * 3600 * 1000;

export interface Batch {
  sessionId: string;
  seq: number;
  /** The envelope as JSON; kept so a retry sends the same batch. */
  json: string;
  /** The request body made from `json` (gzip, or the JSON itself), kept while `json` is unchanged. */
  body?: Uint8Array<ArrayBuffer> | string;
  /** When `json`'s sentAt was last set. */
  stampedAt?: number;
  /** Already handed to keepalive/sendBeacon while the page was going away. */
  sentOnUnload?: boolean;
}

export interface EnvelopeFields {
  appId: string;
  sessionId: string;
  sentAt: number;
  context: object;
  /** "0.0.0.0" stops the server from locating the user by the request's address. */
  clientIp?: string;
}

export interface CutResult {
  batches: Batch[];
  /** Events that cannot be sent: too old for the server, or too large for any batch. */
  dropped: number;
}

export function cutBatches(
  events: BufferedEvent[],
  fields: EnvelopeFields,
  maxChars: number,
  takeSeq: () => number,
): CutResult {
  const headFor = (seq: number): string => envelopeHead(fields, seq);
  // The head's length with the longest possible seq, so a group never outgrows the limit once numbered.
  const room = maxChars - headFor(2 ** 31 - 1).length - 2;
  const oldestAllowed = fields.sentAt - MAX_EVENT_AGE_MS;
  const groups: string[][] = [];
  let group: string[] = [];
  let groupChars = 0;
  let dropped = 0;
  for (const event of events) {
    if (event.ts < oldestAllowed || event.json.length > room) {
      dropped++;
      continue;
    }
    const added = event.json.length + (group.length > 0 ? 1 : 0);
    if (group.length === MAX_EVENTS_PER_BATCH || groupChars + added > room) {
      groups.push(group);
      group = [];
      groupChars = 0;
    }
    groupChars += event.json.length + (group.length > 0 ? 1 : 0);
    group.push(event.json);
  }
  if (group.length > 0) groups.push(group);
  const batches = groups.map((jsons) => {
    const seq = takeSeq();
    return { sessionId: fields.sessionId, seq, json: `${headFor(seq)}${jsons.join(',')}]}` };
  });
  return { batches, dropped };
}

function envelopeHead(fields: EnvelopeFields, seq: number): string {
  const ip = fields.clientIp === undefined ? '' : `,"clientIp":${JSON.stringify(fields.clientIp)}`;
  return `{"appId":${JSON.stringify(fields.appId)},"sessionId":${JSON.stringify(fields.sessionId)},"seq":${seq},`
    + `"sentAt":${fields.sentAt},"context":${JSON.stringify(fields.context)}${ip},"events":[`;
}

const SENT_AT = /"sentAt":\d+/;

/** The batch as sent now: `sentAt` is when it leaves, so the server's clock-skew correction does not take a
 * retry's delay for a wrong client clock. (The first match is the envelope's: inside a JSON string the quotes
 * would be escaped.) */
export function stamped(json: string, sentAt: number): string {
  return json.replace(SENT_AT, `"sentAt":${Math.round(sentAt)}`);
}
