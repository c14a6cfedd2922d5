// LogRocket as `import LogRocket from 'logrocket'` imports it. The npm package is a loader: init() appends a
// script tag for the recorder (logger-1.min.js) on LogRocket's CDN; the recorder itself is not in the package.
import LogRocket from 'logrocket';

LogRocket.init('bench/shop', {
  serverURL: `${window.BENCH.endpoint}/i`,
  console: { isEnabled: true },
  network: { isEnabled: true },
  dom: { isEnabled: true },
});
window.sdk = {
  identify: (id, traits) => LogRocket.identify(id, traits),
  track: (name, props) => LogRocket.track(name, props),
  flush: () => {},
};
