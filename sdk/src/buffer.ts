/** Events waiting to be cut into batches, each already serialised (its JSON length is its size estimate).
 * Bounded: past `maxBytes` the oldest incremental rrweb events go first, then the oldest of the rest. */
import { RRWEB_INCREMENTAL_SNAPSHOT } from './events';

export interface BufferedEvent {
  json: string;
  ts: number;
  /** rrweb's event type, for recording events only. */
  rrwebType?: number;
}

export interface DropResult {
  dropped: number;
  droppedRecording: boolean;
}

export class EventBuffer {
  private events: BufferedEvent[] = [];
  private totalBytes = 0;

  constructor(private readonly maxBytes: number) {}

  get bytes(): number {
    return this.totalBytes;
  }

  get length(): number {
    return this.events.length;
  }

  /** Add an event; returns what had to be dropped to stay within the bound. */
  add(event: BufferedEvent): DropResult {
    this.events.push(event);
    this.totalBytes += event.json.length;
    return this.totalBytes > this.maxBytes ? this.shrink() : { dropped: 0, droppedRecording: false };
  }

  /** Everything buffered, oldest first; the buffer is empty afterwards. */
  takeAll(): BufferedEvent[] {
    const events = this.events;
    this.events = [];
    this.totalBytes = 0;
    return events;
  }

  private shrink(): DropResult {
    const before = this.events.length;
    this.dropOldest((event) => event.rrwebType === RRWEB_INCREMENTAL_SNAPSHOT);
    const droppedRecording = this.events.length < before;
    if (this.totalBytes > this.maxBytes) this.dropOldest(() => true);
    return { dropped: before - this.events.length, droppedRecording };
  }

  /** One pass: drop the oldest events that `eligible` accepts until the buffer fits. */
  private dropOldest(eligible: (event: BufferedEvent) => boolean): void {
    const kept: BufferedEvent[] = [];
    for (const event of this.events) {
      if (this.totalBytes > this.maxBytes && eligible(event)) this.totalBytes -= event.json.length;
      else kept.push(event);
    }
    this.events = kept;
  }
}
