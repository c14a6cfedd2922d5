// The same fullest configuration for both posthog-js builds. Recording itself is switched on by the server's
// remote config (the sink answers /flags and /array/<token>/config as PostHog does for a project with replay,
// console and network capture on).
export function posthogOptions(endpoint) {
  return {
    api_host: endpoint,
    person_profiles: 'always',
    autocapture: true,
    capture_pageview: 'history_change',
    capture_pageleave: true,
    capture_exceptions: true,
    capture_performance: { network_timing: true, web_vitals: true },
    disable_session_recording: false,
    enable_recording_console_log: true,
    session_recording: { recordHeaders: true, recordBody: true, maskAllInputs: true },
  };
}
