import { useState } from 'preact/hooks';
import { t } from '../i18n.js';
import { api, enc } from '../api.js';
import { me } from '../session.js';
import { useApi, Loadable, ErrorBox, useLang, useSignal } from '../util.jsx';

const ROLES = ['admin', 'analyst', 'auditor'];

function list(d) {
  return Array.isArray(d) ? d : d.items || d.users || [];
}

/** Segment list from a comma-separated text; `null` (every segment) when empty. */
function segs(s) {
  const list = s
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);
  return list.length ? list : null;
}

function UserRow({ u, reload, onError }) {
  const [role, setRole] = useState(u.role || 'analyst');
  const [segments, setSegments] = useState((u.segments || []).join(', '));
  const [password, setPassword] = useState('');
  const save = async () => {
    const body = { role, segments: segs(segments) };
    if (password) body.password = password;
    try {
      await api.patch(`/api/users/${enc(u.username)}`, body);
      setPassword('');
      reload();
    } catch (e) {
      onError(e);
    }
  };
  const remove = async () => {
    if (!confirm(t('confirm_delete'))) return;
    try {
      await api.del(`/api/users/${enc(u.username)}`);
      reload();
    } catch (e) {
      onError(e);
    }
  };
  return (
    <tr class="user-row" data-user={u.username}>
      <td>{u.username}</td>
      <td>
        <select value={role} onChange={(e) => setRole(e.currentTarget.value)}>
          {ROLES.map((r) => (
            <option value={r}>{t(`role_${r}`)}</option>
          ))}
        </select>
      </td>
      <td>
        <input value={segments} placeholder={t('all_segments')} onInput={(e) => setSegments(e.currentTarget.value)} />
      </td>
      <td>
        <input type="password" autocomplete="new-password" value={password} placeholder={t('new_password')} onInput={(e) => setPassword(e.currentTarget.value)} />
      </td>
      <td class="nowrap">
        <button type="button" onClick={save}>
          {t('save')}
        </button>{' '}
        <button type="button" class="danger" onClick={remove}>
          {t('delete')}
        </button>
      </td>
    </tr>
  );
}

export function Users() {
  useLang();
  const user = useSignal(me);
  const state = useApi(user && user.role === 'admin' ? '/api/users' : null);
  const [error, setError] = useState(null);
  const [nu, setNu] = useState({ username: '', password: '', role: 'analyst', segments: '' });
  if (!user || user.role !== 'admin') return <p class="notice">{t('admin_only')}</p>;
  const create = async (e) => {
    e.preventDefault();
    setError(null);
    try {
      await api.post('/api/users', { username: nu.username, password: nu.password, role: nu.role, segments: segs(nu.segments) });
      setNu({ username: '', password: '', role: 'analyst', segments: '' });
      state.reload();
    } catch (err) {
      setError(err);
    }
  };
  return (
    <section>
      <h1>{t('users_title')}</h1>
      <ErrorBox error={error} />
      <Loadable state={state} isEmpty={(d) => list(d).length === 0}>
        {(d) => (
          <table class="data" id="user-table">
            <thead>
              <tr>
                <th>{t('username')}</th>
                <th>{t('role')}</th>
                <th>{t('segments')}</th>
                <th>{t('password')}</th>
                <th>{t('actions')}</th>
              </tr>
            </thead>
            <tbody>
              {list(d).map((u) => (
                <UserRow key={u.username} u={u} reload={state.reload} onError={setError} />
              ))}
            </tbody>
          </table>
        )}
      </Loadable>
      <form class="card filters" id="new-user-form" onSubmit={create}>
        <h2>{t('new_user')}</h2>
        <label>
          {t('username')}
          <input name="new_username" value={nu.username} required onInput={(e) => setNu({ ...nu, username: e.currentTarget.value })} />
        </label>
        <label>
          {t('password')}
          <input
            name="new_password"
            type="password"
            autocomplete="new-password"
            value={nu.password}
            required
            onInput={(e) => setNu({ ...nu, password: e.currentTarget.value })}
          />
        </label>
        <label>
          {t('role')}
          <select value={nu.role} onChange={(e) => setNu({ ...nu, role: e.currentTarget.value })}>
            {ROLES.map((r) => (
              <option value={r}>{t(`role_${r}`)}</option>
            ))}
          </select>
        </label>
        <label>
          {t('segments')}
          <input value={nu.segments} placeholder={t('all_segments')} onInput={(e) => setNu({ ...nu, segments: e.currentTarget.value })} />
        </label>
        <button type="submit" class="primary">
          {t('create')}
        </button>
      </form>
    </section>
  );
}
