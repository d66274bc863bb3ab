import { useState } from 'preact/hooks';
import { api, enc } from '../api.js';
import { t } from '../i18n.js';
import { ErrorBox } from '../util.jsx';

const ACTIONS = ['acknowledge', 'assign', 'escalate', 'close', 'suppress'];
const VERDICTS = ['true_positive', 'false_positive', 'benign'];

/** Triage form for one alert: POST /api/alerts/{id}/actions. Calls onDone(response, action). */
export function Triage({ alert, onDone, compact }) {
  const [action, setAction] = useState(null);
  const [assignee, setAssignee] = useState(alert.assignee || '');
  const [verdict, setVerdict] = useState('true_positive');
  const [comment, setComment] = useState('');
  const [incidentId, setIncidentId] = useState('');
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const [done, setDone] = useState(false);

  const send = async (a) => {
    const body = { action: a };
    if (a === 'assign') body.assignee = assignee;
    if (a === 'close') body.verdict = verdict;
    if (a === 'escalate' && incidentId.trim()) body.incident_id = incidentId.trim();
    if (comment.trim()) body.comment = comment.trim();
    setBusy(true);
    setError(null);
    try {
      const r = await api.post(`/api/alerts/${enc(alert.id)}/actions`, body);
      setAction(null);
      setComment('');
      setDone(true);
      onDone && onDone(r, a);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };

  const needsForm = (a) => !compact || a !== 'acknowledge';
  return (
    <div class="triage">
      <div class="buttons">
        {ACTIONS.filter((a) => !compact || a === 'acknowledge' || a === 'escalate').map((a) => (
          <button
            type="button"
            class={`act act-${a}${action === a ? ' selected' : ''}`}
            data-action={a}
            disabled={busy}
            onClick={() => (needsForm(a) && a !== 'acknowledge' ? setAction(action === a ? null : a) : send(a))}
          >
            {t(`act_${a}`)}
          </button>
        ))}
      </div>
      {action && (
        <form
          class="triage-form"
          onSubmit={(e) => {
            e.preventDefault();
            send(action);
          }}
        >
          {action === 'assign' && (
            <label>
              {t('assignee')}
              <input name="assignee" value={assignee} required onInput={(e) => setAssignee(e.currentTarget.value)} />
            </label>
          )}
          {action === 'close' && (
            <label>
              {t('verdict')}
              <select name="verdict" value={verdict} onChange={(e) => setVerdict(e.currentTarget.value)}>
                {VERDICTS.map((v) => (
                  <option value={v}>{t(`v_${v}`)}</option>
                ))}
              </select>
            </label>
          )}
          {action === 'escalate' && (
            <label>
              {t('existing_incident')}
              <input name="incident_id" value={incidentId} onInput={(e) => setIncidentId(e.currentTarget.value)} />
            </label>
          )}
          <label>
            {t('comment')}
            <input name="comment" value={comment} onInput={(e) => setComment(e.currentTarget.value)} />
          </label>
          <button type="submit" class="primary" id="triage-submit" disabled={busy}>
            {t(`act_${action}`)}
          </button>
          <button type="button" onClick={() => setAction(null)}>
            {t('cancel')}
          </button>
        </form>
      )}
      {done && !error && !action && <span class="ok">{t('action_done')}</span>}
      <ErrorBox error={error} />
    </div>
  );
}
