// uPlot, loaded only by the dashboards (a small, fast canvas chart library: ~50 KiB, draws 100k points quickly).
import uPlot from 'uplot';

export interface Series {
  label: string;
  colour: string;
  values: (number | null)[];
}

export interface TimeChart {
  resize(width: number): void;
  destroy(): void;
}

/** Lines over time in `target`; `times` in ms, ticks and the legend in the time zone `tz`. */
export function timeChart(target: HTMLElement, times: number[], series: Series[], tz: string,
  format: (value: number) => string): TimeChart {
  const options: uPlot.Options = {
    width: Math.max(target.clientWidth, 240),
    height: 220,
    tzDate: (seconds) => uPlot.tzDate(new Date(seconds * 1000), tz),
    legend: { show: false }, // the page draws the legend, with each series' total
    scales: { y: { range: (_chart, _min, max) => [0, max > 0 ? max * 1.1 : 1] } },
    axes: [{}, { values: (_chart, ticks) => ticks.map(format), size: 56 }],
    series: [
      {},
      ...series.map((one) => ({
        label: one.label,
        stroke: one.colour,
        width: 2,
        points: { show: times.length < 40 },
        value: (_chart: uPlot, value: number | null) => (value == null ? '–' : format(value)),
      })),
    ],
  };
  const chart = new uPlot(options, [times.map((ms) => ms / 1000), ...series.map((one) => one.values)], target);
  return {
    resize: (width) => chart.setSize({ width: Math.max(width, 240), height: 220 }),
    destroy: () => chart.destroy(),
  };
}
