import { useState } from 'preact/hooks';
import { t } from '../i18n.js';
import { useApi, useQueryState, Loadable, fmtTime, fmtNum, RangeSelect, useLang, Link } from '../util.jsx';
import { BarChart } from '../components/Charts.jsx';

const DEFAULTS = { q: '', since: '24h', limit: '100' };

function summary(e) {
  if (e.alert) return e.alert.signature || e.alert.title || '';
  if (e.dns) return `${e.dns.type || ''} ${e.dns.rrname || ''} ${e.dns.rrtype || ''}`;
  if (e.http) return `${e.http.http_method || ''} ${e.http.hostname || ''}${e.http.url || ''} ${e.http.status || ''}`;
  if (e.tls) return `${e.tls.sni || ''} ${e.tls.version || ''}`;
  if (e.flow) return `${e.flow.pkts_toserver ?? ''}/${e.flow.pkts_toclient ?? ''} pkts ${e.flow.state || ''}`;
  if (e.syslog) return e.syslog.message || e.syslog.msg || '';
  if (e.message) return String(e.message);
  return '';
}

export function Search() {
  useLang();
  const [q, setQ] = useQueryState(DEFAULTS);
  const [draft, setDraft] = useState(q);
  const state = useApi(q.q ? '/api/search' : null, q);
  const err = state.error;
  return (
    <section>
      <h1>{t('search_title')}</h1>
      <form
        class="filters search"
        id="search-form"
        onSubmit={(e) => {
          e.preventDefault();
          setQ(draft);
        }}
      >
        <label class="grow">
          {t('search_query')}
          <input
            name="q"
            id="search-q"
            class="mono"
            value={draft.q}
            placeholder="event_type:alert"
            onInput={(e) => setDraft({ ...draft, q: e.currentTarget.value })}
          />
        </label>
        <label>
          {t('since')}
          <RangeSelect value={draft.since} onChange={(v) => setDraft({ ...draft, since: v })} />
        </label>
        <label>
          {t('limit')}
          <select value={draft.limit} onChange={(e) => setDraft({ ...draft, limit: e.currentTarget.value })}>
            {['50', '100', '500', '1000'].map((n) => (
              <option value={n}>{n}</option>
            ))}
          </select>
        </label>
        <button type="submit" class="primary" id="search-run">
          {t('search_run')}
        </button>
      </form>
      <p class="muted small">{t('search_help')}</p>
      {err && err.status === 400 && err.body && err.body.position !== undefined && (
        <div class="error" role="alert" id="search-error">
          {t('query_error_at')} {err.body.position}: {err.body.error}
          <pre class="mono">
            {q.q}
            {'\n'}
            {' '.repeat(Math.max(0, Number(err.body.position) || 0))}^
          </pre>
        </div>
      )}
      {q.q && !(err && err.status === 400 && err.body && err.body.position !== undefined) && (
        <Loadable state={state}>
          {(d) =>
            d.counts ? (
              <div class="card" id="search-counts">
                <h2>{t('counts')}</h2>
                <BarChart items={d.counts.slice(0, 20)} label={t('count')} horizontal />
                <table class="data">
                  <thead>
                    <tr>
                      <th>{t('key')}</th>
                      <th>{t('count')}</th>
                    </tr>
                  </thead>
                  <tbody>
                    {d.counts.map((c) => (
                      <tr>
                        <td class="mono">{c.key}</td>
                        <td class="num">{fmtNum(c.count)}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
            ) : (
              <div class="card">
                <h2>
                  {t('results')}: {fmtNum((d.events || []).length)}
                </h2>
                <table class="data" id="search-results">
                  <thead>
                    <tr>
                      <th>{t('time')}</th>
                      <th>{t('event_type')}</th>
                      <th>{t('segment')}</th>
                      <th>{t('source')}</th>
                      <th>{t('destination')}</th>
                      <th>{t('summary')}</th>
                    </tr>
                  </thead>
                  <tbody>
                    {(d.events || []).map((e) => (
                      <tr class="search-row">
                        <td class="nowrap">{fmtTime(e.timestamp)}</td>
                        <td>{e.event_type}</td>
                        <td>{e.segment}</td>
                        <td class="mono">
                          {e.src_ip ? (
                            <Link href={`/search?q=${encodeURIComponent(`ip:${e.src_ip}`)}`}>
                              {e.src_ip}
                              {e.src_port ? `:${e.src_port}` : ''}
                            </Link>
                          ) : (
                            e.host || ''
                          )}
                        </td>
                        <td class="mono">
                          {e.dest_ip || ''}
                          {e.dest_port ? `:${e.dest_port}` : ''}
                        </td>
                        <td class="small">{summary(e)}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
            )
          }
        </Loadable>
      )}
    </section>
  );
}
