import { signal } from './state.js';

// `undefined` while checking the session, `null` when signed out, the /api/me object otherwise.
export const me = signal(undefined);
// True when the server has no authentication endpoints (older API): read-only browsing.
export const noAuth = signal(false);
