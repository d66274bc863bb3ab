import { useState } from 'preact/hooks';
import { t, tv } from '../i18n.js';
import { enc } from '../api.js';
import { useApi, useQueryState, Loadable, Pager, Severity, Status, Link, fmtTime, fmtNum, SEVERITIES, useLang } from '../util.jsx';

export const INCIDENT_STATUSES = ['new', 'acknowledged', 'investigating', 'resolved', 'false_positive'];
const DEFAULTS = { status: '', severity: '', segment: '', page: '1', per_page: '50' };

export function Incidents() {
  useLang();
  const [q, setQ] = useQueryState(DEFAULTS);
  const [draft, setDraft] = useState(q);
  const state = useApi('/api/incidents', q, 10000);
  const page = Number(q.page) || 1;
  return (
    <section>
      <h1>{t('incidents_title')}</h1>
      <form
        class="filters"
        onSubmit={(e) => {
          e.preventDefault();
          setQ({ ...draft, page: '1' });
        }}
      >
        <label>
          {t('status')}
          <select value={draft.status} onChange={(e) => setDraft({ ...draft, status: e.currentTarget.value })}>
            <option value="">{t('any')}</option>
            {INCIDENT_STATUSES.map((s) => (
              <option value={s}>{tv('st', s)}</option>
            ))}
          </select>
        </label>
        <label>
          {t('severity')}
          <select value={draft.severity} onChange={(e) => setDraft({ ...draft, severity: e.currentTarget.value })}>
            <option value="">{t('any')}</option>
            {SEVERITIES.map((s) => (
              <option value={s}>{tv('sev', s)}</option>
            ))}
          </select>
        </label>
        <label>
          {t('segment')}
          <input value={draft.segment} onInput={(e) => setDraft({ ...draft, segment: e.currentTarget.value })} />
        </label>
        <button type="submit" class="primary">
          {t('apply')}
        </button>
      </form>
      <Loadable state={state} isEmpty={(d) => !d.items || d.items.length === 0}>
        {(d) => (
          <>
            <table class="data" id="incident-table">
              <thead>
                <tr>
                  <th>{t('last_seen')}</th>
                  <th>{t('severity')}</th>
                  <th>{t('title')}</th>
                  <th>{t('status')}</th>
                  <th>{t('owner')}</th>
                  <th>{t('segments')}</th>
                  <th>{t('alert_count')}</th>
                </tr>
              </thead>
              <tbody>
                {d.items.map((i) => (
                  <tr class="incident-row" data-id={i.incident_id}>
                    <td class="nowrap">{fmtTime(i.last_seen || i.updated)}</td>
                    <td>
                      <Severity value={i.severity} />
                    </td>
                    <td>
                      <Link href={`/incidents/${enc(i.incident_id)}`} class="incident-link">
                        {i.title || i.incident_id}
                      </Link>
                    </td>
                    <td>
                      <Status value={i.status} />
                    </td>
                    <td>{i.owner}</td>
                    <td>{(i.segments || []).join(', ')}</td>
                    <td class="num">{fmtNum(i.alert_count)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
            <Pager page={page} perPage={d.per_page || Number(q.per_page)} total={d.total} onPage={(p) => setQ({ page: String(p) })} />
          </>
        )}
      </Loadable>
    </section>
  );
}
