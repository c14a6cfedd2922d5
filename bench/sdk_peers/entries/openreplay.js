// OpenReplay's tracker: the recorder is in the package (its sender runs in an inline Web Worker). Fullest
// configuration: console (every method), network with payloads, all requests (not only failures).
import Tracker from '@openreplay/tracker';

const tracker = new Tracker({
  projectKey: 'bench',
  ingestPoint: `${window.BENCH.endpoint}/ingest`,
  __DISABLE_SECURE_MODE: true, // the page is plain http on loopback
  consoleMethods: ['log', 'info', 'warn', 'error', 'debug', 'assert'],
  network: { failuresOnly: false, capturePayload: true, sessionTokenHeader: false },
});
tracker.start();
window.sdk = {
  identify: (id, traits) => {
    tracker.setUserID(id);
    for (const [key, value] of Object.entries(traits ?? {})) tracker.setMetadata(key, String(value));
  },
  track: (name, props) => tracker.event(name, props),
  flush: () => {},
};
