// The relay's operator console. Plain browser JavaScript, no build step. Everything it shows
// comes from the relay's own admin API with the credential the operator typed in, which is kept
// in sessionStorage (this tab only) and sent as a bearer header, never in a URL. Every value
// from the API is put on the page as text (textContent), never as HTML: user ids are untrusted.
/* global uPlot */
'use strict';

(function () {
  const TOKEN_KEY = 'relay-admin-credential';
  const $ = (sel) => document.querySelector(sel);

  /** Creates an element; children are nodes or strings (as text). */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') node.className = v;
      else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children) if (c !== null && c !== undefined) node.append(c instanceof Node ? c : String(c));
    return node;
  }

  class ApiError extends Error {
    constructor(status, message, code) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  async function api(method, path, body, accept) {
    const headers = { authorization: `Bearer ${sessionStorage.getItem(TOKEN_KEY) || ''}` };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (accept) headers.accept = accept;
    let res;
    try {
      res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: 'no-store' });
    } catch {
      throw new ApiError(0, 'The relay cannot be reached. Check that it is running and try again.', 'network');
    }
    if (accept === 'text/csv' && res.ok) return { text: await res.text(), next: res.headers.get('relay-next-cursor') };
    let data = null;
    try {
      data = await res.json();
    } catch {
      data = null;
    }
    if (!res.ok) {
      const err = data && data.error ? data.error : { message: `HTTP ${res.status}`, code: 'http_error' };
      if (res.status === 401) signOut('Your session has ended or the credential was refused. Sign in again.');
      throw new ApiError(res.status, err.message, err.code);
    }
    return data;
  }

  // ---- formatting -------------------------------------------------------------------------

  /** USD decimal strings (nine decimals, exact) shown to the cent, or to 4 significant digits below a cent. */
  function usd(s) {
    const n = Number(s);
    if (!Number.isFinite(n)) return s;
    if (n === 0) return '$0.00';
    if (Math.abs(n) < 0.01) return `$${n.toPrecision(2)}`;
    // Realtime spend is often cents: below $10 show up to four decimals rather than round them away.
    return `$${n.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: Math.abs(n) < 10 ? 4 : 2 })}`;
  }
  function duration(ms) {
    if (ms === null || ms === undefined) return '—';
    const s = Math.floor(ms / 1000);
    const h = Math.floor(s / 3600);
    const m = Math.floor((s % 3600) / 60);
    const sec = String(s % 60).padStart(2, '0');
    return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${sec}` : `${m}:${sec}`;
  }
  const percent = (p) => `${p < 10 ? p.toFixed(1) : p.toFixed(0)} %`;
  const when = (iso) => (iso ? new Date(iso).toISOString().replace('T', ' ').slice(0, 19) : '—');
  const dateOf = (unixSeconds) => (unixSeconds ? new Date(unixSeconds * 1000).toISOString().slice(0, 10) : '—');
  const isoDay = (d) => d.toISOString().slice(0, 10);

  function showBanner(err) {
    const b = $('#banner');
    b.textContent = err ? (err instanceof ApiError || err instanceof Error ? err.message : String(err)) : '';
    b.hidden = !err;
  }
  /** Runs an action, showing its error in the banner rather than losing it. */
  async function guarded(fn) {
    try {
      showBanner(null);
      await fn();
    } catch (err) {
      showBanner(err);
    }
  }
  function fill(tbody, rows) {
    tbody.replaceChildren(...rows);
  }
  function budgetBar(pct, label) {
    const p = Math.max(0, Math.min(100, pct));
    const cls = pct >= 100 ? 'over' : pct >= 80 ? 'near' : 'ok';
    const fillBar = el('span');
    // Through CSSOM, not a style attribute: the page's CSP allows no inline styles.
    fillBar.style.width = `${p.toFixed(1)}%`;
    return el('div', { class: `budget ${cls}`, title: label }, el('div', { class: 'bar' }, fillBar), el('small', {}, label));
  }

  // ---- sign in ------------------------------------------------------------------------------

  async function signIn(token) {
    sessionStorage.setItem(TOKEN_KEY, token);
    try {
      await api('GET', '/admin/keys?limit=1');
    } catch (err) {
      sessionStorage.removeItem(TOKEN_KEY);
      throw err.status === 403 ? new Error('This credential works but lacks the admin scope.') : err.status === 401 ? new Error('That token or key was not accepted.') : err;
    }
  }

  function signOut(message) {
    sessionStorage.removeItem(TOKEN_KEY);
    stopLive();
    stopApprovals();
    $('#app').hidden = true;
    $('#sign-out').hidden = true;
    $('#signin').hidden = false;
    const e = $('#signin-error');
    e.textContent = message || '';
    e.hidden = !message;
  }

  function showApp() {
    $('#signin').hidden = true;
    $('#app').hidden = false;
    $('#sign-out').hidden = false;
    $('#token').value = '';
    selectTab(location.hash.slice(1) || 'spend');
  }

  // ---- tabs ---------------------------------------------------------------------------------

  const loaders = {};
  function selectTab(name) {
    if (!loaders[name]) name = 'spend';
    for (const b of document.querySelectorAll('#tabs [data-tab]')) b.setAttribute('aria-selected', String(b.dataset.tab === name));
    for (const s of document.querySelectorAll('.tab')) s.hidden = s.id !== `tab-${name}`;
    if (location.hash.slice(1) !== name) history.replaceState(null, '', `#${name}`);
    if (name !== 'live') stopLive();
    if (name !== 'approvals') stopApprovals();
    void guarded(loaders[name]);
  }

  // ---- spend over time ----------------------------------------------------------------------

  const COLORS = ['#2563eb', '#16a34a', '#f59e0b', '#dc2626', '#7c3aed', '#0891b2', '#db2777', '#65a30d', '#ea580c', '#475569'];
  let interval = 'day';
  let chart = null;

  /** Buckets (UTC) covering the chosen interval: 30 days, 12 weeks (Mondays) or 12 months. */
  function buckets(kind) {
    const now = new Date();
    const today = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate());
    const out = [];
    if (kind === 'day') for (let i = 29; i >= 0; i--) out.push(today - i * 86400000);
    if (kind === 'week') {
      const monday = today - ((new Date(today).getUTCDay() + 6) % 7) * 86400000;
      for (let i = 11; i >= 0; i--) out.push(monday - i * 7 * 86400000);
    }
    if (kind === 'month') for (let i = 11; i >= 0; i--) out.push(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - i, 1));
    return out;
  }
  function bucketOf(dayMs, starts) {
    let idx = -1;
    for (let i = 0; i < starts.length; i++) if (starts[i] <= dayMs) idx = i;
    return idx;
  }

  loaders.spend = async function loadSpend() {
    const starts = buckets(interval);
    const from = isoDay(new Date(starts[0]));
    $('#spend-range').textContent = `${interval === 'day' ? 'Last 30 days' : interval === 'week' ? 'Last 12 weeks' : 'Last 12 months'} (UTC), from ${from}.`;
    const byModel = await api('GET', `/admin/usage?group_by=model&from=${from}`);
    const models = byModel.data.filter((r) => r.key !== null && r.responses > 0).sort((a, b) => Number(b.cost_usd) - Number(a.cost_usd));
    fill(
      $('#spend-table tbody'),
      models.map((m) => el('tr', {}, el('td', {}, m.key), el('td', { class: 'num' }, String(m.responses)), el('td', { class: 'num' }, usd(m.cost_usd)))),
    );
    const series = [];
    for (const m of models.slice(0, COLORS.length)) {
      const days = await api('GET', `/admin/usage?group_by=day&from=${from}&model=${encodeURIComponent(m.key)}`);
      const values = starts.map(() => 0);
      for (const d of days.data) {
        const i = bucketOf(Date.parse(`${d.key}T00:00:00Z`), starts);
        if (i >= 0) values[i] += Number(d.cost_usd);
      }
      series.push({ model: m.key, values });
    }
    drawSpend(starts, series);
  };

  function drawSpend(starts, series) {
    const box = $('#spend-chart');
    if (chart) {
      chart.destroy();
      chart = null;
    }
    box.replaceChildren();
    const empty = series.length === 0;
    $('#spend-empty').hidden = !empty;
    box.hidden = empty;
    box.dataset.series = String(series.length);
    box.dataset.buckets = String(starts.length);
    box.dataset.total = series.reduce((n, s) => n + s.values.reduce((a, b) => a + b, 0), 0).toFixed(9);
    if (empty || typeof uPlot !== 'function') return;
    // Stacked: each series is drawn at its running sum, the tallest first, so each band shows one model.
    // A model with nothing in a bucket draws no bar there (null), rather than a zero-height sliver.
    const stacked = [];
    let acc = starts.map(() => 0);
    for (const s of series) {
      acc = acc.map((v, i) => v + s.values[i]);
      stacked.push(acc.map((v, i) => (s.values[i] > 0 ? v : null)));
    }
    const order = series.map((_, i) => i).reverse();
    const fmt = interval === 'month' ? (t) => new Date(t * 1000).toISOString().slice(0, 7) : (t) => new Date(t * 1000).toISOString().slice(5, 10);
    const bars = uPlot.paths.bars({ size: [0.7, 48] });
    const opts = {
      width: Math.max(280, box.clientWidth || 800),
      height: 320,
      scales: { x: { time: false, range: () => [-0.5, starts.length - 0.5] }, y: { range: (_u, _min, max) => [0, max > 0 ? max * 1.1 : 1] } },
      axes: [
        {
          // One label per bucket that fits, counted back from the newest so the current one is always labelled.
          splits: (u) => {
            const fit = Math.max(1, Math.floor(u.bbox.width / devicePixelRatio / (interval === 'month' ? 64 : 48)));
            const step = Math.ceil(starts.length / fit);
            const out = [];
            for (let i = starts.length - 1; i >= 0; i -= step) out.unshift(i);
            return out;
          },
          values: (_u, ticks) => ticks.map((t) => fmt(starts[t] / 1000)),
        },
        {
          // Enough decimals to tell adjacent ticks apart (spend is often fractions of a cent).
          values: (_u, ticks, _ax, _space, incr) => {
            const decimals = Math.min(9, Math.max(2, Math.ceil(-Math.log10(incr || 1))));
            return ticks.map((t) => `$${t.toFixed(decimals)}`);
          },
          size: 70,
        },
      ],
      legend: { live: true },
      series: [
        { label: interval, value: (_u, v) => (v === null ? '—' : fmt(starts[v] / 1000)) },
        ...order.map((i) => ({
          label: series[i].model,
          stroke: COLORS[i],
          fill: COLORS[i] + 'cc',
          width: 1,
          paths: bars,
          points: { show: false },
          value: (_u, _v, _si, idx) => (idx === null ? '—' : usd(String(series[i].values[idx]))),
        })),
      ],
    };
    const data = [starts.map((_, i) => i), ...order.map((i) => stacked[i])];
    chart = new uPlot(opts, data, box);
    box.dataset.drawn = 'true';
  }

  // ---- top spenders -------------------------------------------------------------------------

  loaders.top = async function loadTop() {
    const now = new Date();
    const from = isoDay(new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1)));
    for (const scope of ['user', 'key', 'tenant']) {
      const res = await api('GET', `/admin/usage?group_by=${scope}&from=${from}`);
      const top = res.data.filter((r) => r.key !== null).sort((a, b) => Number(b.cost_usd) - Number(a.cost_usd)).slice(0, 10);
      const rows = [];
      for (const r of top) {
        let budgetCell = el('span', { class: 'muted' }, 'no budget');
        try {
          const b = await api('GET', `/admin/budgets/${scope}/${encodeURIComponent(r.key)}`);
          const parts = [];
          for (const p of ['daily', 'monthly', 'total']) {
            const limit = b.limits[`${p}_usd`];
            if (limit === null) continue;
            const spent = Number(b.spent[`${p}_usd`]);
            const pct = Number(limit) > 0 ? (spent / Number(limit)) * 100 : 100;
            parts.push(budgetBar(pct, `${p}: ${usd(String(spent))} of ${usd(limit)} (${percent(pct)})`));
          }
          if (parts.length) budgetCell = el('div', {}, ...parts);
        } catch (err) {
          budgetCell = el('span', { class: 'error' }, err.message);
        }
        rows.push(el('tr', {}, el('td', { class: 'id' }, r.key), el('td', { class: 'num' }, usd(r.cost_usd)), el('td', {}, budgetCell)));
      }
      if (rows.length === 0) rows.push(el('tr', {}, el('td', { colspan: 3, class: 'empty' }, 'No spend this month yet.')));
      fill($(`#top-${scope} tbody`), rows);
    }
  };

  // ---- live sessions ------------------------------------------------------------------------

  let liveTimer = null;
  function stopLive() {
    if (liveTimer) clearInterval(liveTimer);
    liveTimer = null;
  }
  const armed = new Set();

  async function refreshLive() {
    const res = await api('GET', '/admin/sessions/live');
    $('#live-empty').hidden = res.data.length > 0;
    $('#live-updated').textContent = `Updated ${new Date().toLocaleTimeString()}`;
    fill(
      $('#live-table tbody'),
      res.data.map((s) => {
        const button = el('button', { class: armed.has(s.id) ? 'danger armed' : 'danger', 'data-session': s.id }, armed.has(s.id) ? 'Confirm hang-up' : 'Close');
        button.addEventListener('click', () =>
          guarded(async () => {
            // Two clicks: a stray tap must not end someone's call.
            if (!armed.has(s.id)) {
              armed.add(s.id);
              button.textContent = 'Confirm hang-up';
              button.classList.add('armed');
              return;
            }
            armed.delete(s.id);
            button.disabled = true;
            button.textContent = 'Closing…';
            await api('POST', `/admin/sessions/${encodeURIComponent(s.id)}/close`);
            setTimeout(() => void guarded(refreshLive), 300);
          }),
        );
        return el(
          'tr',
          { 'data-session': s.id },
          el('td', {}, s.user, s.tenant ? el('small', { class: 'muted' }, ` · ${s.tenant}`) : null),
          el('td', {}, s.model),
          el('td', {}, s.transport === 'webrtc' ? 'call (WebRTC)' : 'WebSocket'),
          el('td', { class: 'num' }, duration(s.duration_ms)),
          el('td', { class: 'num' }, String(s.responses)),
          el('td', { class: 'num' }, usd(s.cost_usd)),
          el('td', { class: 'id' }, s.instance),
          el('td', {}, button),
        );
      }),
    );
  }

  loaders.live = async function loadLive() {
    stopLive();
    await refreshLive();
    liveTimer = setInterval(() => void guarded(refreshLive), 2000);
  };

  // ---- keys ---------------------------------------------------------------------------------

  loaders.keys = async function loadKeys() {
    const res = await api('GET', '/admin/keys?limit=1000');
    $('#keys-empty').hidden = res.data.length > 0;
    const now = Date.now() / 1000;
    fill(
      $('#keys-table tbody'),
      res.data.map((k) => {
        const status = k.revoked_at ? 'revoked' : k.expires_at && k.expires_at <= now ? 'expired' : 'active';
        const revoke = el('button', { class: 'danger' }, 'Revoke');
        let armedKey = false;
        revoke.addEventListener('click', () =>
          guarded(async () => {
            if (!armedKey) {
              armedKey = true;
              revoke.textContent = 'Confirm revoke';
              revoke.classList.add('armed');
              return;
            }
            revoke.disabled = true;
            await api('DELETE', `/admin/keys/${encodeURIComponent(k.id)}`);
            await loaders.keys();
          }),
        );
        return el(
          'tr',
          { 'data-key': k.id, class: status },
          el('td', { class: 'id' }, k.id),
          el('td', {}, k.name || '—'),
          el('td', {}, k.user || '—'),
          el('td', {}, k.tenant || '—'),
          el('td', {}, k.scopes.join(', ')),
          el('td', {}, dateOf(k.created_at)),
          el('td', {}, k.expires_at ? dateOf(k.expires_at) : 'never'),
          el('td', {}, el('span', { class: `pill ${status}` }, status)),
          el('td', {}, status === 'active' ? revoke : null),
        );
      }),
    );
  };

  async function createKey(form) {
    const f = new FormData(form);
    const scopes = f.getAll('scope');
    if (scopes.length === 0) throw new Error('Pick at least one scope.');
    const body = { user: String(f.get('user')).trim(), scopes };
    const tenant = String(f.get('tenant') || '').trim();
    const name = String(f.get('name') || '').trim();
    const expires = String(f.get('expires') || '');
    if (tenant) body.tenant = tenant;
    if (name) body.name = name;
    if (expires) body.expires_at = Math.floor(Date.parse(`${expires}T23:59:59Z`) / 1000);
    const created = await api('POST', '/admin/keys', body);
    $('#key-secret-value').textContent = created.key;
    $('#key-secret').hidden = false;
    form.reset();
    await loaders.keys();
  }

  // ---- budgets ------------------------------------------------------------------------------

  function limitCell(b, p) {
    const limit = b.limits[`${p}_usd`];
    const spent = b.spent[`${p}_usd`];
    if (limit === null) return el('td', {}, el('span', { class: 'muted' }, `${usd(spent)} spent · no limit`));
    const pct = Number(limit) > 0 ? (Number(spent) / Number(limit)) * 100 : 100;
    return el('td', {}, budgetBar(pct, `${usd(spent)} of ${usd(limit)} (${percent(pct)})`));
  }

  loaders.budgets = async function loadBudgets() {
    const res = await api('GET', '/admin/budgets');
    $('#budgets-empty').hidden = res.data.length > 0;
    fill(
      $('#budgets-table tbody'),
      res.data.map((b) => {
        const edit = el('button', { class: 'ghost' }, 'Edit');
        edit.addEventListener('click', () => {
          // elements.namedItem: `form.id` would be the form's own id, not the input named "id".
          const field = (n) => $('#budget-form').elements.namedItem(n);
          field('scope').value = b.scope;
          field('id').value = b.id;
          field('daily').value = b.overrides.daily_usd || '';
          field('monthly').value = b.overrides.monthly_usd || '';
          field('total').value = b.overrides.total_usd || '';
          field('daily').focus();
        });
        return el('tr', { 'data-budget': `${b.scope}:${b.id}` }, el('td', {}, b.scope), el('td', { class: 'id' }, b.id), limitCell(b, 'daily'), limitCell(b, 'monthly'), limitCell(b, 'total'), el('td', {}, edit));
      }),
    );
  };

  async function saveBudget(form) {
    const f = new FormData(form);
    const body = {};
    for (const p of ['daily', 'monthly', 'total']) {
      const v = String(f.get(p) || '').trim().replace(/^\$/, '');
      if (v && !/^\d{1,12}(\.\d{1,9})?$/.test(v)) throw new Error(`${p} must be an amount in USD such as 25 or 12.50.`);
      body[`${p}_usd`] = v || null;
    }
    await api('PUT', `/admin/budgets/${encodeURIComponent(String(f.get('scope')))}/${encodeURIComponent(String(f.get('id')).trim())}`, body);
    form.reset();
    await loaders.budgets();
  }

  // ---- sessions log -------------------------------------------------------------------------

  let nextCursor = null;
  function sessionQuery() {
    const f = new FormData($('#session-filter'));
    const q = new URLSearchParams();
    for (const k of ['user', 'tenant', 'key_id', 'model', 'from', 'to']) {
      const v = String(f.get(k) || '').trim();
      if (v) q.set(k, v);
    }
    return q;
  }

  async function loadSessions(append) {
    const q = sessionQuery();
    q.set('limit', '50');
    if (append && nextCursor) q.set('cursor', nextCursor);
    const res = await api('GET', `/admin/sessions?${q}`);
    nextCursor = res.next_cursor;
    $('#sessions-more').hidden = !nextCursor;
    const rows = res.data.map((s) =>
      el(
        'tr',
        { 'data-session': s.id },
        el('td', {}, when(s.started_at)),
        el('td', {}, s.user),
        el('td', {}, s.tenant || '—'),
        el('td', { class: 'id' }, s.key_id || '—'),
        el('td', {}, s.model),
        el('td', {}, s.transport),
        el('td', { class: 'num' }, s.ended_at ? duration(s.duration_ms) : 'live'),
        el('td', {}, s.close_code === null ? '—' : `${s.close_code} ${s.end_reason || ''}`),
        el('td', { class: 'num' }, `${s.responses}${s.estimated_responses ? ` (${s.estimated_responses} est.)` : ''}`),
        el('td', { class: 'num' }, `${s.input_text_tokens + s.input_audio_tokens + s.input_image_tokens} / ${s.output_text_tokens + s.output_audio_tokens}`),
        el('td', { class: 'num' }, usd(s.cost_usd)),
      ),
    );
    const tbody = $('#sessions-table tbody');
    if (append) tbody.append(...rows);
    else fill(tbody, rows);
    $('#sessions-empty').hidden = tbody.children.length > 0;
  }
  loaders.sessions = () => loadSessions(false);

  async function exportCsv() {
    const q = sessionQuery();
    q.set('limit', '1000');
    let csv = '';
    let cursor = null;
    for (let page = 0; page < 100; page++) {
      if (cursor) q.set('cursor', cursor);
      const res = await api('GET', `/admin/sessions?${q}`, undefined, 'text/csv');
      csv += page === 0 ? res.text : res.text.slice(res.text.indexOf('\r\n') + 2);
      cursor = res.next;
      if (!cursor) break;
    }
    const url = URL.createObjectURL(new Blob([csv], { type: 'text/csv' }));
    const a = el('a', { href: url, download: `relay-sessions-${isoDay(new Date())}.csv` });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  }

  // ---- tool approvals -----------------------------------------------------------------------

  let approvalsTimer = null;
  function stopApprovals() {
    if (approvalsTimer) clearInterval(approvalsTimer);
    approvalsTimer = null;
  }
  /** Rows by approval id, kept across refreshes so a reason being typed is not wiped. */
  const approvalRows = new Map();

  function approvalQuery() {
    const f = new FormData($('#approval-filter'));
    const q = new URLSearchParams();
    for (const k of ['status', 'user', 'tenant']) {
      const v = String(f.get(k) || '').trim();
      if (v) q.set(k, v);
    }
    return q;
  }

  /**
   * Arguments as one-line JSON with a space after each separator, so a long line wraps between
   * values rather than inside a word. A string that is not JSON is shown as the model sent it.
   */
  function argsText(a) {
    if (a === null || a === undefined) return '—';
    let v = a;
    if (typeof a === 'string') {
      try {
        v = JSON.parse(a);
      } catch {
        return a;
      }
    }
    // Indented output has real newlines only between tokens (inside strings they are escaped).
    return JSON.stringify(v, null, 1).replace(/\n\s*/g, ' ');
  }

  function expiresIn(iso) {
    const left = Date.parse(iso) - Date.now();
    return left > 0 ? `in ${duration(left)}` : 'expired';
  }

  function approvalRow(a) {
    const reason = el('input', { class: 'reason', name: 'reason', maxlength: 1000, placeholder: 'Reason (optional)', 'aria-label': 'Reason' });
    const approve = el('button', { class: 'approve' }, 'Approve');
    const reject = el('button', { class: 'danger' }, 'Reject');
    const decision = el('div', { class: 'decide' }, reason, el('div', { class: 'buttons' }, approve, reject));
    // Two clicks, as for hang-up and revoke: a stray tap must not run (or refuse) a payment.
    const arm = (button, approveIt, label) =>
      button.addEventListener('click', () =>
        guarded(async () => {
          if (!button.classList.contains('armed')) {
            for (const b of [approve, reject]) {
              b.classList.remove('armed');
              b.textContent = b === approve ? 'Approve' : 'Reject';
            }
            button.classList.add('armed');
            button.textContent = label;
            return;
          }
          approve.disabled = true;
          reject.disabled = true;
          reason.disabled = true;
          button.textContent = approveIt ? 'Approving…' : 'Rejecting…';
          const body = { approve: approveIt };
          const r = reason.value.trim();
          if (r) body.reason = r;
          try {
            await api('POST', `/admin/tool_approvals/${encodeURIComponent(a.id)}`, body);
          } finally {
            // Decided here or elsewhere (409): either way the list now shows what happened.
            approvalRows.delete(a.id);
            await refreshApprovals();
          }
        }),
      );
    arm(approve, true, 'Confirm approve');
    arm(reject, false, 'Confirm reject');
    const expires = el('td', { class: 'num', 'data-label': 'Expires', 'data-expires': a.expires_at }, a.status === 'pending' ? expiresIn(a.expires_at) : '—');
    // data-label: on a phone each approval is a card with labelled lines (admin.css), so the
    // decision buttons are on screen rather than at the far end of a sideways-scrolling table.
    return el(
      'tr',
      { 'data-approval': a.id, class: a.status },
      el('td', { class: 'when', 'data-label': 'Requested' }, when(a.created_at)),
      expires,
      el('td', { class: 'who', 'data-label': 'User' }, a.user, a.tenant ? el('small', { class: 'muted' }, ` · ${a.tenant}`) : null),
      el('td', { 'data-label': 'Tool' }, el('strong', {}, a.name), el('br'), el('small', { class: 'muted' }, `${a.kind} · ${a.approver} approval`)),
      el('td', { class: 'args', 'data-label': 'Arguments' }, el('code', {}, argsText(a.arguments))),
      el('td', { 'data-label': 'Decided by' }, a.decided_by || '—', a.reason ? el('div', { class: 'muted' }, a.reason) : null),
      el('td', { 'data-label': 'Status' }, el('span', { class: `pill ${a.status}` }, a.status)),
      el('td', { class: 'decision', 'data-label': 'Decision' }, a.status === 'pending' ? decision : a.decided_at ? when(a.decided_at) : '—'),
    );
  }

  async function refreshApprovals() {
    const res = await api('GET', `/admin/tool_approvals?${approvalQuery()}`);
    const seen = new Set();
    const rows = res.data.map((a) => {
      seen.add(a.id);
      const kept = approvalRows.get(a.id);
      // A pending row is kept as it is (its reason box and armed button survive the refresh).
      if (kept && kept.status === a.status && a.status === 'pending') {
        const cell = kept.row.querySelector('[data-expires]');
        if (cell) cell.textContent = expiresIn(a.expires_at);
        return kept.row;
      }
      const row = approvalRow(a);
      approvalRows.set(a.id, { row, status: a.status });
      return row;
    });
    for (const id of [...approvalRows.keys()]) if (!seen.has(id)) approvalRows.delete(id);
    fill($('#approvals-table tbody'), rows);
    $('#approvals-empty').textContent = approvalQuery().get('status') === 'pending' ? 'No tool calls are waiting for a decision.' : 'No tool approvals match these filters.';
    $('#approvals-empty').hidden = rows.length > 0;
    $('#approvals-updated').textContent = `Updated ${new Date().toLocaleTimeString()}`;
  }

  loaders.approvals = async function loadApprovals() {
    stopApprovals();
    approvalRows.clear();
    await refreshApprovals();
    if (approvalQuery().get('status') === 'pending') approvalsTimer = setInterval(() => void guarded(refreshApprovals), 3000);
  };

  // ---- tool calls ---------------------------------------------------------------------------

  const TOOLCALL_LIMIT = 1000;
  function toolCallQuery() {
    const f = new FormData($('#toolcall-filter'));
    const q = new URLSearchParams();
    for (const k of ['user', 'tenant', 'tool', 'session_id', 'from']) {
      const v = String(f.get(k) || '').trim();
      if (v) q.set(k, v);
    }
    // The route's `to` is exclusive; the picked day is meant to be included.
    const to = String(f.get('to') || '');
    if (to) q.set('to', isoDay(new Date(Date.parse(`${to}T00:00:00Z`) + 86400000)));
    return q;
  }

  function outcomeClass(o) {
    return o === 'completed' || o === 'approved' ? 'ok' : o === 'rejected' || o === 'expired' ? 'expired' : 'revoked';
  }

  /** A session id shortened to fit the table; a click filters the log to that session. */
  function sessionLink(id) {
    const b = el('button', { type: 'button', class: 'link', title: `${id} (show only this session)` }, id.length > 14 ? `${id.slice(0, 12)}…` : id);
    b.addEventListener('click', () => {
      $('#toolcall-filter').elements.namedItem('session_id').value = id;
      void guarded(loaders.toolcalls);
    });
    return b;
  }

  loaders.toolcalls = async function loadToolCalls() {
    const q = toolCallQuery();
    q.set('limit', String(TOOLCALL_LIMIT));
    const res = await api('GET', `/admin/tool_calls?${q}`);
    // The route answers oldest first; the newest matter most here.
    const data = res.data.slice().reverse();
    $('#toolcalls-note').textContent =
      data.length >= TOOLCALL_LIMIT
        ? `Showing the first ${TOOLCALL_LIMIT} calls in this range, newest first: narrow the dates to see later ones (the CSV export holds up to 10,000).`
        : 'The audit log of every server-side tool call, newest first.';
    fill(
      $('#toolcalls-table tbody'),
      data.map((c) =>
        el(
          'tr',
          { 'data-call': c.call_id },
          el('td', { class: 'when' }, when(c.created_at)),
          el('td', { class: 'who' }, c.user, c.tenant ? el('small', { class: 'muted' }, ` · ${c.tenant}`) : null),
          el('td', {}, el('strong', {}, c.tool), c.kind !== 'function' ? el('small', { class: 'muted' }, ` · ${c.kind}`) : null),
          el('td', {}, el('span', { class: `pill ${outcomeClass(c.outcome)}` }, c.outcome.replace(/_/g, ' '))),
          el('td', {}, c.approval_decision ? `${c.approval_decision} by ${c.approval_by || '—'}` : '—'),
          el('td', { class: 'num' }, c.webhook_status === null ? '—' : String(c.webhook_status)),
          el('td', { class: 'num' }, c.latency_ms === null ? '—' : `${c.latency_ms} ms`),
          el('td', { class: 'num' }, `${c.output_bytes} B`),
          el('td', { class: 'args' }, c.arguments === null ? el('span', { class: 'muted', title: `sha256 ${c.arguments_sha256}` }, `sha256 ${c.arguments_sha256.slice(0, 12)}…`) : el('code', {}, argsText(c.arguments))),
          el('td', { class: 'id' }, sessionLink(c.session_id)),
        ),
      ),
    );
    $('#toolcalls-empty').hidden = data.length > 0;
  };

  async function exportToolCallsCsv() {
    const q = toolCallQuery();
    q.set('limit', '10000');
    // Fetched with the bearer header and saved from a blob: the credential never goes in a URL.
    const res = await api('GET', `/admin/tool_calls?${q}`, undefined, 'text/csv');
    const url = URL.createObjectURL(new Blob([res.text], { type: 'text/csv' }));
    const a = el('a', { href: url, download: `relay-tool-calls-${isoDay(new Date())}.csv` });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  }

  // ---- wiring -------------------------------------------------------------------------------

  document.addEventListener('DOMContentLoaded', () => {
    $('#signin-form').addEventListener('submit', (e) => {
      e.preventDefault();
      const err = $('#signin-error');
      err.hidden = true;
      const token = $('#token').value.trim();
      signIn(token).then(showApp, (e2) => {
        err.textContent = e2.message;
        err.hidden = false;
      });
    });
    $('#sign-out').addEventListener('click', () => signOut());
    for (const b of document.querySelectorAll('#tabs [data-tab]')) b.addEventListener('click', () => selectTab(b.dataset.tab));
    for (const b of document.querySelectorAll('#interval [data-interval]')) {
      b.addEventListener('click', () => {
        interval = b.dataset.interval;
        for (const o of document.querySelectorAll('#interval [data-interval]')) o.setAttribute('aria-pressed', String(o === b));
        void guarded(loaders.spend);
      });
    }
    $('#key-form').addEventListener('submit', (e) => {
      e.preventDefault();
      void guarded(() => createKey(e.target));
    });
    $('#key-secret-done').addEventListener('click', () => {
      $('#key-secret-value').textContent = '';
      $('#key-secret').hidden = true;
    });
    $('#budget-form').addEventListener('submit', (e) => {
      e.preventDefault();
      void guarded(() => saveBudget(e.target));
    });
    $('#session-filter').addEventListener('submit', (e) => {
      e.preventDefault();
      void guarded(() => loadSessions(false));
    });
    $('#sessions-more').addEventListener('click', () => void guarded(() => loadSessions(true)));
    $('#sessions-csv').addEventListener('click', () => void guarded(exportCsv));
    $('#approval-filter').addEventListener('submit', (e) => {
      e.preventDefault();
      void guarded(loaders.approvals);
    });
    $('#toolcall-filter').addEventListener('submit', (e) => {
      e.preventDefault();
      void guarded(loaders.toolcalls);
    });
    $('#toolcalls-csv').addEventListener('click', () => void guarded(exportToolCallsCsv));
    window.addEventListener('resize', () => {
      if (chart) chart.setSize({ width: Math.max(280, $('#spend-chart').clientWidth), height: 320 });
    });
    if (sessionStorage.getItem(TOKEN_KEY)) {
      api('GET', '/admin/keys?limit=1').then(showApp, () => signOut());
    }
  });
})();
