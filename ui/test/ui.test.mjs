// Browser tests of litegate's web UI (issue 7): the real binary on 127.0.0.1:0 with a temp
// database, driven through Debian's /usr/bin/chromium by playwright-core. Effects are checked
// through the JSON API with keys, not only on screen. Screenshots go to target/ui-screenshots/.
//
// Run by ui/test/run.sh (which installs chromium and the npm packages when missing).
// LITEGATE_BIN overrides the binary (default target/debug/litegate).
// UPDATE_DOCS_SCREENSHOT=1 also writes docs/keys-page.png (the README's picture).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, writeFileSync, rmSync, copyFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const BIN = process.env.LITEGATE_BIN || join(ROOT, 'target', 'debug', 'litegate');
const SHOTS = join(ROOT, 'target', 'ui-screenshots');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const MASTER = 'sk-ui-test-master-key-0123456789abcdef';
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const CONFIG = `
model_list:
  - model_name: A
    litellm_params: { model: mock/a, input_cost_per_token: 0.001, output_cost_per_token: 0.002 }
  - model_name: B
    litellm_params: { model: mock/b, input_cost_per_token: 0.0005 }
  - model_name: C
    litellm_params: { model: mock/c }
  - model_name: D
    litellm_params: { model: mock/d }
general_settings:
  master_key: os.environ/UI_TEST_MASTER_KEY
`;

let server; let base; let dir; let browser; let page;
const problems = []; // page errors and CSP violations: any fails the run

function startServer() {
  dir = mkdtempSync(join(tmpdir(), 'litegate-ui-'));
  writeFileSync(join(dir, 'config.yaml'), CONFIG);
  const child = spawn(BIN, ['--listen', '127.0.0.1:0', '--db', join(dir, 'litegate.db'),
    '--config', join(dir, 'config.yaml')], {
    env: { ...process.env, UI_TEST_MASTER_KEY: MASTER, RUST_LOG: 'warn' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((ok, fail) => {
    const timer = setTimeout(() => fail(new Error('litegate did not start within 20 s')), 20000);
    let buf = '';
    child.stdout.on('data', (d) => {
      buf += d;
      const m = buf.match(/litegate listening on (http:\/\/\S+)/);
      if (m) { clearTimeout(timer); ok({ child, url: m[1] }); }
    });
    child.on('exit', (code) => { clearTimeout(timer); fail(new Error(`litegate exited with ${code}`)); });
  });
}

async function api(method, path, key, body) {
  const r = await fetch(base + path, {
    method,
    headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  let json = null;
  try { json = JSON.parse(text); } catch (_) { /* not JSON */ }
  return { status: r.status, json, text };
}

async function admin(path, body) {
  const r = await api('POST', path, MASTER, body);
  assert.equal(r.status, 200, `${path}: ${r.text}`);
  return r.json;
}

async function shot(name) {
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

async function goto(pageName) {
  await page.click(`#nav a[data-page=${pageName}]`);
  await page.waitForFunction((p) => document.getElementById('main').dataset.page === p, pageName);
  assert.doesNotMatch(await page.textContent('main'), /\b(null|undefined|NaN)\b/, `${pageName}: stray value shown`);
}

async function loginMaster() {
  await page.goto(base + '/ui');
  await page.fill('#login-master-key', MASTER);
  await page.click('[data-testid=login-master] button[type=submit]');
  await page.waitForSelector('#whoami:has-text("master key")');
}

async function logout() {
  await page.click('#logout');
  await page.waitForSelector('[data-testid=login-user]');
}

async function loginUser(email, password) {
  await page.goto(base + '/ui');
  await page.fill('#login-email', email);
  await page.fill('#login-password', password);
  await page.click('[data-testid=login-user] button[type=submit]');
}

// Selects a team in the key form and waits for the server's model choices for it.
async function chooseKeyTeam(label) {
  await page.selectOption('[data-testid=key-team]', { label });
  await page.waitForFunction(() => {
    const sel = document.querySelector('[data-testid=key-team]');
    const slot = document.querySelector('[data-testid=model-slot]');
    return slot.dataset.teamId === sel.value && slot.querySelector('[data-testid=model-choices]');
  });
  return page.$$eval('[data-testid=model-option]', (els) => els.map((e) => ({
    value: e.value,
    gives: e.closest('label').querySelector('.gives').textContent.replace(/^→\s*/, ''),
  })));
}

async function writeControls() {
  return page.$$eval('main [data-write], main button[type=submit]', (els) => els.length);
}

before(async () => {
  assert.ok(existsSync(BIN), `no litegate binary at ${BIN}: run cargo build first`);
  mkdirSync(SHOTS, { recursive: true });
  const s = await startServer();
  server = s.child; base = s.url;
  const profile = mkdtempSync(join(tmpdir(), 'litegate-ui-chromium-'));
  browser = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM, headless: true, args: FLAGS, viewport: { width: 1280, height: 900 },
  });
  page = browser.pages()[0] || await browser.newPage();
  page.setDefaultTimeout(15000);
  page.on('dialog', (d) => d.accept());
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && /Content Security Policy|Refused to/i.test(m.text())) problems.push(m.text());
  });
});

after(async () => {
  if (browser) await browser.close();
  if (server) server.kill('SIGKILL');
  if (dir) rmSync(dir, { recursive: true, force: true });
});

let acme; let platform; let solo; let narrow; let orgKey;

test('login with the master key gives an HttpOnly SameSite=Strict session cookie, nothing in localStorage', async () => {
  await page.goto(base + '/ui');
  await page.fill('#login-master-key', 'sk-wrong-master-key-000000000000');
  await page.click('[data-testid=login-master] button[type=submit]');
  await page.waitForSelector('[data-testid=login-error]:visible');
  assert.match(await page.textContent('[data-testid=login-error]'), /Login failed/);
  await loginMaster();
  const cookies = await browser.cookies(base);
  const c = cookies.find((x) => x.name === 'litegate_session');
  assert.ok(c, 'session cookie set');
  assert.equal(c.httpOnly, true);
  assert.equal(c.sameSite, 'Strict');
  assert.ok(c.expires > Date.now() / 1000 && c.expires < Date.now() / 1000 + 13 * 3600, 'expires within 12 h');
  assert.equal(await page.evaluate(() => document.cookie), '', 'the cookie is invisible to JS');
  assert.equal(await page.evaluate(() => localStorage.length + sessionStorage.length), 0);
});

test('create an organization with two models', async () => {
  await goto('orgs');
  await page.fill('[data-testid=create-org-form] input[name=organization_alias]', 'Acme');
  await page.check('[data-testid=create-org-form] input[type=checkbox][value=A]');
  await page.check('[data-testid=create-org-form] input[type=checkbox][value=B]');
  await page.click('[data-testid=create-org]');
  const row = await page.waitForSelector('[data-testid=org-row][data-org-alias=Acme]');
  assert.match(await row.textContent(), /A.*B/);
  const orgs = (await api('GET', '/organization/list', MASTER)).json;
  acme = orgs.find((o) => o.organization_alias === 'Acme');
  assert.deepEqual(acme.models, ['A', 'B']);
  // An org for the org-admin check below, made through the API.
  await admin('/organization/new', { organization_alias: 'Other', models: ['C'] });
});

test('create teams: one in the org, one without an org, one missing an org model', async () => {
  await goto('teams');
  const create = async (name, orgLabel, models) => {
    await page.fill('[data-testid=create-team-form] input[name=team_alias]', name);
    await page.selectOption('[data-testid=team-org]', { label: orgLabel });
    if (orgLabel === 'Acme') {
      // The model boxes reload with the org's models only.
      await page.waitForFunction(() => !document.querySelector('[data-testid=create-team-form] input[type=checkbox][value=C]'));
    }
    for (const m of models) await page.check(`[data-testid=create-team-form] input[type=checkbox][value=${m}]`);
    await page.click('[data-testid=create-team]');
    await page.waitForSelector(`[data-testid=team-row][data-team-alias=${name}]`);
  };
  await create('Platform', 'Acme', []);
  await create('Solo', '— no organization —', ['A', 'B']);
  await create('Narrow', 'Acme', ['A']);
  const teams = (await api('GET', '/team/list', MASTER)).json;
  platform = teams.find((t) => t.team_alias === 'Platform');
  solo = teams.find((t) => t.team_alias === 'Solo');
  narrow = teams.find((t) => t.team_alias === 'Narrow');
  assert.equal(platform.organization_id, acme.organization_id);
  assert.equal(solo.organization_id, null);
  assert.deepEqual(narrow.models, ['A']);
  await shot('teams');
});

test('key form: "All Org Models" only where the server allows it, with the models each choice gives', async () => {
  await goto('keys');
  const inOrg = await chooseKeyTeam('Platform');
  const values = inOrg.map((o) => o.value);
  assert.deepEqual(values, ['all-team-models', 'all-org-models', 'A', 'B']);
  assert.equal(inOrg.find((o) => o.value === 'all-org-models').gives, 'A, B');
  const noOrg = await chooseKeyTeam('Solo (no organization)');
  assert.ok(!noOrg.some((o) => o.value === 'all-org-models'), JSON.stringify(noOrg));
  assert.ok(noOrg.some((o) => o.value === 'all-team-models'));
  const missing = await chooseKeyTeam('Narrow');
  assert.ok(!missing.some((o) => o.value === 'all-org-models'), JSON.stringify(missing));
  assert.deepEqual(missing.map((o) => o.value), ['all-team-models', 'A']);
  // The page shows what the endpoint says, and the endpoint is the server's resolver.
  const ep = await page.evaluate(async (t) => (await fetch('/ui/key_model_options?team_id=' + t)).json(), narrow.team_id);
  assert.deepEqual(ep.options.map((o) => o.value), ['all-team-models', 'A']);
});

test('create a key with "All Org Models": shown once, gives the org\'s two models', async () => {
  await goto('keys');
  await page.fill('[data-testid=create-key-form] input[name=key_alias]', 'svc-org');
  await chooseKeyTeam('Platform');
  await page.check('[data-testid=model-option][value=all-org-models]');
  assert.match(await page.textContent('[data-testid=model-summary]'), /able to call: A, B$/);
  await page.click('[data-testid=create-key]');
  const raw = await page.inputValue('[data-testid=secret-panel] [data-testid=new-key]');
  assert.match(raw, /^sk-/);
  orgKey = raw;
  await page.click('[data-testid=copy-key]');
  await page.waitForSelector('[data-testid=secret-panel]:has-text("Copied.")');
  const row = await page.waitForSelector('[data-testid=key-row][data-key-alias=svc-org]');
  assert.match(await (await row.$('[data-testid=key-models]')).textContent(), /All Org Models/);
  const info = await api('GET', '/key/info?key=' + encodeURIComponent(raw), MASTER);
  assert.deepEqual(info.json.info.models, ['all-org-models']);
  assert.deepEqual(info.json.info.effective_models, ['A', 'B']);
  assert.deepEqual((await api('GET', '/v1/models', raw)).json.data.map((m) => m.id), ['A', 'B']);
  // The raw key is not on the page once the list is shown again.
  await goto('orgs');
  await goto('keys');
  assert.ok(!(await page.content()).includes(raw), 'raw key shown again');
  // A call, for the usage page.
  const call = await api('POST', '/v1/chat/completions', raw, { model: 'A', messages: [{ role: 'user', content: 'hello there' }] });
  assert.equal(call.status, 200, call.text);
});

test('block, unblock and regenerate a key: the old key stops working', async () => {
  await goto('keys');
  const row = '[data-testid=key-row][data-key-alias=svc-org]';
  await page.click(`${row} [data-testid=block-key]`);
  await page.waitForSelector(`${row} [data-testid=key-status]:has-text("blocked")`);
  assert.equal((await api('GET', '/v1/models', orgKey)).status, 401);
  await page.click(`${row} [data-testid=unblock-key]`);
  await page.waitForSelector(`${row} [data-testid=key-status]:has-text("active")`);
  assert.equal((await api('GET', '/v1/models', orgKey)).status, 200);
  await page.click(`${row} [data-testid=regenerate-key]`);
  const fresh = await page.inputValue('[data-testid=secret-panel] [data-testid=new-key]');
  assert.match(fresh, /^sk-/);
  assert.notEqual(fresh, orgKey);
  assert.equal((await api('GET', '/v1/models', orgKey)).status, 401, 'old key must stop working');
  assert.equal((await api('GET', '/v1/models', fresh)).status, 200);
  const call = await api('POST', '/v1/chat/completions', fresh, { model: 'B', messages: [{ role: 'user', content: 'again' }] });
  assert.equal(call.status, 200, call.text);
  await page.click('[data-testid=secret-panel] button:has-text("Done")');
  // The picture shows the key form's choices for a team in an org.
  await chooseKeyTeam('Platform');
  await page.fill('[data-testid=create-key-form] input[name=key_alias]', 'reporting');
  await page.check('[data-testid=model-option][value=all-org-models]');
  await shot('keys');
  if (process.env.UPDATE_DOCS_SCREENSHOT === '1') {
    copyFileSync(join(SHOTS, 'keys.png'), join(ROOT, 'docs', 'keys-page.png'));
  }
});

test('edit a key\'s models; API errors show as readable messages', async () => {
  await goto('keys');
  const row = '[data-testid=key-row][data-key-alias=svc-org]';
  await page.click(`${row} [data-testid=edit-key]`);
  await page.waitForSelector('[data-testid=edit-key-form]');
  await page.uncheck('[data-testid=edit-key-form] [data-testid=model-option][value=all-org-models]');
  await page.check('[data-testid=edit-key-form] [data-testid=model-option][value=B]');
  await page.click('[data-testid=edit-key-form] button[type=submit]');
  await page.waitForSelector(`${row} [data-testid=key-models]:has-text("B")`);
  const keys = (await api('GET', '/key/list?return_full_object=true&key_alias=svc-org', MASTER)).json.keys;
  assert.deepEqual(keys[0].models, ['B']);
  // A duplicate alias: the API's 409 message appears on the page.
  await page.fill('[data-testid=create-key-form] input[name=key_alias]', 'svc-org');
  await page.click('[data-testid=create-key]');
  await page.waitForSelector('#flash.error:visible');
  assert.match(await page.textContent('#flash'), /alias 'svc-org' already exists/);
});

test('the key page\'s "Why?" panel explains a model the key may and may not call', async () => {
  await goto('keys');
  const row = '[data-testid=key-row][data-key-alias=svc-org]';
  await page.click(`${row} [data-testid=why-key]`);
  await page.waitForSelector('[data-testid=why-panel] [data-testid=why-verdict]');
  // svc-org may call B only (edited above); its team's org has A and B.
  await page.selectOption('[data-testid=why-model]', 'A');
  await page.click('[data-testid=why-ask]');
  await page.waitForSelector('[data-testid=why-verdict]:has-text("Refused by key")');
  const api_ = await api('POST', '/access/explain', MASTER, { key: 'svc-org', model: 'A' });
  assert.equal(api_.status, 200, api_.text);
  assert.match(await page.textContent('[data-testid=why-verdict]'), new RegExp(api_.json.reason.slice(0, 40).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
  const allows = await page.$$eval('[data-testid=why-levels] tbody tr', (rs) => rs.map((r) => [r.dataset.level, r.lastElementChild.textContent]));
  assert.deepEqual(allows, [['proxy', 'yes'], ['organization', 'yes'], ['team', 'yes'], ['user', '—'], ['key', 'no']]);
  await page.fill('[data-testid=why-other]', 'B');
  await page.click('[data-testid=why-ask]');
  await page.waitForSelector('[data-testid=why-verdict]:has-text("Allowed: B")');
  assert.doesNotMatch(await page.textContent('[data-testid=why-panel]'), /\b(null|undefined|NaN)\b/);
  await shot('why');
});

test('users page lists, creates and changes roles; usage page shows spend', async () => {
  await goto('users');
  await page.fill('[data-testid=create-user-form] input[name=user_email]', 'bob@example.com');
  await page.fill('[data-testid=create-user-form] input[name=user_id]', 'bob');
  await page.click('[data-testid=create-user]');
  await page.waitForSelector('[data-testid=user-row][data-user-id=bob]');
  await page.selectOption('[data-testid=user-row][data-user-id=bob] [data-testid=user-role]', 'internal_user_viewer');
  await page.waitForSelector('#flash.info:has-text("internal_user_viewer")');
  assert.equal((await api('GET', '/user/info?user_id=bob', MASTER)).json.user_info.user_role, 'internal_user_viewer');
  await shot('users');
  await goto('usage');
  await page.waitForSelector('[data-testid=usage-row]');
  assert.match(await page.textContent('[data-testid=usage-table]'), /svc-org/);
  await page.selectOption('[data-testid=usage-filter] select[name=by]', 'org');
  await page.click('[data-testid=usage-filter] button[type=submit]');
  await page.waitForFunction(() => /Acme/.test(document.querySelector('[data-testid=usage-table]')?.textContent || ''));
  await shot('usage');
  await goto('orgs');
  await page.click('[data-testid=org-row][data-org-alias=Acme] [data-testid=open-org]');
  await page.waitForSelector('[data-testid=org-detail]');
  await shot('organizations');
});

test('models page: a proxy admin adds, edits and deletes a stored model; its key is never shown', async () => {
  await goto('models');
  const configured = await page.$$eval('[data-testid=model-row]', (els) => els.length);
  assert.equal(configured, 4, 'the config models are listed');
  assert.equal(await page.$('[data-testid=model-row] [data-testid=delete-model]'), null, 'config models are not editable here');
  const secret = 'sk-ui-upstream-secret-1234567890';
  await page.fill('[data-testid=model-form] input[name=model_name]', 'ui-model');
  await page.fill('[data-testid=model-form] input[name=model]', 'mock/ui');
  await page.fill('[data-testid=model-form] input[name=api_key]', secret);
  await page.fill('[data-testid=model-form] input[name=rpm]', '7');
  await page.click('[data-testid=save-model]');
  await page.waitForSelector('[data-testid=model-row]:has-text("ui-model")');
  assert.doesNotMatch(await page.textContent('main'), new RegExp(secret));
  const info = (await api('GET', '/model/info', MASTER)).json.data.find((d) => d.model_name === 'ui-model');
  assert.ok(info, 'stored');
  assert.equal(info.model_info.db_model, true);
  assert.equal(info.litellm_params.rpm, 7);
  assert.doesNotMatch(JSON.stringify(info), new RegExp(secret));
  const call = await api('POST', '/v1/chat/completions', MASTER, { model: 'ui-model', messages: [{ role: 'user', content: 'hi' }] });
  assert.equal(call.status, 200, call.text);
  await shot('models');
  // Edit: the name and the rpm; the stored key is kept (the field stays empty).
  const row = `[data-testid=model-row][data-model-id="${info.model_info.id}"]`;
  await page.click(`${row} [data-testid=edit-model]`);
  assert.equal(await page.inputValue('[data-testid=model-form] input[name=api_key]'), '');
  await page.fill('[data-testid=model-form] input[name=model_name]', 'ui-renamed');
  await page.fill('[data-testid=model-form] input[name=rpm]', '9');
  await page.click('[data-testid=save-model]');
  await page.waitForSelector('[data-testid=model-row]:has-text("ui-renamed")');
  const after = (await api('GET', `/model/info?litellm_model_id=${info.model_info.id}`, MASTER)).json.data[0];
  assert.equal(after.model_name, 'ui-renamed');
  assert.equal(after.litellm_params.rpm, 9);
  await page.click(`${row} [data-testid=delete-model]`);
  await page.waitForFunction((sel) => !document.querySelector(sel), row);
  const gone = await api('POST', '/v1/chat/completions', MASTER, { model: 'ui-renamed', messages: [{ role: 'user', content: 'hi' }] });
  assert.equal(gone.status, 400);
});

test('a user logs in with the email and password an admin set via /user/update', async () => {
  await admin('/user/new', { user_id: 'vera', user_email: 'vera@example.com', user_role: 'proxy_admin_viewer', auto_create_key: false });
  await admin('/user/update', { user_id: 'vera', password: 'correct horse battery' });
  await logout();
  await loginUser('vera@example.com', 'wrong password');
  await page.waitForSelector('[data-testid=login-error]:visible');
  assert.match(await page.textContent('[data-testid=login-error]'), /Login failed/);
  await loginUser('vera@example.com', 'correct horse battery');
  await page.waitForSelector('#whoami:has-text("vera@example.com")');
});

test('a viewer sees every page and no write controls', async () => {
  for (const p of ['keys', 'teams', 'orgs', 'users', 'models', 'usage']) {
    await goto(p);
    assert.equal(await page.$('[data-testid=page-error]'), null, `${p}: error shown`);
    if (p === 'usage') continue; // its filter form changes nothing
    assert.equal(await writeControls(), 0, `write controls on ${p} for a viewer`);
  }
  await goto('keys');
  await page.waitForSelector('[data-testid=key-row][data-key-alias=svc-org]');
  await goto('orgs');
  await page.click('[data-testid=org-row][data-org-alias=Acme] [data-testid=open-org]');
  await page.waitForSelector('[data-testid=org-detail]');
  assert.equal(await writeControls(), 0);
  assert.doesNotMatch(await page.textContent('main'), /\b(null|undefined|NaN)\b/);
  await shot('keys-viewer');
  // The API agrees: a viewer's cookie cannot write.
  const r = await page.evaluate(async () => (await fetch('/organization/new', {
    method: 'POST', headers: { 'X-Litegate-UI': '1' }, body: JSON.stringify({ organization_alias: 'x' }),
  })).status);
  assert.equal(r, 403);
});

test('an org admin sees only their organizations', async () => {
  await admin('/user/new', { user_id: 'olga', user_email: 'olga@example.com', user_role: 'internal_user', auto_create_key: false, password: 'olga-password-1' });
  await admin('/organization/member_add', { organization_id: acme.organization_id, member: { user_id: 'olga', role: 'org_admin' } });
  await logout();
  await loginUser('olga@example.com', 'olga-password-1');
  await page.waitForSelector('#whoami:has-text("olga@example.com")');
  await goto('orgs');
  const aliases = await page.$$eval('[data-testid=org-row]', (els) => els.map((e) => e.dataset.orgAlias));
  assert.deepEqual(aliases, ['Acme']);
  await goto('teams');
  assert.ok(await page.$('[data-testid=create-team-form]'), 'an org admin may create teams in their org');
  const orgChoices = await page.$$eval('[data-testid=team-org] option', (els) => els.map((e) => e.textContent));
  assert.deepEqual(orgChoices, ['Acme']);
  await logout();
  assert.equal(await page.evaluate(async () => (await fetch('/ui/me')).status), 401, 'logged out');
});

test('no page error or CSP violation happened', () => {
  assert.deepEqual(problems, []);
});
