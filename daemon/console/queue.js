// The queue: held (or released, rejected) items, newest first, with
// filters, a selection that j/k move and a refresh every 15 s that keeps it.
import { api } from './api.js';
import { $, clear, el, fmtAge, fmtDuration, fmtWhen, parseTime, sevBadge, sevRank } from './util.js';

const REFRESH_MS = 15000;

const q = {
  state: 'hold',
  items: [],          // as the server sent them, newest first
  spools: [],
  shown: [],          // after the filters, in table order
  selectedId: null,
  loadedAt: 0,
  timer: null,
  active: false,
  loading: null,
  seq: 0,
  hooks: { open: () => {}, error: () => {} },
};

export function initQueue(hooks) {
  q.hooks = hooks;
  for (const b of $('state-switch').querySelectorAll('button')) {
    b.addEventListener('click', () => setState(b.dataset.state));
    b.addEventListener('keydown', (ev) => {
      // radio group: arrows move between the states
      if (ev.key !== 'ArrowRight' && ev.key !== 'ArrowLeft') return;
      ev.preventDefault();
      const all = [...$('state-switch').querySelectorAll('button')];
      const i = all.indexOf(b) + (ev.key === 'ArrowRight' ? 1 : -1);
      const next = all[(i + all.length) % all.length];
      setState(next.dataset.state);
      next.focus();
    });
  }
  for (const id of ['f-spool', 'f-category', 'f-severity', 'f-age']) {
    $(id).addEventListener('change', () => render());
  }
  $('f-text').addEventListener('input', () => render());
  $('filters').addEventListener('submit', (ev) => ev.preventDefault());
  $('f-clear').addEventListener('click', () => {
    for (const id of ['f-spool', 'f-category', 'f-severity', 'f-age', 'f-text']) $(id).value = '';
    render();
  });
  $('refresh-btn').addEventListener('click', () => load());
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden && q.active && Date.now() - q.loadedAt > REFRESH_MS) load();
  });
  updateStateSwitch();
}

export function showQueue() {
  q.active = true;
  if (!q.timer) {
    q.timer = setInterval(() => {
      if (q.active && !document.hidden) load({ quiet: true });
    }, REFRESH_MS);
  }
  render();
  return load();
}

export function hideQueue() {
  q.active = false;
  if (q.timer) {
    clearInterval(q.timer);
    q.timer = null;
  }
}

export function resetQueue() {
  hideQueue();
  q.items = [];
  q.shown = [];
  q.selectedId = null;
  q.loadedAt = 0;
  clear($('queue-body'));
}

/** The ids of the queue as it is shown (for previous/next on an item page). */
export function queueOrder() {
  return q.shown.map((it) => it.id);
}

export function selectedId() {
  return q.selectedId;
}

export function selectId(id) {
  q.selectedId = id;
}

/** Drop an item that was just decided, so it is gone before the next load. */
export function forget(id) {
  const i = q.shown.findIndex((it) => it.id === id);
  q.items = q.items.filter((it) => it.id !== id);
  if (q.selectedId === id) {
    const rest = q.shown.filter((it) => it.id !== id);
    q.selectedId = rest.length ? rest[Math.min(Math.max(i, 0), rest.length - 1)].id : null;
  }
}

function setState(state) {
  if (state === q.state) return;
  q.state = state;
  q.items = [];
  q.selectedId = null;
  updateStateSwitch();
  render();
  load();
}

function updateStateSwitch() {
  for (const b of $('state-switch').querySelectorAll('button')) {
    const on = b.dataset.state === q.state;
    b.setAttribute('aria-checked', on ? 'true' : 'false');
    b.tabIndex = on ? 0 : -1;
  }
  $('queue-title').textContent =
    q.state === 'hold' ? 'Review queue' : q.state === 'released' ? 'Released items' : 'Rejected items';
}

export async function load({ quiet = false } = {}) {
  if (q.loading && quiet) return q.loading; // a timer tick while a load is out
  const state = q.state;
  const seq = ++q.seq;
  const table = $('queue-table');
  table.setAttribute('aria-busy', 'true');
  const p = (async () => {
    try {
      const data = await api.items(state);
      if (seq !== q.seq || state !== q.state) return; // a newer load is out
      q.items = Array.isArray(data && data.items) ? data.items.slice() : [];
      q.spools = Array.isArray(data && data.spools) ? data.spools : [];
      // newest first, whatever order arrived
      q.items.sort((a, b) => (parseTime(b.screened_at) || 0) - (parseTime(a.screened_at) || 0));
      q.loadedAt = Date.now();
      render();
    } catch (err) {
      if (err.status !== 401 && !quiet) q.hooks.error('Could not load the queue: ' + err.message);
      else if (err.status !== 401) $('queue-updated').textContent = 'Refresh failed: ' + err.message;
    } finally {
      if (seq === q.seq) {
        table.removeAttribute('aria-busy');
        q.loading = null;
      }
    }
  })();
  q.loading = p;
  return p;
}

function fillSelect(sel, values, allLabel) {
  const cur = sel.value;
  const key = JSON.stringify([values, cur]);
  if (sel.dataset.opts === key) return; // unchanged: leave an open list alone
  sel.dataset.opts = key;
  clear(sel);
  sel.append(el('option', { value: '', text: allLabel }));
  for (const [value, label] of values) sel.append(el('option', { value, text: label }));
  if (cur && !values.some(([v]) => v === cur)) sel.append(el('option', { value: cur, text: cur }));
  sel.value = cur;
}

function filterOptions() {
  const spools = new Map();
  for (const s of q.spools) if (s && typeof s.name === 'string') spools.set(s.name, s.name + (s.mode ? ' (' + s.mode + ')' : ''));
  for (const it of q.items) if (typeof it.spool === 'string' && !spools.has(it.spool)) spools.set(it.spool, it.spool);
  fillSelect($('f-spool'), [...spools.entries()].sort(), 'All spools');
  const cats = new Set();
  for (const it of q.items) for (const c of it.categories || []) if (typeof c === 'string') cats.add(c);
  fillSelect($('f-category'), [...cats].sort().map((c) => [c, c]), 'All categories');
}

function matches(it, f, now) {
  if (f.spool && it.spool !== f.spool) return false;
  if (f.category && !(it.categories || []).includes(f.category)) return false;
  if (f.severity && sevRank(it.severity) < sevRank(f.severity)) return false;
  if (f.age) {
    const t = parseTime(it.screened_at);
    if (!Number.isFinite(t) || now - t < f.age * 1000) return false;
  }
  if (f.text) {
    const hay = [it.name, it.id, ...(it.findings || []).map((x) => x && x.evidence)]
      .filter((x) => typeof x === 'string').join('\n').toLowerCase();
    if (!hay.includes(f.text)) return false;
  }
  return true;
}

function firstEvidence(it) {
  const fs = Array.isArray(it.findings) ? it.findings : [];
  const withEv = fs.filter((f) => f && typeof f.evidence === 'string' && f.evidence);
  if (!withEv.length) return '';
  // the earliest in the recording
  withEv.sort((a, b) => (a.start_s ?? 0) - (b.start_s ?? 0));
  return withEv[0].evidence;
}

export function render() {
  filterOptions();
  const f = {
    spool: $('f-spool').value,
    category: $('f-category').value,
    severity: $('f-severity').value,
    age: Number($('f-age').value) || 0,
    text: $('f-text').value.trim().toLowerCase(),
  };
  const now = Date.now();
  const was = q.shown.findIndex((it) => it.id === q.selectedId);
  q.shown = q.items.filter((it) => matches(it, f, now));
  if (q.selectedId && !q.shown.some((it) => it.id === q.selectedId)) {
    // gone (decided elsewhere, filtered out): the row now in its place
    q.selectedId = was >= 0 && q.shown.length ? q.shown[Math.min(was, q.shown.length - 1)].id : null;
  }
  if (!q.selectedId && q.shown.length) q.selectedId = q.shown[0].id; // Enter opens the newest
  const body = $('queue-body');
  const hadFocus = body.contains(document.activeElement);
  clear(body);
  for (const it of q.shown) body.append(row(it, now));
  const total = q.items.length;
  const word = q.state === 'hold' ? 'held' : q.state;
  const n = q.shown.length;
  $('queue-count').textContent =
    n === total ? `${total} ${word} item${total === 1 ? '' : 's'}` : `${n} of ${total} ${word} items shown`;
  const empty = $('queue-empty');
  empty.hidden = n > 0 || !q.loadedAt;
  empty.textContent = total === 0
    ? (q.state === 'hold' ? 'Nothing is waiting for review.' : 'No ' + q.state + ' items.')
    : 'No item matches the filters.';
  $('queue-updated').textContent = q.loadedAt
    ? 'Updated ' + new Date(q.loadedAt).toLocaleTimeString() + ' · refreshes every 15 s'
    : '';
  markSelection(hadFocus);
}

function row(it, now) {
  const t = parseTime(it.screened_at);
  const href = '#/item/' + encodeURIComponent(it.id);
  const cats = el('span', { class: 'cats' });
  for (const c of it.categories || []) cats.append(el('span', { class: 'tag', text: c }));
  const tr = el('tr', { dataset: { id: it.id } },
    el('td', { class: 'c-age', title: fmtWhen(it.screened_at) },
      el('time', { datetime: it.screened_at || '', text: fmtAge(now - t) })),
    el('td', { class: 'c-spool', text: it.spool }),
    el('td', { class: 'c-name' }, el('a', { href, class: 'item-link', tabindex: '-1', text: it.name })),
    el('td', { class: 'c-sev' }, sevBadge(it.severity)),
    el('td', { class: 'c-cat' }, cats),
    el('td', { class: 'c-ev' }, el('span', { class: 'evidence', text: firstEvidence(it) })),
    el('td', { class: 'c-dur', text: fmtDuration(it.duration_s) }));
  tr.addEventListener('click', (ev) => {
    q.selectedId = it.id;
    if (ev.target instanceof Element && ev.target.closest('a')) return; // the link navigates
    q.hooks.open(it.id);
  });
  return tr;
}

function markSelection(focus) {
  for (const tr of $('queue-body').rows) {
    const on = tr.dataset.id === q.selectedId;
    tr.classList.toggle('selected', on);
    if (on) tr.setAttribute('aria-current', 'true');
    else tr.removeAttribute('aria-current');
    const a = tr.querySelector('a');
    if (a) a.tabIndex = on || (!q.selectedId && tr === $('queue-body').rows[0]) ? 0 : -1;
    if (on && focus && a) a.focus({ preventScroll: true });
  }
}

/** j/k: move the selection by delta rows. */
export function moveSelection(delta) {
  if (!q.shown.length) return;
  let i = q.shown.findIndex((it) => it.id === q.selectedId);
  i = i < 0 ? (delta > 0 ? 0 : q.shown.length - 1) : Math.min(Math.max(i + delta, 0), q.shown.length - 1);
  q.selectedId = q.shown[i].id;
  markSelection(true);
  const tr = $('queue-body').rows[i];
  if (tr) tr.scrollIntoView({ block: 'nearest' });
}

export function openSelected() {
  if (q.selectedId) q.hooks.open(q.selectedId);
}
