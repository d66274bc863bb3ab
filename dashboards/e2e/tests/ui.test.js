// End-to-end: the web UI served by `soc run --demo`, in Debian's Chromium.
// Screenshots of the main screens go to dashboards/e2e/test-output/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, startBrowser, screenshot, waitFor } from '../lib/harness.js';

let server;
let browser;
let page;
const problems = [];
const state = {};

async function api(path) {
  const r = await page.request.get(`${server.base}${path}`);
  return { status: r.status(), body: r.ok() ? await r.json() : await r.text() };
}

async function text(selector) {
  return (await page.locator(selector).first().textContent()).trim();
}

before(async () => {
  server = await startServer();
  browser = await startBrowser();
  page = browser.context.pages()[0] || (await browser.context.newPage());
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    const s = m.text();
    // API answers with 4xx/5xx are shown in the page; only script and policy errors count here.
    if (s.startsWith('Failed to load resource')) return;
    problems.push(`console: ${s}`);
  });
});

after(async () => {
  if (browser) await browser.stop();
  if (server) await server.stop();
});

test('the login page rejects a wrong password and signs the admin in with an HttpOnly session', async () => {
  await page.goto(`${server.base}/`);
  await page.locator('#login-form').waitFor();
  await screenshot(page, '01-login');
  await page.fill('input[name=username]', 'admin');
  await page.fill('input[name=password]', 'not-the-password');
  await page.click('#login-form button[type=submit]');
  await page.locator('#login-error').waitFor();
  assert.equal((await api('/api/me')).status, 401);

  await page.fill('input[name=password]', server.password);
  await page.click('#login-form button[type=submit]');
  await page.locator('#whoami').waitFor();
  assert.equal(await text('#whoami'), 'admin');
  const cookies = await browser.context.cookies(server.base);
  assert.ok(cookies.length > 0, 'a session cookie is set');
  assert.ok(cookies.every((c) => c.httpOnly), 'session cookies are HttpOnly');
  const me = await api('/api/me');
  assert.equal(me.status, 200);
  assert.equal(me.body.role, 'admin');
});

test('the alert queue lists the demo alerts, sorts and refreshes live', async () => {
  await waitFor('demo alerts in the store', async () => (await api('/api/alerts?per_page=1')).body.total > 0);
  await page.click('#nav-alerts');
  await page.locator('.alert-row').first().waitFor();
  assert.ok((await page.locator('.alert-row').count()) > 0);
  const first = await text('.toolbar .muted');
  await waitFor('the queue to refresh by itself', async () => (await text('.toolbar .muted')) !== first, 30_000);

  // A new alert while the queue is open: a log line that a built-in Sigma rule detects,
  // from a host no other record names. It must show up by itself, without a page load.
  await page.evaluate(() => {
    window.__e2eNoReload = true;
  });
  const host = `e2e-live-${Date.now().toString(36)}`;
  const line = `<85>1 ${new Date().toISOString()} ${host} sudo - - - www-data : user NOT in sudoers ; TTY=pts/0 ; PWD=/tmp ; USER=root ; COMMAND=/bin/sh`;
  const posted = await page.request.post(`${server.base}/api/ingest`, { data: line, headers: { 'content-type': 'text/plain' } });
  assert.equal(posted.status(), 200, await posted.text());
  // Marked as arrived with the last refresh (`fresh`), in a page that was not loaded again.
  const row = page.locator('.alert-row.fresh', { hasText: host });
  const counted = page.locator('#fresh-count');
  await waitFor(
    'the posted alert to appear in the open queue, counted as new',
    async () => (await row.count()) > 0 && (await counted.count()) > 0,
    60_000,
  );
  assert.equal(await page.evaluate(() => window.__e2eNoReload), true, 'the page was not reloaded');
  await screenshot(page, '02-alert-queue');

  await page.selectOption('#alert-filters select[name=sort]', 'severity');
  await page.click('#alert-filters button[type=submit]');
  await waitFor('sort in the URL', async () => page.url().includes('sort=severity'));
  await page.locator('.alert-row').first().waitFor();
  const sevs = await page.locator('.alert-row .sev').allTextContents();
  assert.ok(sevs.length > 0);
});

test('triage: acknowledge an alert, then escalate it to an incident', async () => {
  await page.locator('.alert-row .alert-link').first().click();
  await page.locator('#alert-heading').waitFor();
  const id = decodeURIComponent(new URL(page.url()).pathname.split('/')[2]);
  state.alertId = id;
  await page.click('.triage button[data-action=acknowledge]');
  await waitFor('the alert to be acknowledged', async () => (await api(`/api/alerts/${encodeURIComponent(id)}`)).body.status === 'acknowledged', 15_000);
  await page.locator('.triage .ok').waitFor();
  await screenshot(page, '03-alert-detail');

  await page.click('.triage button[data-action=escalate]');
  await page.fill('.triage-form input[name=comment]', 'escalated by the browser test');
  await page.click('#triage-submit');
  await page.locator('#incident-heading').waitFor();
  const incidentId = decodeURIComponent(new URL(page.url()).pathname.split('/')[2]);
  assert.ok(new URL(page.url()).pathname.startsWith('/incidents/'));
  const alert = (await api(`/api/alerts/${encodeURIComponent(id)}`)).body;
  assert.equal(alert.incident_id, incidentId);
  assert.equal(alert.status, 'acknowledged');
  const inc = (await api(`/api/incidents/${encodeURIComponent(incidentId)}`)).body.incident;
  assert.ok(
    (inc.alerts || []).some((a) => a.id === id) || (inc.alert_ids || []).includes(id),
    'the incident holds the escalated alert',
  );
  await page.locator('#incident-timeline .tl-alert').first().waitFor();
  state.incidentId = incidentId;
  await screenshot(page, '04-incident');
});

test('incident: status, owner and a comment show in the timeline and the list', async () => {
  assert.ok(state.incidentId, 'needs the incident of the previous test');
  await page.selectOption('#incident-status-form select[name=status]', 'investigating');
  await page.click('#incident-status-form button[type=submit]');
  await page.fill('#incident-owner-form input[name=owner]', 'admin');
  await page.click('#incident-owner-form button[type=submit]');
  await page.fill('#incident-comment-form textarea[name=text]', 'e2e: checked the source host');
  await page.click('#incident-comment-form button[type=submit]');
  await page.locator('#incident-timeline', { hasText: 'e2e: checked the source host' }).waitFor();
  const inc = (await api(`/api/incidents/${encodeURIComponent(state.incidentId)}`)).body.incident;
  assert.equal(inc.status, 'investigating');
  assert.equal(inc.owner, 'admin');
  assert.equal(await text('#incident-owner'), 'admin');
  await screenshot(page, '05-incident-updated');

  await page.click('#nav-incidents');
  await page.locator(`.incident-row[data-id="${state.incidentId}"]`).waitFor();
  await screenshot(page, '06-incidents');
});

test('search: results table, count-by view and the position of a syntax error', async () => {
  await page.click('#nav-search');
  await page.fill('#search-q', 'event_type:alert');
  await page.click('#search-run');
  await page.locator('.search-row').first().waitFor();
  const types = await page.locator('.search-row td:nth-child(2)').allTextContents();
  assert.ok(types.length > 0 && types.every((t) => t === 'alert'), `only alerts: ${types}`);
  await screenshot(page, '07-search');

  await page.fill('#search-q', '| count by event_type');
  await page.click('#search-run');
  await page.locator('#search-counts tbody tr').first().waitFor();
  const keys = await page.locator('#search-counts tbody td.mono').allTextContents();
  assert.ok(keys.includes('alert'), `event types counted: ${keys}`);
  await screenshot(page, '08-search-counts');

  await page.fill('#search-q', 'event_type:alert | count');
  await page.click('#search-run');
  await page.locator('#search-error').waitFor();
  assert.match(await text('#search-error'), /\d/);
});

test('statistics: the alerts-over-time chart and the world map are drawn', async () => {
  await page.click('#nav-stats');
  const canvas = page.locator('#chart-alerts-over-time');
  await canvas.waitFor();
  const painted = await canvas.evaluate((c) => {
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
    return n;
  });
  assert.ok(painted > 0, 'the chart canvas has drawn pixels');
  assert.ok((await page.locator('#world-map path').count()) > 100, 'the map has the countries');
  assert.ok((await page.locator('#top-rules tbody tr').count()) > 0, 'top rules listed');
  await screenshot(page, '09-statistics');
});

test('the language switch turns every label between Vietnamese and English and is remembered', async () => {
  await page.click('#nav-alerts');
  await page.locator('.alert-row').first().waitFor();
  const lang0 = await page.evaluate(() => document.documentElement.lang);
  const nav0 = await text('#nav-alerts');
  assert.equal(lang0, 'vi');
  assert.equal(nav0, 'Cảnh báo');
  await screenshot(page, '10-alert-queue-vi');
  await page.click('#lang-switch');
  await waitFor('English labels', async () => (await text('#nav-alerts')) === 'Alerts', 10_000);
  assert.equal(await page.evaluate(() => document.documentElement.lang), 'en');
  assert.equal(await text('h1'), 'Alert queue');
  await page.reload();
  await page.locator('#nav-alerts').waitFor();
  assert.equal(await text('#nav-alerts'), 'Alerts');
  await screenshot(page, '11-alert-queue-en');
  await page.click('#lang-switch');
  await waitFor('Vietnamese labels', async () => (await text('#nav-alerts')) === 'Cảnh báo', 10_000);
});

test('sensor health, forwarding, audit log and user admin screens', async () => {
  await page.click('#nav-sensors');
  await page.locator('#sensor-table tbody tr').first().waitFor();
  await screenshot(page, '12-sensors');

  await page.click('#nav-forwarding');
  await page.locator('h1').waitFor();
  await page.locator('#forwarding-table, .empty').first().waitFor();
  assert.equal(await page.locator('main .error').count(), 0);
  await screenshot(page, '13-forwarding');

  await page.click('#nav-audit');
  await page.locator('#audit-table tbody tr').first().waitFor();
  const actions = await page.locator('#audit-table tbody td:nth-child(3)').allTextContents();
  assert.ok(actions.some((a) => a.includes('login')), `a login is audited: ${actions.slice(0, 10)}`);
  await screenshot(page, '14-audit');

  await page.click('#nav-users');
  await page.locator('.user-row[data-user="admin"]').waitFor();
  await page.fill('#new-user-form input[name=new_username]', 'e2e-analyst');
  await page.fill('#new-user-form input[name=new_password]', 'a-long-e2e-password-1');
  await page.click('#new-user-form button[type=submit]');
  await page.locator('.user-row[data-user="e2e-analyst"]').waitFor();
  await screenshot(page, '15-users');
});

test('log out returns to the login page and the old session is refused', async () => {
  await page.click('#logout');
  await page.locator('#login-form').waitFor();
  assert.equal((await api('/api/me')).status, 401);
});

test('no script error or content-security-policy violation on any screen', () => {
  assert.deepEqual(problems, []);
});
