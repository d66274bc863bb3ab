import { useEffect, useState, useCallback, useRef } from 'preact/hooks';
import { t, tv, lang } from './i18n.js';
import { api } from './api.js';

export function useSignal(sig) {
  const [v, setV] = useState(sig.get());
  useEffect(() => sig.subscribe(setV), [sig]);
  return v;
}

/** Re-render on language change. */
export function useLang() {
  return useSignal(lang);
}

/**
 * Loads `path` with `params`; reloads when they change, and every `refreshMs` when set.
 * Returns { data, error, loading, reload, updated }.
 */
export function useApi(path, params, refreshMs) {
  const [state, setState] = useState({ data: null, error: null, loading: !!path, updated: null });
  const key = path ? path + JSON.stringify(params || {}) : null;
  const seq = useRef(0);
  const load = useCallback(async () => {
    if (!path) return;
    const my = ++seq.current;
    setState((s) => ({ ...s, loading: true }));
    try {
      const data = await api.get(path, params);
      if (my === seq.current) setState({ data, error: null, loading: false, updated: new Date() });
    } catch (error) {
      if (my === seq.current) setState((s) => ({ data: s.data, error, loading: false, updated: s.updated }));
    }
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [key]);
  useEffect(() => {
    load();
    if (!refreshMs) return undefined;
    const id = setInterval(load, refreshMs);
    return () => clearInterval(id);
  }, [load, refreshMs]);
  return { ...state, reload: load };
}

export function navigate(to) {
  if (location.pathname + location.search === to) return;
  history.pushState(null, '', to);
  dispatchEvent(new PopStateEvent('popstate'));
}

/** An in-app link: client-side navigation, real href for new tabs. */
export function Link({ href, children, ...rest }) {
  const onClick = (e) => {
    if (e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    e.preventDefault();
    navigate(href);
  };
  return (
    <a href={href} onClick={onClick} {...rest}>
      {children}
    </a>
  );
}

export function fmtTime(ts) {
  if (!ts) return '';
  const d = new Date(ts);
  if (Number.isNaN(d.getTime())) return String(ts);
  return d.toLocaleString(lang.get() === 'vi' ? 'vi-VN' : 'en-GB', { hour12: false });
}

export function fmtNum(n) {
  if (n === undefined || n === null || n === '') return '';
  const x = Number(n);
  if (Number.isNaN(x)) return String(n);
  return x.toLocaleString(lang.get() === 'vi' ? 'vi-VN' : 'en-GB');
}

export function Severity({ value }) {
  const v = String(value || '').toLowerCase();
  return <span class={`sev sev-${v || 'none'}`}>{tv('sev', v)}</span>;
}

export function Status({ value }) {
  const v = String(value || '').toLowerCase();
  return <span class={`status st-${v || 'none'}`}>{tv('st', v)}</span>;
}

/** Loading / error / empty states around a body. */
export function Loadable({ state, children, isEmpty }) {
  if (state.error && !state.data) return <ErrorBox error={state.error} />;
  if (!state.data) return <p class="muted">{t('loading')}</p>;
  return (
    <>
      {state.error && <ErrorBox error={state.error} />}
      {isEmpty && isEmpty(state.data) ? <p class="muted empty">{t('empty')}</p> : children(state.data)}
    </>
  );
}

export function ErrorBox({ error }) {
  if (!error) return null;
  const unavailable = error.status === 404 || error.status === 405;
  return (
    <div class={unavailable ? 'notice' : 'error'} role="alert">
      {unavailable ? t('unavailable') : `${t('error')}: ${error.message}`}
    </div>
  );
}

export function Pager({ page, perPage, total, onPage }) {
  const pages = Math.max(1, Math.ceil((total || 0) / (perPage || 1)));
  return (
    <div class="pager">
      <button type="button" disabled={page <= 1} onClick={() => onPage(page - 1)}>
        {t('previous')}
      </button>
      <span>
        {t('page')} {page} {t('of')} {pages} · {t('total')}: {fmtNum(total)}
      </span>
      <button type="button" disabled={page >= pages} onClick={() => onPage(page + 1)}>
        {t('next')}
      </button>
    </div>
  );
}

export const SEVERITIES = ['critical', 'high', 'medium', 'low', 'informational'];
export const RANGES = ['15m', '1h', '24h', '7d', '30d'];

export function RangeSelect({ value, onChange, id }) {
  return (
    <select id={id} value={value} onChange={(e) => onChange(e.currentTarget.value)}>
      {RANGES.map((r) => (
        <option value={r}>{t(`range_${r}`)}</option>
      ))}
    </select>
  );
}

/** Reads and writes the query string of the current page (filters survive reloads and links). */
export function useQueryState(defaults) {
  const read = () => {
    const usp = new URLSearchParams(location.search);
    const out = { ...defaults };
    for (const k of Object.keys(defaults)) if (usp.has(k)) out[k] = usp.get(k);
    return out;
  };
  const [q, setQ] = useState(read);
  useEffect(() => {
    const on = () => setQ(read());
    addEventListener('popstate', on);
    return () => removeEventListener('popstate', on);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);
  const update = (patch) => {
    const next = { ...q, ...patch };
    const usp = new URLSearchParams();
    for (const [k, v] of Object.entries(next)) if (v !== '' && v !== null && v !== undefined && v !== defaults[k]) usp.set(k, v);
    const s = usp.toString();
    history.replaceState(null, '', location.pathname + (s ? `?${s}` : ''));
    setQ(next);
  };
  return [q, update];
}
