/** The SDK's own failure counters. Nothing the SDK does may throw into the host app, so failures are counted
 * here and reported to the server as a `replayql.sdk_health` custom event instead. */
export class Health {
  droppedEvents = 0;
  sendFailures = 0;
  retries = 0;
  internalErrors = 0;

  hasNews(): boolean {
    return this.droppedEvents + this.sendFailures + this.retries + this.internalErrors > 0;
  }

  /** The counts since the last report, and start counting afresh. */
  takeReport(): { droppedEvents: number; sendFailures: number; retries: number; internalErrors: number } {
    const report = {
      droppedEvents: this.droppedEvents,
      sendFailures: this.sendFailures,
      retries: this.retries,
      internalErrors: this.internalErrors,
    };
    this.droppedEvents = this.sendFailures = this.retries = this.internalErrors = 0;
    return report;
  }

  /** `fn` wrapped so that it never throws: a failure is counted and undefined returned. */
  guard<A extends unknown[]>(fn: (...args: A) => void): (...args: A) => void {
    return (...args: A): void => {
      try {
        fn(...args);
      } catch {
        this.internalErrors++;
      }
    };
  }
}
