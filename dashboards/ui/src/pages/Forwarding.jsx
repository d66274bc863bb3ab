import { t, tv } from '../i18n.js';
import { enc } from '../api.js';
import { useApi, Loadable, fmtTime, useLang, Link } from '../util.jsx';

/** Forwarding rows: store records (`{timestamp, forwarding: {...}}`) or plain objects. */
export function forwardingRows(d) {
  const rows = Array.isArray(d) ? d : d.items || d.forwarding || [];
  return rows.map((r) => (r.forwarding ? { ...r.forwarding, timestamp: r.timestamp } : r));
}

const list = forwardingRows;

export function Forwarding() {
  useLang();
  const state = useApi('/api/forwarding', undefined, 10000);
  return (
    <section>
      <h1>{t('forwarding_title')}</h1>
      <Loadable state={state} isEmpty={(d) => list(d).length === 0}>
        {(d) => (
          <table class="data" id="forwarding-table">
            <thead>
              <tr>
                <th>{t('at')}</th>
                <th>{t('incident')}</th>
                <th>v</th>
                <th>{t('status')}</th>
                <th>{t('target')}</th>
                <th>{t('attempts')}</th>
                <th>{t('result')}</th>
              </tr>
            </thead>
            <tbody>
              {list(d).map((f) => (
                <tr>
                  <td class="nowrap">{fmtTime(f.timestamp || f.at)}</td>
                  <td>
                    <Link href={`/incidents/${enc(f.incident_id)}`}>{f.incident_id}</Link>
                  </td>
                  <td>{f.incident_version}</td>
                  <td>
                    <span class={`status fs-${f.state}`}>{tv('fs', f.state)}</span>
                  </td>
                  <td class="mono small">{f.destination}</td>
                  <td class="num">{f.attempt}</td>
                  <td class="small">{f.reason || f.status_id || f.bundle_id || ''}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Loadable>
    </section>
  );
}
