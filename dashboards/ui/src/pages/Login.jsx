import { useState } from 'preact/hooks';
import { api } from '../api.js';
import { t } from '../i18n.js';
import { useLang } from '../util.jsx';

export function Login({ onLogin }) {
  useLang();
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const m = await api.post('/api/login', { username, password }, { silent401: true });
      setPassword('');
      onLogin(m);
    } catch (err) {
      if (err.status === 401) setError(t('login_failed'));
      else if (err.status === 429) setError(t('login_throttled'));
      else if (err.status === 404) setError(t('unavailable'));
      else setError(`${t('error')}: ${err.message}`);
    } finally {
      setBusy(false);
    }
  };
  return (
    <form class="login card" onSubmit={submit} id="login-form">
      <h1>{t('app_name')}</h1>
      <h2>{t('login_title')}</h2>
      <label>
        {t('username')}
        <input name="username" autocomplete="username" value={username} required onInput={(e) => setUsername(e.currentTarget.value)} />
      </label>
      <label>
        {t('password')}
        <input
          name="password"
          type="password"
          autocomplete="current-password"
          value={password}
          required
          onInput={(e) => setPassword(e.currentTarget.value)}
        />
      </label>
      {error && (
        <div class="error" role="alert" id="login-error">
          {error}
        </div>
      )}
      <button type="submit" class="primary" disabled={busy}>
        {t('login')}
      </button>
    </form>
  );
}
