// litegate admin UI. Plain JavaScript, no build step, no third-party code.
//
// Every page calls litegate's ordinary JSON API with the session cookie (HttpOnly: this script
// never sees it) and the X-Litegate-UI header, which the server requires on cookie-authenticated
// writes. The API decides every permission; the pages only hide what the role cannot do.
// Model choices for keys come from GET /ui/key_model_options, computed by the server's
// resolver: this file has no copy of the model-access rules.
'use strict';

const ALL_TEAM_MODELS = 'all-team-models';
const ALL_ORG_MODELS = 'all-org-models';
const SPECIAL_LABELS = {
  [ALL_TEAM_MODELS]: 'All Team Models',
  [ALL_ORG_MODELS]: 'All Org Models',
};
const USER_ROLES = ['proxy_admin', 'proxy_admin_viewer', 'internal_user', 'internal_user_viewer'];
const ORG_ROLES = ['org_admin', 'internal_user', 'internal_user_viewer'];
const TEAM_ROLES = ['user', 'admin'];

const state = { me: null, models: null };

// ------------------------------------------------------------------------------------------
// DOM helpers (text is always set as text: nothing from the API is parsed as HTML)

function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'value') el.value = v;
    else if (k === 'checked') el.checked = !!v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of kids.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

// A control that changes something: hidden from viewers, marked for the browser tests.
function wbtn(label, onclick, cls, testid) {
  return h('button', { type: 'button', class: cls || '', 'data-write': '', 'data-testid': testid, onclick }, label);
}

function pills(models, emptyText) {
  if (!models || models.length === 0) return h('span', { class: 'muted' }, emptyText || 'all (no limit)');
  return models.map((m) => h('span', { class: 'pill' + (SPECIAL_LABELS[m] ? ' special' : '') }, SPECIAL_LABELS[m] || m));
}

function money(x) {
  if (x === null || x === undefined) return '—';
  return '$' + Number(x).toFixed(Number(x) !== 0 && Math.abs(x) < 0.01 ? 6 : 2);
}

function dateText(iso) {
  return iso ? iso.replace('T', ' ').replace(/\.\d+Z$/, ' UTC').replace(/Z$/, ' UTC') : 'never';
}

function flash(msg, kind) {
  const f = document.getElementById('flash');
  f.hidden = !msg;
  f.className = kind || 'error';
  f.textContent = msg || '';
}

function clearFlash() { flash(''); }

// ------------------------------------------------------------------------------------------
// API

class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function api(method, path, body) {
  const opts = { method, headers: { 'X-Litegate-UI': '1' }, credentials: 'same-origin' };
  if (body !== undefined) {
    opts.headers['Content-Type'] = 'application/json';
    opts.body = JSON.stringify(body);
  }
  let r;
  try {
    r = await fetch(path, opts);
  } catch (e) {
    throw new ApiError(0, 'Cannot reach litegate: ' + e.message);
  }
  const text = await r.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (_) { data = null; }
  if (!r.ok) {
    const msg = data && data.error && data.error.message ? data.error.message : `HTTP ${r.status}`;
    if (r.status === 401 && !path.startsWith('/ui/login')) {
      state.me = null;
      // A first visit has no session: just the login form, no error.
      showLogin(path === '/ui/me' && !state.wasIn ? '' : msg);
    }
    throw new ApiError(r.status, msg);
  }
  return data;
}

// Runs an action, showing any API error as a readable message; reloads the page on success.
async function act(fn, okMsg) {
  clearFlash();
  try {
    const out = await fn();
    if (okMsg) flash(okMsg, 'info');
    return out;
  } catch (e) {
    if (e.status !== 401) flash(e.message || String(e));
    return undefined;
  }
}

async function configuredModels() {
  if (!state.models) {
    const r = await api('GET', '/v1/models');
    state.models = (r.data || []).map((m) => m.id);
  }
  return state.models;
}

// ------------------------------------------------------------------------------------------
// Roles

const me = () => state.me || {};
const canWrite = () => !me().is_viewer;
const isProxyAdmin = () => me().user_role === 'proxy_admin';
function isOrgAdmin(org) {
  if (isProxyAdmin()) return true;
  if (!canWrite()) return false;
  return (org.members || []).some((m) => m.user_id === me().user_id && m.user_role === 'org_admin');
}
function isTeamAdmin(team, orgs) {
  if (isProxyAdmin()) return true;
  if (!canWrite()) return false;
  const org = (orgs || []).find((o) => o.organization_id === team.organization_id);
  if (org && isOrgAdmin(org)) return true;
  return (team.members_with_roles || []).some((m) => m.user_id === me().user_id && m.role === 'admin');
}

// ------------------------------------------------------------------------------------------
// Login

function showLogin(message) {
  document.getElementById('top').hidden = true;
  clearFlash();
  const main = document.getElementById('main');
  const err = h('div', { class: 'error', 'data-testid': 'login-error', hidden: !message }, message || '');
  const fail = (e) => { err.hidden = false; err.textContent = e.message; };
  const masterForm = h('form', { 'data-testid': 'login-master' },
    h('label', { for: 'login-master-key' }, 'Master key'),
    h('input', { type: 'password', id: 'login-master-key', name: 'master_key', autocomplete: 'off', required: true }),
    h('button', { type: 'submit' }, 'Log in with master key'));
  masterForm.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try {
      await api('POST', '/ui/login', { master_key: masterForm.master_key.value });
      masterForm.master_key.value = '';
      await start();
    } catch (e) { fail(e); }
  });
  const userForm = h('form', { 'data-testid': 'login-user' },
    h('label', { for: 'login-email' }, 'Email'),
    h('input', { type: 'email', id: 'login-email', name: 'email', autocomplete: 'username', required: true }),
    h('label', { for: 'login-password' }, 'Password'),
    h('input', { type: 'password', id: 'login-password', name: 'password', autocomplete: 'current-password', required: true }),
    h('button', { type: 'submit' }, 'Log in'));
  userForm.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try {
      await api('POST', '/ui/login', { email: userForm.email.value, password: userForm.password.value });
      userForm.password.value = '';
      await start();
    } catch (e) { fail(e); }
  });
  main.replaceChildren(h('div', { class: 'login card' },
    h('h1', {}, 'litegate'),
    err, userForm, h('div', { class: 'or' }, 'or'), masterForm));
}

// ------------------------------------------------------------------------------------------
// Pages

const PAGES = { keys: keysPage, teams: teamsPage, orgs: orgsPage, users: usersPage, models: modelsPage, usage: usagePage };

async function render() {
  if (!state.me) return;
  const name = (location.hash.replace(/^#\//, '') || 'keys').split('?')[0];
  const page = PAGES[name] ? name : 'keys';
  for (const a of document.querySelectorAll('#nav a')) a.classList.toggle('active', a.dataset.page === page);
  const main = document.getElementById('main');
  main.replaceChildren(h('p', { class: 'muted' }, 'Loading…'));
  try {
    const content = await PAGES[page]();
    main.replaceChildren(...[content].flat().filter((x) => x !== null && x !== undefined));
    main.dataset.page = page;
  } catch (e) {
    if (e.status === 401) return;
    main.replaceChildren(h('h1', {}, page), h('div', { class: 'error', 'data-testid': 'page-error' }, e.message));
  }
}

// ---------------------------------------------------------------- Keys

async function allKeys() {
  const out = [];
  for (let page = 1; page <= 50; page++) {
    const r = await api('GET', `/key/list?return_full_object=true&size=100&page=${page}`);
    out.push(...r.keys);
    if (page >= r.total_pages) break;
  }
  return out;
}

// The model choices of the key form, from the server's resolver. `onChange(models)` gets the
// selected values; the summary shows what the key would be able to call.
function modelChooser(opts, selected) {
  const sel = new Set(selected || []);
  const wrap = h('div', { class: 'choices', 'data-testid': 'model-choices' });
  const summary = h('div', { class: 'hint', 'data-testid': 'model-summary' });
  const boxes = [];
  const update = () => {
    const chosen = boxes.filter((b) => b.checked).map((b) => b.value);
    let gives;
    if (chosen.length === 0) {
      gives = opts.team_id ? (opts.team_models || []) : opts.grantable_models || [];
    } else {
      const set = new Set();
      for (const o of opts.options) if (chosen.includes(o.value)) o.models.forEach((m) => set.add(m));
      gives = [...set];
    }
    summary.replaceChildren('This key will be able to call: ',
      gives.length ? gives.join(', ') : h('strong', {}, 'nothing'));
  };
  for (const o of opts.options) {
    const id = 'mc-' + Math.random().toString(36).slice(2);
    const box = h('input', { type: 'checkbox', id, value: o.value, checked: sel.has(o.value), 'data-testid': 'model-option', onchange: update });
    boxes.push(box);
    wrap.append(h('label', { class: 'choice', for: id },
      box, h('span', {}, SPECIAL_LABELS[o.value] || o.value),
      h('span', { class: 'gives' }, '→ ' + (o.models.length ? o.models.join(', ') : 'nothing'))));
  }
  if (opts.options.length === 0) wrap.append(h('span', { class: 'muted' }, 'No models can be granted here.'));
  // Selected values the server no longer offers (e.g. the team left its org) stay visible.
  for (const v of sel) {
    if (!opts.options.some((o) => o.value === v)) {
      const box = h('input', { type: 'checkbox', value: v, checked: true, onchange: update });
      boxes.push(box);
      wrap.append(h('label', { class: 'choice' }, box, h('span', {}, SPECIAL_LABELS[v] || v), h('span', { class: 'gives' }, '→ not available now')));
    }
  }
  wrap.append(h('span', { class: 'hint' }, 'None selected: every model the team (or owner) may call.'), summary);
  update();
  return { el: wrap, values: () => boxes.filter((b) => b.checked).map((b) => b.value) };
}

async function modelOptions(teamId) {
  const q = teamId ? '?team_id=' + encodeURIComponent(teamId) : '';
  return api('GET', '/ui/key_model_options' + q);
}

function secretPanel(title, raw) {
  const input = h('input', { type: 'text', readonly: true, value: raw, 'data-testid': 'new-key' });
  const status = h('span', { class: 'hint' });
  const copy = h('button', {
    type: 'button', 'data-testid': 'copy-key', onclick: async () => {
      try {
        await navigator.clipboard.writeText(raw);
      } catch (_) {
        input.select();
        document.execCommand('copy');
      }
      status.textContent = ' Copied.';
    },
  }, 'Copy');
  return h('div', { class: 'secret', 'data-testid': 'secret-panel' },
    h('h2', {}, title),
    h('p', {}, 'Copy this key now: it is shown only once and cannot be retrieved later.'),
    h('div', { class: 'toolbar' }, input, copy, status),
    h('button', { type: 'button', class: 'secondary small', onclick: (ev) => ev.target.closest('.secret').remove() }, 'Done'));
}

async function keysPage() {
  const [keys, teams] = await Promise.all([allKeys(), api('GET', '/team/list')]);
  const teamName = (id) => {
    const t = teams.find((x) => x.team_id === id);
    return t ? (t.team_alias || t.team_id) : id;
  };
  const editArea = h('div', {});
  const rows = keys.map((k) => {
    const why = h('button', { type: 'button', class: 'secondary small', 'data-testid': 'why-key', onclick: () => whyKey(k) }, 'Why?');
    const actions = canWrite() ? h('div', { class: 'actions' }, why,
      wbtn('Edit', () => editKey(k), 'secondary small', 'edit-key'),
      k.blocked
        ? wbtn('Unblock', () => act(async () => { await api('POST', '/key/unblock', { key: k.token }); await render(); }), 'secondary small', 'unblock-key')
        : wbtn('Block', () => act(async () => { await api('POST', '/key/block', { key: k.token }); await render(); }), 'secondary small', 'block-key'),
      wbtn('Regenerate', () => act(async () => {
        if (!confirm(`Regenerate ${k.key_name}? The current key stops working at once.`)) return;
        const r = await api('POST', '/key/regenerate', { key: k.token });
        await render();
        document.getElementById('main').prepend(secretPanel(`New key for ${r.key_alias || r.key_name}`, r.key));
      }), 'secondary small', 'regenerate-key'),
      wbtn('Delete', () => act(async () => {
        if (!confirm(`Delete ${k.key_name}? This cannot be undone.`)) return;
        await api('POST', '/key/delete', { keys: [k.token] });
        await render();
      }), 'danger small', 'delete-key')) : h('div', { class: 'actions' }, why);
    return h('tr', { 'data-testid': 'key-row', 'data-key-alias': k.key_alias || '', 'data-token': k.token },
      h('td', {}, h('code', {}, k.key_name)),
      h('td', {}, k.key_alias || h('span', { class: 'muted' }, '—')),
      h('td', {}, k.team_id ? teamName(k.team_id) : h('span', { class: 'muted' }, 'personal')),
      h('td', { 'data-testid': 'key-models' }, pills(k.models, k.team_id ? 'all team models' : 'all (owner\'s)')),
      h('td', { class: 'num' }, money(k.spend)),
      h('td', {}, k.max_budget === null ? '—' : money(k.max_budget)),
      h('td', {}, dateText(k.expires)),
      h('td', { 'data-testid': 'key-status', class: k.blocked ? 'status-blocked' : 'status-active' }, k.blocked ? 'blocked' : 'active'),
      h('td', {}, actions));
  });

  // The "Why?" panel: POST /access/explain for this key and a model, shown as tables. The
  // server decides (the same functions as a real call); this only lays the answer out.
  async function whyKey(k) {
    await act(async () => {
      const models = await configuredModels();
      const sel = h('select', { name: 'model', id: 'why-model', 'data-testid': 'why-model' },
        models.map((m) => h('option', { value: m }, m)));
      const other = h('input', { type: 'text', id: 'why-other', name: 'other', 'data-testid': 'why-other', placeholder: 'or any name or alias' });
      const out = h('div', { 'data-testid': 'why-answer' });
      const ask = () => act(async () => {
        const model = other.value.trim() || sel.value;
        if (!model) return;
        const v = await api('POST', '/access/explain', { key: k.token, model });
        out.replaceChildren(...whyTables(v));
        out.dataset.model = model;
      });
      const form = h('form', { class: 'grid', 'data-testid': 'why-form' },
        h('label', { class: 'field', for: 'why-model' }, 'Model'), sel,
        h('label', { class: 'field', for: 'why-other' }, 'Or'), other,
        h('div', { class: 'form-actions' },
          h('button', { type: 'button', 'data-testid': 'why-ask', onclick: ask }, 'Explain'),
          h('button', { type: 'button', class: 'secondary', onclick: () => editArea.replaceChildren() }, 'Close')));
      form.addEventListener('submit', (ev) => { ev.preventDefault(); ask(); });
      editArea.replaceChildren(h('div', { class: 'card detail', 'data-testid': 'why-panel' },
        h('h2', {}, `Why? ${k.key_alias || k.key_name}`),
        h('p', { class: 'hint' }, 'Would a call of this model by this key be admitted now, and which level decides.'),
        form, out));
      editArea.scrollIntoView();
      if (models.length) await ask();
    });
  }

  async function editKey(k) {
    await act(async () => {
      const opts = await modelOptions(k.team_id);
      const chooser = modelChooser(opts, k.models);
      const form = h('form', { class: 'grid', 'data-testid': 'edit-key-form' },
        h('label', { class: 'field' }, 'Key'), h('code', {}, k.key_name),
        h('label', { class: 'field', for: 'ek-alias' }, 'Alias'),
        h('input', { type: 'text', id: 'ek-alias', name: 'key_alias', value: k.key_alias || '' }),
        h('label', { class: 'field' }, 'Models'), chooser.el,
        h('label', { class: 'field', for: 'ek-budget' }, 'Max budget ($)'),
        h('input', { type: 'number', id: 'ek-budget', name: 'max_budget', min: 0, step: 'any', value: k.max_budget ?? '' }),
        h('div', { class: 'form-actions' },
          h('button', { type: 'submit', 'data-write': '' }, 'Save'),
          h('button', { type: 'button', class: 'secondary', onclick: () => editArea.replaceChildren() }, 'Cancel')));
      form.addEventListener('submit', (ev) => {
        ev.preventDefault();
        act(async () => {
          const body = { key: k.token, key_alias: form.key_alias.value || null, models: chooser.values() };
          const mb = form.max_budget.value;
          if (String(mb) !== String(k.max_budget ?? '')) body.max_budget = mb === '' ? null : Number(mb);
          await api('POST', '/key/update', body);
          await render();
          flash(`Key ${k.key_name} saved.`, 'info');
        });
      });
      editArea.replaceChildren(h('div', { class: 'card detail' }, h('h2', {}, `Edit key ${k.key_alias || k.key_name}`), form));
      editArea.scrollIntoView();
    });
  }

  let createCard = null;
  if (canWrite()) {
    const teamSel = h('select', { name: 'team_id', id: 'nk-team', 'data-testid': 'key-team' },
      h('option', { value: '' }, '— personal key (no team) —'),
      teams.map((t) => h('option', { value: t.team_id }, (t.team_alias || t.team_id) + (t.organization_id ? '' : ' (no organization)'))));
    const chooserSlot = h('div', { 'data-testid': 'model-slot' });
    let chooser = null;
    let seq = 0;
    const loadChoices = async () => {
      const mine = ++seq;
      const team = teamSel.value;
      chooser = null;
      delete chooserSlot.dataset.teamId;
      chooserSlot.replaceChildren(h('span', { class: 'muted' }, 'Loading model choices…'));
      try {
        const opts = await modelOptions(team);
        if (mine !== seq) return; // a later choice of team is loading
        chooser = modelChooser(opts, []);
        chooserSlot.replaceChildren(chooser.el);
        chooserSlot.dataset.teamId = team;
      } catch (e) {
        if (mine !== seq) return;
        chooser = null;
        chooserSlot.replaceChildren(h('div', { class: 'error' }, e.message));
      }
    };
    teamSel.addEventListener('change', loadChoices);
    const form = h('form', { class: 'grid', 'data-testid': 'create-key-form' },
      h('label', { class: 'field', for: 'nk-alias' }, 'Alias'),
      h('input', { type: 'text', id: 'nk-alias', name: 'key_alias', placeholder: 'e.g. billing-service' }),
      h('label', { class: 'field', for: 'nk-team' }, 'Team'), teamSel,
      h('label', { class: 'field' }, 'Models'), chooserSlot,
      h('label', { class: 'field', for: 'nk-duration' }, 'Expires after'),
      h('input', { type: 'text', id: 'nk-duration', name: 'duration', placeholder: 'e.g. 30d, 12h (empty: never)' }),
      h('label', { class: 'field', for: 'nk-budget' }, 'Max budget ($)'),
      h('input', { type: 'number', id: 'nk-budget', name: 'max_budget', min: 0, step: 'any' }),
      h('div', { class: 'form-actions' }, h('button', { type: 'submit', 'data-write': '', 'data-testid': 'create-key' }, 'Create key')));
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      act(async () => {
        const body = { models: chooser ? chooser.values() : [] };
        if (form.key_alias.value) body.key_alias = form.key_alias.value;
        if (teamSel.value) body.team_id = teamSel.value;
        if (form.duration.value) body.duration = form.duration.value;
        if (form.max_budget.value !== '') body.max_budget = Number(form.max_budget.value);
        const r = await api('POST', '/key/generate', body);
        await render();
        document.getElementById('main').prepend(secretPanel(`New key ${r.key_alias || r.key_name}`, r.key));
      });
    });
    loadChoices();
    createCard = h('div', { class: 'card' }, h('h2', {}, 'Create a key'), form);
  }
  return [
    h('h1', {}, 'Keys'),
    h('div', { class: 'card' },
      h('table', { 'data-testid': 'keys-table' },
        h('thead', {}, h('tr', {}, ['Key', 'Alias', 'Team', 'Models', 'Spend', 'Budget', 'Expires', 'Status', ''].map((x) => h('th', { class: x === 'Spend' ? 'num' : '' }, x)))),
        h('tbody', {}, rows.length ? rows : h('tr', {}, h('td', { colspan: 9, class: 'muted' }, 'No keys yet.'))))),
    editArea, createCard,
  ];
}

// An /access/explain answer as a verdict and three tables (levels, budgets, rate limits).
function whyTables(v) {
  const text = (x) => (x === null || x === undefined ? '—' : String(x));
  const yes = (b) => h('span', { class: b ? 'status-active' : 'status-blocked' }, b ? 'yes' : 'no');
  const table = (testid, head, rows) => h('table', { 'data-testid': testid },
    h('thead', {}, h('tr', {}, head.map((x) => h('th', {}, x)))),
    h('tbody', {}, rows.length ? rows : h('tr', {}, h('td', { colspan: head.length, class: 'muted' }, 'none'))));
  const m = v.model || {};
  const called = m.requested === m.resolved ? m.resolved : `${m.requested} → ${m.resolved}`;
  const verdict = v.allowed
    ? h('p', { 'data-testid': 'why-verdict', class: 'status-active' }, `Allowed: ${called}`)
    : h('p', { 'data-testid': 'why-verdict', class: 'status-blocked' }, `Refused by ${v.refused_by} (${called}): ${v.reason}`);
  const levels = table('why-levels', ['Level', 'Models', 'Callable up to here', 'Allows it'],
    (v.levels || []).map((l) => h('tr', { 'data-level': l.level, class: l.applies ? '' : 'muted' },
      h('td', {}, l.level),
      h('td', {}, l.applies ? pills(l.models) : 'not in this chain'),
      h('td', {}, l.applies ? pills(l.effective, 'nothing') : '—'),
      h('td', {}, l.applies ? yes(l.allows) : '—'))));
  const bind = v.binding_budget || {};
  const budgets = table('why-budgets', ['Budget', 'Spend', 'Max', 'Reserved', 'Remaining', 'Resets'],
    (v.budgets || []).map((b) => h('tr', { 'data-level': b.level },
      h('td', {}, b.level, b.level === bind.level && b.id === bind.id ? h('span', { class: 'pill special' }, 'binds first') : null),
      h('td', {}, money(b.spend)), h('td', {}, money(b.max_budget)), h('td', {}, money(b.reserved)),
      h('td', {}, money(b.remaining)), h('td', {}, b.budget_reset_at ? dateText(b.budget_reset_at) : 'never'))));
  const limits = table('why-limits', ['Rate limit', 'Kind', 'Limit', 'Used', 'Remaining'],
    (v.rate_limits || []).map((l) => h('tr', { 'data-level': l.level, 'data-kind': l.kind },
      h('td', {}, l.level), h('td', {}, l.kind), h('td', {}, text(l.limit)), h('td', {}, text(l.used)), h('td', {}, text(l.remaining)))));
  return [verdict, levels, h('h3', {}, 'Budgets'), budgets, h('h3', {}, 'Rate limits'), limits];
}

// ---------------------------------------------------------------- Model checkboxes (orgs, teams)

function modelBoxes(choices, selected, name) {
  const sel = new Set(selected || []);
  const all = [...new Set([...choices, ...sel])];
  const boxes = all.map((m) => h('input', { type: 'checkbox', value: m, checked: sel.has(m), name }));
  const el = h('div', { class: 'choices', 'data-testid': 'model-boxes' },
    all.map((m, i) => h('label', { class: 'choice' }, boxes[i], h('span', {}, SPECIAL_LABELS[m] || m))),
    h('span', { class: 'hint' }, 'None selected: no limit at this level (the level above still applies).'));
  return { el, values: () => boxes.filter((b) => b.checked).map((b) => b.value) };
}

// ---------------------------------------------------------------- Organizations

async function orgsPage() {
  const orgs = await api('GET', '/organization/list');
  const detail = h('div', {});
  const rows = orgs.map((o) => h('tr', { 'data-testid': 'org-row', 'data-org-alias': o.organization_alias },
    h('td', {}, o.organization_alias),
    h('td', {}, h('code', {}, o.organization_id)),
    h('td', {}, pills(o.models)),
    h('td', { class: 'num' }, money(o.spend)),
    h('td', { class: 'num' }, money(o.litellm_budget_table && o.litellm_budget_table.max_budget)),
    h('td', { class: 'num' }, (o.members || []).length),
    h('td', { class: 'num' }, (o.teams || []).length),
    h('td', {}, h('button', { type: 'button', class: 'secondary small', 'data-testid': 'open-org', onclick: () => openOrg(o) }, isOrgAdmin(o) ? 'Manage' : 'View'))));

  async function openOrg(o) {
    const admin = isOrgAdmin(o);
    const parts = [h('h2', {}, `Organization ${o.organization_alias}`)];
    if (isProxyAdmin()) {
      const boxes = modelBoxes(await configuredModels(), o.models, 'org-models');
      const budget = h('input', { type: 'number', min: 0, step: 'any', name: 'max_budget', value: o.litellm_budget_table?.max_budget ?? '' });
      const alias = h('input', { type: 'text', name: 'organization_alias', value: o.organization_alias });
      const form = h('form', { class: 'grid', 'data-testid': 'edit-org-form' },
        h('label', { class: 'field' }, 'Alias'), alias,
        h('label', { class: 'field' }, 'Models'), boxes.el,
        h('label', { class: 'field' }, 'Max budget ($)'), budget,
        h('div', { class: 'form-actions' },
          h('button', { type: 'submit', 'data-write': '' }, 'Save'),
          wbtn('Delete organization', () => act(async () => {
            if (!confirm(`Delete ${o.organization_alias} with all its teams and their keys?`)) return;
            await api('POST', '/organization/delete', { organization_ids: [o.organization_id] });
            await render();
          }), 'danger')));
      form.addEventListener('submit', (ev) => {
        ev.preventDefault();
        act(async () => {
          const body = { organization_id: o.organization_id, organization_alias: alias.value, models: boxes.values() };
          if (budget.value !== '') body.max_budget = Number(budget.value);
          await api('PATCH', '/organization/update', body);
          await render();
          flash(`Organization ${alias.value} saved.`, 'info');
        });
      });
      parts.push(form);
    } else if (admin) {
      const alias = h('input', { type: 'text', name: 'organization_alias', value: o.organization_alias });
      const form = h('form', { class: 'grid' },
        h('label', { class: 'field' }, 'Alias'), alias,
        h('label', { class: 'field' }, 'Models'), h('div', {}, pills(o.models), h('div', { class: 'hint' }, 'Only a proxy admin changes models and budget.')),
        h('div', { class: 'form-actions' }, h('button', { type: 'submit', 'data-write': '' }, 'Save')));
      form.addEventListener('submit', (ev) => {
        ev.preventDefault();
        act(async () => { await api('PATCH', '/organization/update', { organization_id: o.organization_id, organization_alias: alias.value }); await render(); });
      });
      parts.push(form);
    } else {
      parts.push(h('p', {}, 'Models: ', pills(o.models)),
        h('p', {}, 'Max budget: ', money(o.litellm_budget_table && o.litellm_budget_table.max_budget)));
    }
    const memberRows = (o.members || []).map((m) => {
      const roleCell = admin
        ? h('select', {
          'data-write': '', onchange: (ev) => act(async () => {
            await api('PATCH', '/organization/member_update', { organization_id: o.organization_id, user_id: m.user_id, role: ev.target.value });
          }, `Role of ${m.user_email || m.user_id} changed to ${ev.target.value}.`),
        }, ORG_ROLES.map((r) => h('option', { value: r, selected: r === m.user_role }, r)))
        : m.user_role;
      return h('tr', { 'data-testid': 'org-member-row' },
        h('td', {}, m.user_id), h('td', {}, m.user_email || '—'), h('td', {}, roleCell), h('td', { class: 'num' }, money(m.spend)),
        h('td', {}, admin ? wbtn('Remove', () => act(async () => {
          await api('DELETE', '/organization/member_delete', { organization_id: o.organization_id, user_id: m.user_id });
          await render();
        }), 'danger small') : null));
    });
    parts.push(h('h2', {}, 'Members'), h('table', {},
      h('thead', {}, h('tr', {}, ['User', 'Email', 'Role', 'Spend', ''].map((x) => h('th', {}, x)))),
      h('tbody', {}, memberRows.length ? memberRows : h('tr', {}, h('td', { colspan: 5, class: 'muted' }, 'No members.')))));
    if (admin) {
      const who = h('input', { type: 'text', name: 'member', placeholder: 'email or user id', required: true });
      const role = h('select', { name: 'role' }, ORG_ROLES.map((r) => h('option', { value: r, selected: r === 'internal_user' }, r)));
      const form = h('form', { class: 'toolbar', 'data-testid': 'add-org-member' }, who, role, h('button', { type: 'submit', 'data-write': '' }, 'Add member'));
      form.addEventListener('submit', (ev) => {
        ev.preventDefault();
        const v = who.value.trim();
        const member = v.includes('@') ? { user_email: v, role: role.value } : { user_id: v, role: role.value };
        act(async () => { await api('POST', '/organization/member_add', { organization_id: o.organization_id, member }); await render(); });
      });
      parts.push(form);
    }
    parts.push(h('h2', {}, 'Teams'), h('div', {}, (o.teams || []).length ? o.teams.map((t) => h('span', { class: 'pill' }, t.team_alias || t.team_id)) : h('span', { class: 'muted' }, 'No teams.')));
    detail.replaceChildren(h('div', { class: 'card detail', 'data-testid': 'org-detail' }, parts));
    detail.scrollIntoView();
  }

  let createCard = null;
  if (isProxyAdmin()) {
    const boxes = modelBoxes(await configuredModels(), [], 'new-org-models');
    const form = h('form', { class: 'grid', 'data-testid': 'create-org-form' },
      h('label', { class: 'field', for: 'no-alias' }, 'Name'),
      h('input', { type: 'text', id: 'no-alias', name: 'organization_alias', required: true }),
      h('label', { class: 'field' }, 'Models'), boxes.el,
      h('label', { class: 'field', for: 'no-budget' }, 'Max budget ($)'),
      h('input', { type: 'number', id: 'no-budget', name: 'max_budget', min: 0, step: 'any' }),
      h('div', { class: 'form-actions' }, h('button', { type: 'submit', 'data-write': '', 'data-testid': 'create-org' }, 'Create organization')));
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      act(async () => {
        const body = { organization_alias: form.organization_alias.value, models: boxes.values() };
        if (form.max_budget.value !== '') body.max_budget = Number(form.max_budget.value);
        const r = await api('POST', '/organization/new', body);
        await render();
        flash(`Organization ${r.organization_alias} created.`, 'info');
      });
    });
    createCard = h('div', { class: 'card' }, h('h2', {}, 'Create an organization'), form);
  }
  return [
    h('h1', {}, 'Organizations'),
    h('div', { class: 'card' }, h('table', { 'data-testid': 'orgs-table' },
      h('thead', {}, h('tr', {}, ['Name', 'ID', 'Models', 'Spend', 'Budget', 'Members', 'Teams', ''].map((x) => h('th', {}, x)))),
      h('tbody', {}, rows.length ? rows : h('tr', {}, h('td', { colspan: 8, class: 'muted' }, 'No organizations you can see.'))))),
    detail, createCard,
  ];
}

// ---------------------------------------------------------------- Teams

async function teamsPage() {
  const [teams, orgs] = await Promise.all([api('GET', '/team/list'), api('GET', '/organization/list')]);
  const orgName = (id) => {
    const o = orgs.find((x) => x.organization_id === id);
    return o ? o.organization_alias : id;
  };
  const detail = h('div', {});
  const orgModels = async (orgId) => {
    const o = orgs.find((x) => x.organization_id === orgId);
    if (o && o.models.length && !o.models.includes('all-proxy-models')) return o.models;
    return configuredModels();
  };
  const rows = teams.map((t) => {
    const admin = isTeamAdmin(t, orgs);
    return h('tr', { 'data-testid': 'team-row', 'data-team-alias': t.team_alias || '' },
      h('td', {}, t.team_alias || '—'),
      h('td', {}, h('code', {}, t.team_id)),
      h('td', {}, t.organization_id ? orgName(t.organization_id) : h('span', { class: 'muted' }, 'none')),
      h('td', {}, pills(t.models, t.organization_id ? 'all org models' : 'all (no limit)')),
      h('td', { class: 'num' }, (t.members_with_roles || []).length),
      h('td', { class: 'num' }, money(t.spend)),
      h('td', { class: t.blocked ? 'status-blocked' : 'status-active' }, t.blocked ? 'blocked' : 'active'),
      h('td', {}, h('div', { class: 'actions' },
        h('button', { type: 'button', class: 'secondary small', 'data-testid': 'open-team', onclick: () => openTeam(t) }, admin ? 'Manage' : 'View'),
        admin ? (t.blocked
          ? wbtn('Unblock', () => act(async () => { await api('POST', '/team/unblock', { team_id: t.team_id }); await render(); }), 'secondary small', 'unblock-team')
          : wbtn('Block', () => act(async () => { await api('POST', '/team/block', { team_id: t.team_id }); await render(); }), 'secondary small', 'block-team')) : null)));
  });

  async function openTeam(t) {
    const admin = isTeamAdmin(t, orgs);
    const org = orgs.find((o) => o.organization_id === t.organization_id);
    const manager = isProxyAdmin() || (org && isOrgAdmin(org));
    const parts = [h('h2', {}, `Team ${t.team_alias || t.team_id}`)];
    if (manager) {
      const boxes = modelBoxes(await orgModels(t.organization_id), t.models, 'team-models');
      const alias = h('input', { type: 'text', name: 'team_alias', value: t.team_alias || '' });
      const budget = h('input', { type: 'number', min: 0, step: 'any', name: 'max_budget', value: t.max_budget ?? '' });
      const form = h('form', { class: 'grid', 'data-testid': 'edit-team-form' },
        h('label', { class: 'field' }, 'Alias'), alias,
        h('label', { class: 'field' }, 'Models'), boxes.el,
        h('label', { class: 'field' }, 'Max budget ($)'), budget,
        h('div', { class: 'form-actions' },
          h('button', { type: 'submit', 'data-write': '' }, 'Save'),
          wbtn('Delete team', () => act(async () => {
            if (!confirm(`Delete team ${t.team_alias || t.team_id} and its keys?`)) return;
            await api('POST', '/team/delete', { team_ids: [t.team_id] });
            await render();
          }), 'danger')));
      form.addEventListener('submit', (ev) => {
        ev.preventDefault();
        act(async () => {
          const body = { team_id: t.team_id, team_alias: alias.value, models: boxes.values() };
          if (String(budget.value) !== String(t.max_budget ?? '')) body.max_budget = budget.value === '' ? null : Number(budget.value);
          await api('POST', '/team/update', body);
          await render();
          flash(`Team ${alias.value || t.team_id} saved.`, 'info');
        });
      });
      parts.push(form);
    } else {
      parts.push(h('p', {}, 'Models: ', pills(t.models)));
    }
    const memberRows = (t.members_with_roles || []).map((m) => h('tr', { 'data-testid': 'team-member-row' },
      h('td', {}, m.user_id), h('td', {}, m.user_email || '—'),
      h('td', {}, admin ? h('select', {
        'data-write': '', onchange: (ev) => act(async () => {
          await api('POST', '/team/member_update', { team_id: t.team_id, user_id: m.user_id, role: ev.target.value });
        }, `Role of ${m.user_email || m.user_id} changed to ${ev.target.value}.`),
      }, TEAM_ROLES.map((r) => h('option', { value: r, selected: r === m.role }, r))) : m.role),
      h('td', {}, admin ? wbtn('Remove', () => act(async () => {
        await api('POST', '/team/member_delete', { team_id: t.team_id, user_id: m.user_id });
        await render();
      }), 'danger small') : null)));
    parts.push(h('h2', {}, 'Members'), h('table', {},
      h('thead', {}, h('tr', {}, ['User', 'Email', 'Role', ''].map((x) => h('th', {}, x)))),
      h('tbody', {}, memberRows.length ? memberRows : h('tr', {}, h('td', { colspan: 4, class: 'muted' }, 'No members.')))));
    if (admin) {
      const who = h('input', { type: 'text', name: 'member', placeholder: 'email or user id', required: true });
      const role = h('select', { name: 'role' }, TEAM_ROLES.map((r) => h('option', { value: r }, r)));
      const form = h('form', { class: 'toolbar', 'data-testid': 'add-team-member' }, who, role, h('button', { type: 'submit', 'data-write': '' }, 'Add member'));
      form.addEventListener('submit', (ev) => {
        ev.preventDefault();
        const v = who.value.trim();
        const member = v.includes('@') ? { user_email: v, role: role.value } : { user_id: v, role: role.value };
        act(async () => { await api('POST', '/team/member_add', { team_id: t.team_id, member }); await render(); });
      });
      parts.push(form);
    }
    detail.replaceChildren(h('div', { class: 'card detail', 'data-testid': 'team-detail' }, parts));
    detail.scrollIntoView();
  }

  let createCard = null;
  const adminOrgs = orgs.filter(isOrgAdmin);
  if (canWrite() && (isProxyAdmin() || adminOrgs.length)) {
    const orgSel = h('select', { name: 'organization_id', id: 'nt-org', 'data-testid': 'team-org' },
      isProxyAdmin() ? h('option', { value: '' }, '— no organization —') : null,
      adminOrgs.map((o) => h('option', { value: o.organization_id }, o.organization_alias)));
    const slot = h('div', {});
    let boxes = null;
    const loadBoxes = async () => {
      boxes = modelBoxes(await orgModels(orgSel.value), [], 'new-team-models');
      slot.replaceChildren(boxes.el);
    };
    orgSel.addEventListener('change', () => act(loadBoxes));
    const form = h('form', { class: 'grid', 'data-testid': 'create-team-form' },
      h('label', { class: 'field', for: 'nt-alias' }, 'Name'),
      h('input', { type: 'text', id: 'nt-alias', name: 'team_alias', required: true }),
      h('label', { class: 'field', for: 'nt-org' }, 'Organization'), orgSel,
      h('label', { class: 'field' }, 'Models'), slot,
      h('label', { class: 'field', for: 'nt-budget' }, 'Max budget ($)'),
      h('input', { type: 'number', id: 'nt-budget', name: 'max_budget', min: 0, step: 'any' }),
      h('div', { class: 'form-actions' }, h('button', { type: 'submit', 'data-write': '', 'data-testid': 'create-team' }, 'Create team')));
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      act(async () => {
        const body = { team_alias: form.team_alias.value, models: boxes ? boxes.values() : [] };
        if (orgSel.value) body.organization_id = orgSel.value;
        if (form.max_budget.value !== '') body.max_budget = Number(form.max_budget.value);
        const r = await api('POST', '/team/new', body);
        await render();
        flash(`Team ${r.team_alias || r.team_id} created.`, 'info');
      });
    });
    await loadBoxes();
    createCard = h('div', { class: 'card' }, h('h2', {}, 'Create a team'), form);
  }
  return [
    h('h1', {}, 'Teams'),
    h('div', { class: 'card' }, h('table', { 'data-testid': 'teams-table' },
      h('thead', {}, h('tr', {}, ['Name', 'ID', 'Organization', 'Models', 'Members', 'Spend', 'Status', ''].map((x) => h('th', {}, x)))),
      h('tbody', {}, rows.length ? rows : h('tr', {}, h('td', { colspan: 8, class: 'muted' }, 'No teams you can see.'))))),
    detail, createCard,
  ];
}

// ---------------------------------------------------------------- Users

async function usersPage() {
  if (!me().reads_all) {
    return [h('h1', {}, 'Users'), h('div', { class: 'card' }, 'Only proxy admins and proxy admin viewers can list users. ',
      'You are ', h('code', {}, me().user_id), ' (', me().user_role, ').')];
  }
  const r = await api('GET', '/user/list?page_size=100');
  const rows = r.users.map((u) => h('tr', { 'data-testid': 'user-row', 'data-user-id': u.user_id },
    h('td', {}, h('code', {}, u.user_id)),
    h('td', {}, u.user_email || '—'),
    h('td', {}, isProxyAdmin()
      ? h('select', {
        'data-write': '', 'data-testid': 'user-role', onchange: (ev) => act(async () => {
          await api('POST', '/user/update', { user_id: u.user_id, user_role: ev.target.value });
        }, `Role of ${u.user_email || u.user_id} changed to ${ev.target.value}.`),
      }, USER_ROLES.map((x) => h('option', { value: x, selected: x === u.user_role }, x)))
      : u.user_role),
    h('td', {}, (u.teams || []).length),
    h('td', { class: 'num' }, money(u.spend)),
    h('td', {}, isProxyAdmin() ? h('div', { class: 'actions' },
      wbtn('Set password', () => act(async () => {
        const pw = prompt(`New password for ${u.user_email || u.user_id}`);
        if (!pw) return;
        await api('POST', '/user/update', { user_id: u.user_id, password: pw });
      }, 'Password set.'), 'secondary small'),
      wbtn('Delete', () => act(async () => {
        if (!confirm(`Delete user ${u.user_email || u.user_id}?`)) return;
        await api('POST', '/user/delete', { user_ids: [u.user_id] });
        await render();
      }), 'danger small')) : null)));
  let createCard = null;
  if (isProxyAdmin()) {
    const form = h('form', { class: 'grid', 'data-testid': 'create-user-form' },
      h('label', { class: 'field', for: 'nu-email' }, 'Email'),
      h('input', { type: 'email', id: 'nu-email', name: 'user_email', required: true }),
      h('label', { class: 'field', for: 'nu-id' }, 'User id'),
      h('input', { type: 'text', id: 'nu-id', name: 'user_id', placeholder: 'optional (a uuid is made)' }),
      h('label', { class: 'field', for: 'nu-role' }, 'Role'),
      h('select', { id: 'nu-role', name: 'user_role' }, USER_ROLES.map((x) => h('option', { value: x, selected: x === 'internal_user' }, x))),
      h('label', { class: 'field', for: 'nu-pw' }, 'Password'),
      h('input', { type: 'password', id: 'nu-pw', name: 'password', autocomplete: 'new-password', placeholder: 'optional: lets them log in here' }),
      h('div', { class: 'form-actions' }, h('button', { type: 'submit', 'data-write': '', 'data-testid': 'create-user' }, 'Create user')));
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      act(async () => {
        const body = { user_email: form.user_email.value, user_role: form.user_role.value, auto_create_key: false };
        if (form.user_id.value) body.user_id = form.user_id.value;
        if (form.password.value) body.password = form.password.value;
        await api('POST', '/user/new', body);
        await render();
        flash(`User ${body.user_email} created.`, 'info');
      });
    });
    createCard = h('div', { class: 'card' }, h('h2', {}, 'Create a user'), form);
  }
  return [
    h('h1', {}, 'Users'),
    h('div', { class: 'card' }, h('table', { 'data-testid': 'users-table' },
      h('thead', {}, h('tr', {}, ['User id', 'Email', 'Role', 'Teams', 'Spend', ''].map((x) => h('th', {}, x)))),
      h('tbody', {}, rows))),
    createCard,
  ];
}

// ---------------------------------------------------------------- Models
//
// Config models and models stored in the database (POST /model/new, /model/update,
// /model/delete; proxy admins). Secrets are never sent back by the API: the key field is
// write-only (left empty on edit, the stored one is kept).

async function modelsPage() {
  const r = await api('GET', '/model/info');
  const admin = isProxyAdmin();
  const form = admin ? h('form', { class: 'grid', 'data-testid': 'model-form' },
    h('input', { type: 'hidden', name: 'model_id' }),
    h('label', { class: 'field', for: 'nm-name' }, 'Model name'),
    h('input', { type: 'text', id: 'nm-name', name: 'model_name', required: true, placeholder: 'what callers ask for' }),
    h('label', { class: 'field', for: 'nm-model' }, 'Provider model'),
    h('input', { type: 'text', id: 'nm-model', name: 'model', required: true, placeholder: 'provider/name, e.g. openai/gpt-4o' }),
    h('label', { class: 'field', for: 'nm-base' }, 'API base'),
    h('input', { type: 'text', id: 'nm-base', name: 'api_base', placeholder: 'optional (the provider default)' }),
    h('label', { class: 'field', for: 'nm-key' }, 'API key'),
    h('input', { type: 'password', id: 'nm-key', name: 'api_key', autocomplete: 'off', placeholder: 'stored encrypted, never shown' }),
    h('label', { class: 'field', for: 'nm-team' }, 'Team id'),
    h('input', { type: 'text', id: 'nm-team', name: 'team_id', placeholder: 'optional: only this team may call it' }),
    h('label', { class: 'field', for: 'nm-rpm' }, 'RPM'),
    h('input', { type: 'number', id: 'nm-rpm', name: 'rpm', min: '0', placeholder: 'optional' }),
    h('div', { class: 'form-actions' },
      h('button', { type: 'submit', 'data-write': '', 'data-testid': 'save-model' }, 'Add model'))) : null;
  const edit = (d) => {
    form.model_id.value = d.model_info.id;
    form.model_name.value = d.model_info.team_public_model_name || d.model_name;
    form.model.value = d.litellm_params.model || '';
    form.api_base.value = d.litellm_params.api_base || '';
    form.api_key.value = '';
    form.api_key.required = false;
    form.team_id.value = d.model_info.team_id || '';
    form.team_id.disabled = true;
    form.rpm.value = d.litellm_params.rpm ?? '';
    form.querySelector('[data-testid=save-model]').textContent = 'Save model';
    form.scrollIntoView();
  };
  const rows = (r.data || []).map((d) => {
    const info = d.model_info || {};
    const db = info.db_model === true;
    return h('tr', { 'data-testid': 'model-row', 'data-model-id': info.id },
      h('td', {}, h('code', {}, info.team_public_model_name || d.model_name)),
      h('td', {}, h('code', {}, info.id)),
      h('td', {}, d.litellm_params.model),
      h('td', {}, info.team_id ? h('code', {}, info.team_id) : h('span', { class: 'muted' }, 'all')),
      h('td', {}, db ? 'database' : 'config'),
      h('td', {}, info.litegate_unusable ? h('span', { class: 'error', 'data-testid': 'model-unusable' }, info.litegate_unusable) : ''),
      h('td', {}, admin && db ? h('div', { class: 'actions' },
        wbtn('Edit', () => edit(d), 'secondary small', 'edit-model'),
        wbtn('Delete', () => act(async () => {
          if (!confirm(`Delete model ${d.model_name} (${info.id})?`)) return;
          await api('POST', '/model/delete', { id: info.id });
          state.models = null;
          await render();
          flash(`Model ${info.id} deleted.`, 'info');
        }), 'danger small', 'delete-model')) : null));
  });
  if (form) {
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      act(async () => {
        const params = { model: form.model.value };
        if (form.api_base.value) params.api_base = form.api_base.value;
        if (form.api_key.value) params.api_key = form.api_key.value;
        if (form.rpm.value !== '') params.rpm = Number(form.rpm.value);
        const name = form.model_name.value;
        if (form.model_id.value) {
          if (form.rpm.value === '') params.rpm = null;
          await api('POST', '/model/update', { model_name: name, litellm_params: params, model_info: { id: form.model_id.value } });
        } else {
          const info = form.team_id.value ? { team_id: form.team_id.value } : {};
          await api('POST', '/model/new', { model_name: name, litellm_params: params, model_info: info });
        }
        state.models = null;
        await render();
        flash(`Model ${name} saved.`, 'info');
      });
    });
  }
  return [
    h('h1', {}, 'Models'),
    h('div', { class: 'card' }, h('table', { 'data-testid': 'models-table' },
      h('thead', {}, h('tr', {}, ['Name', 'Id', 'Provider model', 'Team', 'Source', 'Status', ''].map((x) => h('th', {}, x)))),
      h('tbody', {}, rows))),
    form ? h('div', { class: 'card' }, h('h2', {}, 'Add or edit a model'), form) : null,
  ];
}

// ---------------------------------------------------------------- Usage

async function usagePage() {
  const params = new URLSearchParams(location.hash.split('?')[1] || '');
  const today = new Date().toISOString().slice(0, 10);
  const monthAgo = new Date(Date.now() - 29 * 86400e3).toISOString().slice(0, 10);
  const start = params.get('start') || monthAgo;
  const end = params.get('end') || today;
  const by = ['key', 'team', 'org'].includes(params.get('by')) ? params.get('by') : 'key';
  const [logs, keys, teams, orgs] = await Promise.all([
    api('GET', `/spend/logs?start_date=${start}&end_date=${end}&limit=10000`),
    allKeys().catch(() => []),
    api('GET', '/team/list').catch(() => []),
    api('GET', '/organization/list').catch(() => []),
  ]);
  const label = {
    key: (tok) => {
      const k = keys.find((x) => x.token === tok);
      if (k) return k.key_alias || k.key_name;
      // Spend is logged by token; a regenerated or deleted key's old token names no key now.
      return tok ? `regenerated or deleted key (token ${tok.slice(0, 8)}…)` : '(none)';
    },
    team: (id) => { const t = teams.find((x) => x.team_id === id); return t ? (t.team_alias || t.team_id) : (id || '(no team)'); },
    org: (id) => { const o = orgs.find((x) => x.organization_id === id); return o ? o.organization_alias : (id || '(no organization)'); },
  }[by];
  const field = { key: 'api_key', team: 'team_id', org: 'organization_id' }[by];
  const totals = new Map();
  const days = new Map();
  let sum = 0;
  for (const row of logs) {
    const g = row[field] || '';
    const day = (row.startTime || '').slice(0, 10);
    totals.set(g, (totals.get(g) || { spend: 0, calls: 0, tokens: 0 }));
    const t = totals.get(g);
    t.spend += row.spend; t.calls += 1; t.tokens += row.total_tokens;
    days.set(day, (days.get(day) || 0) + row.spend);
    sum += row.spend;
  }
  const max = Math.max(0, ...[...totals.values()].map((t) => t.spend));
  const bar = (v, m) => { const d = h('div', { class: 'bar' }); d.style.width = (m > 0 ? (100 * v) / m : 0) + '%'; return d; };
  const form = h('form', { class: 'toolbar', 'data-testid': 'usage-filter' },
    h('label', {}, 'From ', h('input', { type: 'date', name: 'start', value: start })),
    h('label', {}, 'to ', h('input', { type: 'date', name: 'end', value: end })),
    h('label', {}, 'by ', h('select', { name: 'by' }, ['key', 'team', 'org'].map((x) => h('option', { value: x, selected: x === by }, x)))),
    h('button', { type: 'submit' }, 'Show'));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    location.hash = `#/usage?start=${form.start.value}&end=${form.end.value}&by=${form.by.value}`;
  });
  const sorted = [...totals.entries()].sort((a, b) => b[1].spend - a[1].spend);
  const dayRows = [...days.entries()].sort();
  const dayMax = Math.max(0, ...days.values());
  return [
    h('h1', {}, 'Usage'), form,
    h('div', { class: 'card' },
      h('h2', {}, `Spend by ${by}: ${money(sum)} in ${logs.length} calls`),
      h('table', { 'data-testid': 'usage-table' },
        h('thead', {}, h('tr', {}, [by, 'Calls', 'Tokens', 'Spend', ''].map((x) => h('th', { class: ['Calls', 'Tokens', 'Spend'].includes(x) ? 'num' : '' }, x)))),
        h('tbody', {}, sorted.length ? sorted.map(([g, t]) => h('tr', { 'data-testid': 'usage-row' },
          h('td', {}, label(g)), h('td', { class: 'num' }, t.calls), h('td', { class: 'num' }, t.tokens),
          h('td', { class: 'num' }, money(t.spend)), h('td', { class: 'barcell' }, bar(t.spend, max))))
          : h('tr', {}, h('td', { colspan: 5, class: 'muted' }, 'No calls in this period.'))))),
    h('div', { class: 'card' }, h('h2', {}, 'Spend per day'),
      h('table', {}, h('tbody', {}, dayRows.map(([d, v]) => h('tr', {},
        h('td', {}, d), h('td', { class: 'num' }, money(v)), h('td', { class: 'barcell' }, bar(v, dayMax))))))),
  ];
}

// ------------------------------------------------------------------------------------------
// Start

async function start() {
  try {
    state.me = await api('GET', '/ui/me');
  } catch (e) {
    if (e.status !== 401) showLogin(e.message);
    return;
  }
  const m = state.me;
  state.wasIn = true;
  document.getElementById('top').hidden = false;
  document.getElementById('whoami').textContent =
    `${m.is_master ? 'master key' : (m.user_email || m.user_id)} · ${m.user_role}`;
  document.body.dataset.role = m.user_role;
  await render();
}

document.addEventListener('DOMContentLoaded', () => {
  document.getElementById('logout').addEventListener('click', async () => {
    try { await api('POST', '/ui/logout'); } catch (_) { /* gone already */ }
    state.me = null;
    state.models = null;
    state.wasIn = false;
    showLogin();
  });
  window.addEventListener('hashchange', () => { clearFlash(); render(); });
  start();
});
