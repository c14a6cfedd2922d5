/** What capture modules see of the client: somewhere to put events, and a way to report user activity. */
import type { WireEvent } from './events';
import type { Health } from './health';

export interface Sink {
  emit(event: WireEvent): void;
  /** The user did something: keeps the session alive, or starts a new one after the idle timeout. */
  activity(): void;
  now(): number;
  /** False while the session is not sampled: capture can skip its work, the events would be discarded. */
  readonly active: boolean;
  readonly health: Health;
}
