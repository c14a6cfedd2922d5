// replayql's own SDK, from its built ESM module, in its fullest configuration: recording on, every console
// level, network requests with headers and bodies. window.BENCH.endpoint is the benchmark's loopback server.
import * as replayql from '../../../sdk/dist/index.mjs';

replayql.init('shop', {
  serverUrl: window.BENCH.endpoint,
  console: { levels: ['debug', 'info', 'log', 'warn', 'error'] },
  network: { captureHeaders: true, captureBodies: true },
});
window.sdk = { identify: replayql.identify, track: replayql.track, flush: replayql.flush };
