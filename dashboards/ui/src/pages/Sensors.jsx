import { t } from '../i18n.js';
import { useApi, Loadable, fmtNum, fmtTime, useLang } from '../util.jsx';

function list(d) {
  return Array.isArray(d) ? d : d.items || d.sensors || [];
}

/** Sum of the metric samples (`{"series{labels}": value}`) whose name matches `test`. */
function metricSum(metrics, test) {
  let sum = null;
  for (const [series, v] of Object.entries(metrics || {})) {
    const name = series.split('{')[0];
    if (test(name)) sum = (sum || 0) + Number(v || 0);
  }
  return sum;
}

/** Normalizes one row: packets, drops and lag from explicit fields or the metric samples. */
function row(s) {
  const m = s.metrics || {};
  const packets = s.packets ?? metricSum(m, (n) => n.endsWith('packets_total') && !n.includes('drop'));
  const drops = s.drops ?? metricSum(m, (n) => n.includes('drop'));
  const lag = s.lag_seconds ?? s.seconds_since_last ?? s.lag;
  return { ...s, name: s.sensor || s.name, packets, drops, lag };
}

function health(s) {
  if (s.status) return String(s.status).toLowerCase();
  const pk = Number(s.packets || 0);
  const dr = Number(s.drops || 0);
  if (s.lag !== undefined && s.lag !== null && Number(s.lag) > 300) return 'down';
  if ((pk > 0 && dr / pk > 0.01) || (s.lag !== undefined && s.lag !== null && Number(s.lag) > 60)) return 'degraded';
  return 'healthy';
}

export function Sensors() {
  useLang();
  const state = useApi('/api/sensors', undefined, 10000);
  return (
    <section>
      <h1>{t('sensors_title')}</h1>
      <Loadable state={state} isEmpty={(d) => list(d).length === 0}>
        {(d) => (
          <table class="data" id="sensor-table">
            <thead>
              <tr>
                <th>{t('sensor')}</th>
                <th>{t('segment')}</th>
                <th>{t('status')}</th>
                <th>{t('records')}</th>
                <th>{t('packets')}</th>
                <th>{t('drops')}</th>
                <th>{t('drop_rate')}</th>
                <th>{t('lag')}</th>
                <th>{t('last_seen_at')}</th>
              </tr>
            </thead>
            <tbody>
              {list(d).map(row).map((s) => {
                const pk = Number(s.packets || 0);
                const dr = Number(s.drops || 0);
                const h = health(s);
                return (
                  <tr>
                    <td>{s.name}</td>
                    <td>{s.segment || (s.segments || []).join(', ')}</td>
                    <td>
                      <span class={`status health-${h}`}>{t(h)}</span>
                    </td>
                    <td class="num">{fmtNum(s.records)}</td>
                    <td class="num">{fmtNum(s.packets)}</td>
                    <td class="num">{fmtNum(s.drops)}</td>
                    <td class="num">{pk ? `${((100 * dr) / pk).toFixed(2)} %` : ''}</td>
                    <td class="num">{s.lag !== undefined && s.lag !== null ? `${fmtNum(s.lag)} s` : ''}</td>
                    <td class="nowrap">{fmtTime(s.last_seen)}</td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        )}
      </Loadable>
    </section>
  );
}
