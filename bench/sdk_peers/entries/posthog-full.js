// posthog-js with its extensions inlined (session replay, console and network recording, exceptions, web
// vitals, dead clicks) and no external script loader: the build that records with nothing fetched from a CDN.
import posthog from 'posthog-js/full/no-external';
import { posthogOptions } from './posthog-options.js';

posthog.init('phc_bench', posthogOptions(window.BENCH.endpoint));
window.sdk = {
  identify: (id, traits) => posthog.identify(id, traits),
  track: (name, props) => posthog.capture(name, props),
  flush: () => {},
};
