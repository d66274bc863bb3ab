import { useState } from 'preact/hooks';
import { t, tv } from '../i18n.js';
import { api, enc } from '../api.js';
import { useApi, Loadable, Severity, Status, Link, fmtTime, fmtNum, ErrorBox, useLang } from '../util.jsx';
import { INCIDENT_STATUSES } from './Incidents.jsx';
import { forwardingRows } from './Forwarding.jsx';

function Actions({ inc, reload }) {
  const [status, setStatus] = useState(inc.status || 'new');
  const [statusComment, setStatusComment] = useState('');
  const [owner, setOwner] = useState(inc.owner || '');
  const [text, setText] = useState('');
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const base = `/api/incidents/${enc(inc.incident_id)}`;
  const run = async (fn) => {
    setBusy(true);
    setError(null);
    try {
      await fn();
      reload();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  return (
    <div class="card incident-actions">
      <h2>{t('actions')}</h2>
      <form
        id="incident-status-form"
        onSubmit={(e) => {
          e.preventDefault();
          run(() => api.post(`${base}/status`, statusComment.trim() ? { status, comment: statusComment.trim() } : { status }));
        }}
      >
        <label>
          {t('set_status')}
          <select name="status" value={status} onChange={(e) => setStatus(e.currentTarget.value)}>
            {INCIDENT_STATUSES.map((s) => (
              <option value={s}>{tv('st', s)}</option>
            ))}
          </select>
        </label>
        <label>
          {t('comment')}
          <input name="status_comment" value={statusComment} onInput={(e) => setStatusComment(e.currentTarget.value)} />
        </label>
        <button type="submit" disabled={busy}>
          {t('save')}
        </button>
      </form>
      <form
        id="incident-owner-form"
        onSubmit={(e) => {
          e.preventDefault();
          run(() => api.post(`${base}/assign`, { owner }));
        }}
      >
        <label>
          {t('set_owner')}
          <input name="owner" value={owner} required onInput={(e) => setOwner(e.currentTarget.value)} />
        </label>
        <button type="submit" disabled={busy}>
          {t('save')}
        </button>
      </form>
      <form
        id="incident-comment-form"
        onSubmit={(e) => {
          e.preventDefault();
          run(async () => {
            await api.post(`${base}/comments`, { text });
            setText('');
          });
        }}
      >
        <label class="grow">
          {t('add_comment')}
          <textarea name="text" value={text} required rows={2} onInput={(e) => setText(e.currentTarget.value)} />
        </label>
        <button type="submit" disabled={busy}>
          {t('add_comment')}
        </button>
      </form>
      <ErrorBox error={error} />
    </div>
  );
}

export function IncidentDetail({ id }) {
  useLang();
  const state = useApi(`/api/incidents/${enc(id)}`, undefined, 10000);
  return (
    <section>
      <p>
        <Link href="/incidents">← {t('back')}</Link>
      </p>
      <Loadable state={state}>
        {(d) => {
          const inc = d.incident || d;
          const forwarding = forwardingRows(d.forwarding || []);
          const timeline = [
            ...(inc.alerts || []).map((a) => ({ at: a.timestamp, kind: 'alert', a })),
            ...(inc.history || []).map((h) => ({ at: h.at, kind: 'change', h })),
          ].sort((x, y) => String(x.at).localeCompare(String(y.at)));
          return (
            <>
              <h1 id="incident-heading">
                <Severity value={inc.severity} /> {inc.title || inc.incident_id}
              </h1>
              <p>
                <Status value={inc.status} /> <span class="muted mono">{inc.incident_id}</span> · v{inc.version} ·{' '}
                <a href={`/api/incidents/${enc(inc.incident_id)}/stix`} download={`${inc.incident_id}.stix.json`} id="stix-link">
                  {t('stix')}
                </a>
              </p>
              <div class="grid2">
                <div class="card">
                  <h2>{t('details')}</h2>
                  <dl class="kv">
                    <dt>{t('owner')}</dt>
                    <dd id="incident-owner">{inc.owner || '—'}</dd>
                    <dt>{t('segments')}</dt>
                    <dd>{(inc.segments || []).join(', ')}</dd>
                    <dt>{t('alert_count')}</dt>
                    <dd>{fmtNum(inc.alert_count)}</dd>
                    <dt>{t('first_seen')}</dt>
                    <dd>{fmtTime(inc.first_seen)}</dd>
                    <dt>{t('last_seen')}</dt>
                    <dd>{fmtTime(inc.last_seen)}</dd>
                    <dt>{t('entities')}</dt>
                    <dd class="mono">{(inc.entities || []).join(', ')}</dd>
                    {inc.tags && inc.tags.length > 0 && (
                      <>
                        <dt>{t('tags')}</dt>
                        <dd>{inc.tags.join(', ')}</dd>
                      </>
                    )}
                  </dl>
                </div>
                <Actions inc={inc} reload={state.reload} />
              </div>
              <div class="card">
                <h2>{t('forwarding_status')}</h2>
                {forwarding.length === 0 ? (
                  <p class="muted">{t('empty')}</p>
                ) : (
                  <table class="data" id="incident-forwarding">
                    <thead>
                      <tr>
                        <th>{t('at')}</th>
                        <th>v</th>
                        <th>{t('status')}</th>
                        <th>{t('target')}</th>
                        <th>{t('attempts')}</th>
                        <th>{t('result')}</th>
                      </tr>
                    </thead>
                    <tbody>
                      {forwarding.map((f) => (
                        <tr>
                          <td class="nowrap">{fmtTime(f.timestamp || f.at)}</td>
                          <td>{f.incident_version}</td>
                          <td>
                            <span class={`status fs-${f.state}`}>{tv('fs', f.state)}</span>
                          </td>
                          <td class="mono small">{f.destination}</td>
                          <td class="num">{f.attempt}</td>
                          <td class="small">{f.reason || f.status_id || ''}</td>
                        </tr>
                      ))}
                    </tbody>
                  </table>
                )}
              </div>
              <div class="card">
                <h2>{t('timeline')}</h2>
                <ol class="timeline" id="incident-timeline">
                  {timeline.map((e) =>
                    e.kind === 'alert' ? (
                      <li class="tl-alert">
                        <span class="nowrap muted">{fmtTime(e.at)}</span> <Severity value={e.a.level} />{' '}
                        <Link href={`/alerts/${enc(e.a.id)}`}>{e.a.rule_title || e.a.rule_id}</Link>{' '}
                        <span class="mono small">
                          {e.a.src_ip || e.a.host || ''}
                          {e.a.dest_ip ? ` → ${e.a.dest_ip}${e.a.dest_port ? `:${e.a.dest_port}` : ''}` : ''}
                        </span>
                        {e.a.observables && e.a.observables.length > 0 && <div class="small mono">{t('evidence')}: {e.a.observables.join(', ')}</div>}
                      </li>
                    ) : (
                      <li class="tl-change">
                        <span class="nowrap muted">{fmtTime(e.at)}</span> <b>{e.h.actor}</b> <span data-action={e.h.action}>{tv('hist', e.h.action)}</span>
                        {e.h.from !== undefined || e.h.to !== undefined ? ` ${e.h.from ?? ''} → ${e.h.to ?? ''}` : ''}
                        {e.h.detail ? `: ${e.h.detail}` : ''}
                        {e.h.comment ? `: ${e.h.comment}` : ''}
                        {e.h.text ? `: ${e.h.text}` : ''}
                      </li>
                    ),
                  )}
                </ol>
              </div>
            </>
          );
        }}
      </Loadable>
    </section>
  );
}
