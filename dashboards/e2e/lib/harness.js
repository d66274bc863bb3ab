// Starts `soc run --demo` on a free port with a temporary data directory and a random admin
// password, and Debian's Chromium (driven by playwright-core) with a fresh profile.
import { spawn } from 'node:child_process';
import { mkdtemp, mkdir, rm } from 'node:fs/promises';
import { createWriteStream, existsSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
export const E2E_DIR = path.resolve(here, '..');
export const REPO = path.resolve(E2E_DIR, '../..');
export const OUTPUT = path.join(E2E_DIR, 'test-output');

export const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** The soc binary: $SOC_BIN, else the newest of target/{release,debug}/soc. */
export function socBinary() {
  if (process.env.SOC_BIN) return path.resolve(process.env.SOC_BIN);
  const candidates = ['release', 'debug']
    .map((p) => path.join(REPO, 'target', p, 'soc'))
    .filter((p) => existsSync(p))
    .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
  if (!candidates.length) throw new Error('no soc binary: build it (cargo build -p soc) or set SOC_BIN');
  return candidates[0];
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls `fn` until it returns a truthy value; throws `what` after `limitMs`. */
export async function waitFor(what, fn, limitMs = 120_000, everyMs = 500) {
  const end = Date.now() + limitMs;
  let last;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last ? `: ${last.message}` : ''}`);
    await sleep(everyMs);
  }
}

export async function startServer() {
  await mkdir(OUTPUT, { recursive: true });
  const dataDir = await mkdtemp(path.join(tmpdir(), 'soc-e2e-data-'));
  const port = await freePort();
  const password = `e2e-${randomBytes(12).toString('hex')}`;
  const bin = socBinary();
  const log = createWriteStream(path.join(OUTPUT, 'server.log'));
  const args = ['run', '--demo', '--listen', `127.0.0.1:${port}`, '--data-dir', dataDir, '--no-syslog'];
  const child = spawn(bin, args, {
    cwd: dataDir,
    env: { ...process.env, SOC_ADMIN_PASSWORD: password, SOC_LOG: process.env.SOC_LOG || 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout.pipe(log);
  child.stderr.pipe(log);
  let exited = null;
  child.on('exit', (code, signal) => {
    exited = { code, signal };
  });
  const base = `http://127.0.0.1:${port}`;
  try {
    await waitFor(`${bin} to answer ${base}/healthz (log: test-output/server.log)`, async () => {
      if (exited) throw new Error(`soc exited early (${JSON.stringify(exited)}); see test-output/server.log`);
      const r = await fetch(`${base}/healthz`);
      return r.ok;
    });
  } catch (e) {
    if (!exited) child.kill('SIGKILL');
    await rm(dataDir, { recursive: true, force: true });
    throw e;
  }
  return {
    base,
    port,
    password,
    dataDir,
    async stop() {
      if (!exited) {
        child.kill('SIGINT');
        await waitFor('soc to stop', () => exited !== null, 60_000).catch(() => child.kill('SIGKILL'));
      }
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

export async function startBrowser() {
  const profile = await mkdtemp(path.join(tmpdir(), 'soc-e2e-chromium-'));
  let context;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
      headless: true,
      args: CHROMIUM_FLAGS,
      viewport: { width: 1440, height: 900 },
      locale: 'vi-VN',
      timezoneId: 'Asia/Ho_Chi_Minh',
    });
  } catch (e) {
    await rm(profile, { recursive: true, force: true });
    throw e;
  }
  return {
    context,
    async stop() {
      await context.close();
      await rm(profile, { recursive: true, force: true });
    },
  };
}

export async function screenshot(page, name) {
  await page.screenshot({ path: path.join(OUTPUT, `${name}.png`), fullPage: true });
}
