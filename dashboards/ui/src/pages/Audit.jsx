import { t } from '../i18n.js';
import { useApi, useQueryState, Loadable, Pager, fmtTime, useLang } from '../util.jsx';

function list(d) {
  return Array.isArray(d) ? d : d.items || d.entries || [];
}

export function Audit() {
  useLang();
  const [q, setQ] = useQueryState({ page: '1' });
  const state = useApi('/api/audit', q, 15000);
  const page = Number(q.page) || 1;
  return (
    <section>
      <h1>{t('audit_title')}</h1>
      <Loadable state={state} isEmpty={(d) => list(d).length === 0}>
        {(d) => (
          <>
            <table class="data" id="audit-table">
              <thead>
                <tr>
                  <th>{t('time')}</th>
                  <th>{t('user')}</th>
                  <th>{t('action')}</th>
                  <th>{t('object')}</th>
                  <th>{t('detail')}</th>
                  <th>{t('result')}</th>
                </tr>
              </thead>
              <tbody>
                {list(d).map((e) => (
                  <tr>
                    <td class="nowrap">{fmtTime(e.timestamp || e.at)}</td>
                    <td>{e.username || e.user || e.actor}</td>
                    <td>{e.action}</td>
                    <td class="mono small">{e.object || e.target || ''}</td>
                    <td class="mono small">{typeof e.detail === 'string' ? e.detail : e.detail ? JSON.stringify(e.detail) : ''}</td>
                    <td>{e.outcome ?? e.result ?? ''}</td>
                  </tr>
                ))}
              </tbody>
            </table>
            {d.total !== undefined && <Pager page={page} perPage={d.per_page || list(d).length || 1} total={d.total} onPage={(p) => setQ({ page: String(p) })} />}
          </>
        )}
      </Loadable>
    </section>
  );
}
