/** Web vitals, as web-vitals reports them (each once per page, when final). */
import { onCLS, onFCP, onINP, onLCP, onTTFB } from 'web-vitals';
import type { Metric } from 'web-vitals';
import type { VitalName } from '../events';
import type { Sink } from '../sink';

const VITAL_NAMES: readonly string[] = ['LCP', 'FCP', 'CLS', 'INP', 'TTFB'];

export function installVitals(sink: Sink): void {
  // Browsers without these (old ones, test DOMs) have no vitals to report: not a failure worth counting.
  if (typeof PerformanceObserver !== 'function' || typeof performance?.getEntriesByType !== 'function') return;
  const report = sink.health.guard((metric: Metric) => {
    if (!VITAL_NAMES.includes(metric.name) || !Number.isFinite(metric.value) || metric.value < 0) return;
    sink.emit({ type: 'vital', ts: sink.now(), name: metric.name as VitalName, value: metric.value });
  });
  for (const subscribe of [onLCP, onFCP, onCLS, onINP, onTTFB]) {
    try {
      subscribe(report);
    } catch {
      sink.health.internalErrors++; // an API the metric needs is missing: the others still work
    }
  }
}
