import { useState } from 'preact/hooks';
import { t } from '../i18n.js';
import { enc } from '../api.js';
import { useApi, Loadable, Severity, Status, Link, fmtTime, useLang, navigate } from '../util.jsx';
import { Triage } from '../components/Triage.jsx';

const FIELDS = [
  ['time', 'timestamp'],
  ['engine', 'engine'],
  ['rule_id', 'rule_id'],
  ['category', 'category'],
  ['segment', 'segment'],
  ['sensor', 'sensor'],
  ['host', 'host'],
  ['source', (a) => a.src_ip && `${a.src_ip}${a.src_port ? `:${a.src_port}` : ''}`],
  ['destination', (a) => a.dest_ip && `${a.dest_ip}${a.dest_port ? `:${a.dest_port}` : ''}`],
  ['proto', 'proto'],
  ['app_proto', 'app_proto'],
  ['flow_id', 'flow_id'],
  ['community_id', 'community_id'],
  ['assignee', 'assignee'],
  ['verdict', 'verdict'],
];

function searchLink(q) {
  return `/search?q=${enc(q)}`;
}

export function AlertDetail({ id }) {
  useLang();
  const state = useApi(`/api/alerts/${enc(id)}`);
  const [by, setBy] = useState('flow');
  const related = useApi(`/api/alerts/${enc(id)}/related`, { by });
  return (
    <section>
      <p>
        <Link href="/alerts">← {t('back')}</Link>
      </p>
      <Loadable state={state}>
        {(raw) => {
          const a = raw.alert || raw;
          return (
            <>
              <h1 id="alert-heading">
                <Severity value={a.severity} /> {a.rule_title || a.rule_id}
              </h1>
              <p>
                <Status value={a.status} />{' '}
                {a.incident_id && (
                  <Link href={`/incidents/${enc(a.incident_id)}`} id="alert-incident-link">
                    {t('open_incident')} {a.incident_id}
                  </Link>
                )}
              </p>
              <div class="card">
                <h2>{t('actions')}</h2>
                <Triage
                  alert={a}
                  onDone={(r, action) => {
                    const inc = r && (r.incident_id || (r.alert && r.alert.incident_id) || (r.incident && r.incident.incident_id));
                    if (action === 'escalate' && inc) navigate(`/incidents/${enc(inc)}`);
                    else state.reload();
                  }}
                />
              </div>
              <div class="card">
                <h2>{t('details')}</h2>
                <dl class="kv">
                  {FIELDS.map(([label, f]) => {
                    const v = typeof f === 'function' ? f(a) : a[f];
                    if (v === undefined || v === null || v === '') return null;
                    return (
                      <>
                        <dt>{t(label)}</dt>
                        <dd class="mono">{label === 'time' ? fmtTime(v) : String(v)}</dd>
                      </>
                    );
                  })}
                </dl>
                <p class="pivots">
                  {t('pivot_search')}:{' '}
                  {a.flow_id && <Link href={searchLink(`flow_id:${a.flow_id}`)}>{t('flow_id')}</Link>}{' '}
                  {a.community_id && <Link href={searchLink(`community_id:"${a.community_id}"`)}>{t('community_id')}</Link>}{' '}
                  {a.src_ip && <Link href={searchLink(`ip:${a.src_ip}`)}>{a.src_ip}</Link>}{' '}
                  {a.dest_ip && <Link href={searchLink(`ip:${a.dest_ip}`)}>{a.dest_ip}</Link>}{' '}
                  {a.host && <Link href={searchLink(`host:${a.host}`)}>{a.host}</Link>}
                </p>
                <details>
                  <summary>JSON</summary>
                  <pre class="json">{JSON.stringify(raw, null, 2)}</pre>
                </details>
              </div>
            </>
          );
        }}
      </Loadable>
      <div class="card">
        <h2>{t('related')}</h2>
        <div class="tabs">
          {['flow', 'host', 'ip'].map((b) => (
            <button type="button" class={by === b ? 'active' : ''} onClick={() => setBy(b)}>
              {t(`by_${b}`)}
            </button>
          ))}
        </div>
        <Loadable state={related} isEmpty={(d) => !(d.items || d).length}>
          {(d) => (
            <table class="data">
              <thead>
                <tr>
                  <th>{t('time')}</th>
                  <th>{t('severity')}</th>
                  <th>{t('rule')}</th>
                  <th>{t('source')}</th>
                  <th>{t('destination')}</th>
                  <th>{t('status')}</th>
                </tr>
              </thead>
              <tbody>
                {(d.items || d).map((r) => (
                  <tr>
                    <td class="nowrap">{fmtTime(r.timestamp)}</td>
                    <td>
                      <Severity value={r.severity} />
                    </td>
                    <td>
                      <Link href={`/alerts/${enc(r.id)}`}>{r.rule_title || r.rule_id}</Link>
                    </td>
                    <td class="mono">{r.src_ip}</td>
                    <td class="mono">{r.dest_ip}</td>
                    <td>
                      <Status value={r.status} />
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </Loadable>
      </div>
    </section>
  );
}
