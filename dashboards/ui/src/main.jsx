import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import './style.css';
import { api, setCsrfToken, setUnauthorizedHandler } from './api.js';
import { t, setLang, lang, missingKeys } from './i18n.js';
import { me, noAuth } from './session.js';
import { useSignal, useLang, Link, navigate } from './util.jsx';
import { Login } from './pages/Login.jsx';
import { Alerts } from './pages/Alerts.jsx';
import { AlertDetail } from './pages/AlertDetail.jsx';
import { Incidents } from './pages/Incidents.jsx';
import { IncidentDetail } from './pages/IncidentDetail.jsx';
import { Search } from './pages/Search.jsx';
import { Stats } from './pages/Stats.jsx';
import { Sensors } from './pages/Sensors.jsx';
import { Forwarding } from './pages/Forwarding.jsx';
import { Audit } from './pages/Audit.jsx';
import { Users } from './pages/Users.jsx';


const missing = missingKeys();
if (missing.length) console.error('i18n: labels missing in one language:', missing.join(', '));
document.documentElement.lang = lang.get();

setUnauthorizedHandler(() => {
  setCsrfToken(null);
  me.set(null);
});

async function checkSession() {
  try {
    const m = await api.get('/api/me', undefined, { silent401: true });
    setCsrfToken(m.csrf_token);
    me.set(m);
  } catch (e) {
    if (e.status === 404) {
      noAuth.set(true);
      me.set({ username: '-', role: 'auditor', segments: [] });
    } else {
      me.set(null);
    }
  }
}

const NAV = [
  ['/alerts', 'nav_alerts'],
  ['/incidents', 'nav_incidents'],
  ['/search', 'nav_search'],
  ['/stats', 'nav_stats'],
  ['/sensors', 'nav_sensors'],
  ['/forwarding', 'nav_forwarding'],
  ['/audit', 'nav_audit'],
  ['/users', 'nav_users', 'admin'],
];

function route(path) {
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  switch (parts[0]) {
    case undefined:
    case 'alerts':
      return parts[1] ? <AlertDetail id={parts[1]} /> : <Alerts />;
    case 'incidents':
      return parts[1] ? <IncidentDetail id={parts[1]} /> : <Incidents />;
    case 'search':
      return <Search />;
    case 'stats':
      return <Stats />;
    case 'sensors':
      return <Sensors />;
    case 'forwarding':
      return <Forwarding />;
    case 'audit':
      return <Audit />;
    case 'users':
      return <Users />;
    default:
      return <p>{t('not_found')}</p>;
  }
}

function usePath() {
  const [path, setPath] = useState(location.pathname);
  useEffect(() => {
    const on = () => setPath(location.pathname);
    addEventListener('popstate', on);
    return () => removeEventListener('popstate', on);
  }, []);
  return path;
}

async function logout() {
  try {
    await api.post('/api/logout', {});
  } catch {
    // the session is dropped locally either way
  }
  setCsrfToken(null);
  me.set(null);
  navigate('/login');
}

function App() {
  const user = useSignal(me);
  const l = useLang();
  const path = usePath();
  const isNoAuth = useSignal(noAuth);
  useEffect(() => {
    checkSession();
  }, []);
  useEffect(() => {
    document.title = t('app_name');
  }, [l]);

  const langButton = (
    <button type="button" class="lang" id="lang-switch" onClick={() => setLang(l === 'vi' ? 'en' : 'vi')}>
      {t('lang_switch')}
    </button>
  );

  if (user === undefined) return <p class="muted center">{t('loading')}</p>;
  if (user === null) {
    return (
      <div class="login-page">
        <div class="login-top">{langButton}</div>
        <Login
          onLogin={(m) => {
            setCsrfToken(m.csrf_token);
            me.set(m);
            if (path === '/login' || path === '/') navigate('/alerts');
          }}
        />
      </div>
    );
  }
  const current = path === '/' || path === '/login' ? '/alerts' : path;
  if (path === '/login') history.replaceState(null, '', '/alerts');
  return (
    <div class="layout">
      <header class="top">
        <span class="brand">{t('app_name')}</span>
        <nav>
          {NAV.filter(([, , role]) => !role || user.role === role).map(([href, key]) => (
            <Link href={href} class={current.startsWith(href) ? 'active' : ''} id={`nav-${href.slice(1)}`}>
              {t(key)}
            </Link>
          ))}
        </nav>
        <span class="who">
          <span id="whoami">{user.username}</span>
          {user.role && <span class="muted"> ({t(`role_${user.role}`)})</span>}
        </span>
        {langButton}
        {!isNoAuth && (
          <button type="button" id="logout" onClick={logout}>
            {t('logout')}
          </button>
        )}
      </header>
      {isNoAuth && <div class="notice">{t('no_auth_server')}</div>}
      <main key={l}>{route(current)}</main>
    </div>
  );
}

render(<App />, document.getElementById('app'));
