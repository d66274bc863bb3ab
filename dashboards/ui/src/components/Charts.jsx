import { useEffect, useRef } from 'preact/hooks';
import {
  Chart,
  BarController,
  BarElement,
  CategoryScale,
  LinearScale,
  Tooltip,
  Legend,
} from 'chart.js';
import { lang } from '../i18n.js';

Chart.register(BarController, BarElement, CategoryScale, LinearScale, Tooltip, Legend);
Chart.defaults.animation = false;
Chart.defaults.font.family = 'system-ui, "Segoe UI", Roboto, "Noto Sans", sans-serif';

/** Short axis labels: time of day when every point is on one day, else day and time. */
function axisLabels(points) {
  const dates = points.map((p) => new Date(p.t));
  const oneDay = dates.every((d) => d.toDateString() === dates[0].toDateString());
  const loc = lang.get() === 'vi' ? 'vi-VN' : 'en-GB';
  const opts = oneDay ? { hour: '2-digit', minute: '2-digit', hour12: false } : { day: '2-digit', month: '2-digit', hour: '2-digit', minute: '2-digit', hour12: false };
  return dates.map((d) => (Number.isNaN(d.getTime()) ? '' : d.toLocaleString(loc, opts)));
}

function useChart(config, deps) {
  const canvas = useRef(null);
  const chart = useRef(null);
  useEffect(() => {
    if (!canvas.current) return undefined;
    chart.current = new Chart(canvas.current, config());
    return () => {
      chart.current && chart.current.destroy();
      chart.current = null;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, deps);
  return canvas;
}

/** Adds the empty buckets between the first and the last point (the API lists non-empty ones). */
export function fillBuckets(points, bucketSeconds) {
  const step = Number(bucketSeconds) * 1000;
  if (!step || points.length < 2) return points;
  const byT = new Map(points.map((p) => [new Date(p.t).getTime(), p.count]));
  const first = new Date(points[0].t).getTime();
  const last = new Date(points[points.length - 1].t).getTime();
  if (Number.isNaN(first) || Number.isNaN(last) || (last - first) / step > 2000) return points;
  const out = [];
  for (let t = first; t <= last; t += step) out.push({ t: new Date(t).toISOString(), count: byT.get(t) || 0 });
  return out;
}

/** Histogram of `[{t, count}]` (one bar per time bucket). */
export function TimeChart({ points, label, id }) {
  const key = JSON.stringify(points);
  const canvas = useChart(
    () => ({
      type: 'bar',
      data: {
        labels: axisLabels(points),
        datasets: [{ label, data: points.map((p) => p.count), backgroundColor: '#c0392b', barPercentage: 1, categoryPercentage: 0.9 }],
      },
      options: { responsive: true, maintainAspectRatio: false, plugins: { legend: { display: false } }, scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } },
    }),
    [key, label],
  );
  return (
    <div class="chart" data-chart={id}>
      <canvas ref={canvas} id={id} />
    </div>
  );
}

/** Bar chart of `[{key, count}]`. */
export function BarChart({ items, label, horizontal, id, color }) {
  const key = JSON.stringify(items);
  const canvas = useChart(
    () => ({
      type: 'bar',
      data: {
        labels: items.map((i) => {
          const k = String(i.key);
          const max = horizontal ? 30 : 40;
          return k.length > max ? `${k.slice(0, max - 1)}…` : k;
        }),
        datasets: [{ label, data: items.map((i) => i.count), backgroundColor: color || '#2c6fbb' }],
      },
      options: {
        indexAxis: horizontal ? 'y' : 'x',
        responsive: true,
        maintainAspectRatio: false,
        plugins: { legend: { display: false } },
        scales: { [horizontal ? 'x' : 'y']: { beginAtZero: true, ticks: { precision: 0 } } },
      },
    }),
    [key, label, horizontal],
  );
  const h = horizontal ? Math.max(120, 26 * items.length + 40) : 260;
  return (
    <div class="chart" data-chart={id} style={{ height: `${h}px` }}>
      <canvas ref={canvas} id={id} />
    </div>
  );
}
