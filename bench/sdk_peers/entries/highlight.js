// highlight.run: the recorder is in the package (it sends from an inline Web Worker). Fullest configuration:
// session recording, console (every method), network with headers and bodies, errors.
import { H } from 'highlight.run';

H.init('bench', {
  backendUrl: `${window.BENCH.endpoint}/public`,
  otlpEndpoint: `${window.BENCH.endpoint}/otel`,
  disableSessionRecording: false,
  disableConsoleRecording: false,
  consoleMethodsToRecord: ['log', 'info', 'warn', 'error', 'debug', 'assert'],
  networkRecording: { enabled: true, recordHeadersAndBody: true },
  reportConsoleErrors: true,
  environment: 'production',
});
window.sdk = {
  identify: (id, traits) => H.identify(id, traits),
  track: (name, props) => H.track(name, props),
  flush: () => {},
};
