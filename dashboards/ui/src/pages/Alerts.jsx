import { t, tv } from '../i18n.js';
import { useApi, useQueryState, Loadable, Pager, Severity, Status, Link, fmtTime, fmtNum, RangeSelect, SEVERITIES, useLang } from '../util.jsx';
import { Triage } from '../components/Triage.jsx';
import { useEffect, useRef, useState } from 'preact/hooks';

const STATUSES = ['new', 'acknowledged', 'closed', 'suppressed'];
const DEFAULTS = { since: '24h', severity: '', rule: '', segment: '', sensor: '', ip: '', status: '', sort: 'time', order: 'desc', page: '1', per_page: '50' };

export function Alerts() {
  useLang();
  const [q, setQ] = useQueryState(DEFAULTS);
  const [live, setLive] = useState(true);
  const [draft, setDraft] = useState(q);
  const state = useApi('/api/alerts', q, live ? 5000 : 0);
  // Rows that a live refresh brought (not there in the previous answer for the same filters).
  const seen = useRef({ key: null, ids: null });
  const [fresh, setFresh] = useState(new Set());
  useEffect(() => {
    const items = state.data && state.data.items;
    if (!items) return;
    const key = JSON.stringify(q);
    const ids = new Set(items.map((a) => a.id));
    const prev = seen.current;
    setFresh(prev.key === key && prev.ids ? new Set(items.filter((a) => !prev.ids.has(a.id)).map((a) => a.id)) : new Set());
    seen.current = { key, ids };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [state.data]);
  const page = Number(q.page) || 1;
  const perPage = Number(q.per_page) || 50;

  const field = (name, label, opts) => (
    <label>
      {t(label)}
      {opts ? (
        <select name={name} value={draft[name]} onChange={(e) => setDraft({ ...draft, [name]: e.currentTarget.value })}>
          <option value="">{t('any')}</option>
          {opts.map(([v, l]) => (
            <option value={v}>{l}</option>
          ))}
        </select>
      ) : (
        <input name={name} value={draft[name]} onInput={(e) => setDraft({ ...draft, [name]: e.currentTarget.value })} />
      )}
    </label>
  );

  return (
    <section>
      <h1>{t('alerts_title')}</h1>
      <form
        class="filters"
        id="alert-filters"
        onSubmit={(e) => {
          e.preventDefault();
          setQ({ ...draft, page: '1' });
        }}
      >
        <label>
          {t('since')}
          <RangeSelect value={draft.since} onChange={(v) => setDraft({ ...draft, since: v })} />
        </label>
        {field('severity', 'severity', SEVERITIES.map((s) => [s, tv('sev', s)]))}
        {field('status', 'status', STATUSES.map((s) => [s, tv('st', s)]))}
        {field('rule', 'rule')}
        {field('segment', 'segment')}
        {field('sensor', 'sensor')}
        {field('ip', 'ip')}
        <label>
          {t('sort')}
          <select name="sort" value={draft.sort} onChange={(e) => setDraft({ ...draft, sort: e.currentTarget.value })}>
            <option value="time">{t('sort_time')}</option>
            <option value="severity">{t('sort_severity')}</option>
          </select>
        </label>
        <label>
          &nbsp;
          <select name="order" value={draft.order} onChange={(e) => setDraft({ ...draft, order: e.currentTarget.value })}>
            <option value="desc">{t('order_desc')}</option>
            <option value="asc">{t('order_asc')}</option>
          </select>
        </label>
        <button type="submit" class="primary">
          {t('apply')}
        </button>
        <button
          type="button"
          onClick={() => {
            setDraft(DEFAULTS);
            setQ(DEFAULTS);
          }}
        >
          {t('reset')}
        </button>
      </form>
      <div class="toolbar">
        <label class="inline">
          <input type="checkbox" id="live" checked={live} onChange={(e) => setLive(e.currentTarget.checked)} /> {t('live')}
        </label>
        <button type="button" onClick={state.reload}>
          {t('refresh')}
        </button>
        {state.updated && (
          <span class="muted">
            {t('last_update')}: {state.updated.toLocaleTimeString()}
          </span>
        )}
        {fresh.size > 0 && (
          <span class="fresh-count" id="fresh-count">
            +{fmtNum(fresh.size)} {t('fresh_alerts')}
          </span>
        )}
      </div>
      <Loadable state={state} isEmpty={(d) => !d.items || d.items.length === 0}>
        {(d) => (
          <>
            <table class="data" id="alert-table">
              <thead>
                <tr>
                  <th>{t('time')}</th>
                  <th>{t('severity')}</th>
                  <th>{t('rule')}</th>
                  <th>{t('segment')}</th>
                  <th>{t('source')}</th>
                  <th>{t('destination')}</th>
                  <th>{t('status')}</th>
                  <th>{t('assignee')}</th>
                  <th>{t('actions')}</th>
                </tr>
              </thead>
              <tbody>
                {d.items.map((a) => (
                  <tr key={a.id} class={fresh.has(a.id) ? 'alert-row fresh' : 'alert-row'} data-id={a.id}>
                    <td class="nowrap">{fmtTime(a.timestamp)}</td>
                    <td>
                      <Severity value={a.severity} />
                    </td>
                    <td>
                      <Link href={`/alerts/${encodeURIComponent(a.id)}`} class="alert-link">
                        {a.rule_title || a.rule_id}
                      </Link>
                      <div class="muted small">
                        {a.engine} {a.rule_id}
                      </div>
                    </td>
                    <td>{a.segment}</td>
                    <td class="mono">{a.src_ip ? `${a.src_ip}${a.src_port ? `:${a.src_port}` : ''}` : a.host}</td>
                    <td class="mono">{a.dest_ip ? `${a.dest_ip}${a.dest_port ? `:${a.dest_port}` : ''}` : ''}</td>
                    <td>
                      <Status value={a.status} />
                      {a.incident_id && (
                        <div>
                          <Link href={`/incidents/${encodeURIComponent(a.incident_id)}`} class="small">
                            {a.incident_id}
                          </Link>
                        </div>
                      )}
                    </td>
                    <td>{a.assignee}</td>
                    <td>
                      <Triage alert={a} compact onDone={state.reload} />
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
            <Pager page={page} perPage={d.per_page || perPage} total={d.total} onPage={(p) => setQ({ page: String(p) })} />
            <p class="muted small">
              {t('total')}: {fmtNum(d.total)}
            </p>
          </>
        )}
      </Loadable>
    </section>
  );
}
