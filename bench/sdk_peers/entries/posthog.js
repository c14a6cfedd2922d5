// posthog-js as `import posthog from 'posthog-js'` imports it. This build lazy-loads its session recorder
// (static/posthog-recorder.js) and other extensions from its assets host at run time: here, the loopback sink.
import posthog from 'posthog-js';
import { posthogOptions } from './posthog-options.js';

posthog.init('phc_bench', posthogOptions(window.BENCH.endpoint));
window.sdk = {
  identify: (id, traits) => posthog.identify(id, traits),
  track: (name, props) => posthog.capture(name, props),
  flush: () => {},
};
