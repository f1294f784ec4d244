// vmscreen reviewer console: session, routing (#/ and #/item/ID), the
// status line and the keyboard.  See docs/http.md for the API.
import { api, onUnauthorized, setCsrf } from './api.js';
import {
  closeDecision, currentItemId, decisionOpen, dialogOpen, hideItem, initItem, openDecision,
  showItem, stepFinding, togglePlay,
} from './item.js';
import {
  forget, hideQueue, initQueue, moveSelection, openSelected, queueOrder, resetQueue, selectId,
  showQueue,
} from './queue.js';
import { $, isTyping } from './util.js';

const app = {
  session: null,  // {user, csrf, expires}
  view: null,
  statusTimer: null,
  retryTimer: null,
};

// --- status line ---------------------------------------------------------

function status(msg) {
  const s = $('status');
  s.textContent = msg;
  s.classList.toggle('visible', !!msg);
  clearTimeout(app.statusTimer);
  if (msg) app.statusTimer = setTimeout(() => status(''), 4000);
}

function errorMsg(msg) {
  const a = $('alert');
  a.textContent = msg;
  a.classList.toggle('visible', !!msg);
  if (msg) {
    clearTimeout(a._t);
    a._t = setTimeout(() => errorMsg(''), 10000);
  }
}

// --- views ---------------------------------------------------------------

function show(view) {
  for (const v of ['loading', 'login', 'queue', 'item']) $('view-' + v).hidden = v !== view;
  if (app.view === 'queue' && view !== 'queue') hideQueue();
  if (app.view === 'item' && view !== 'item') hideItem();
  app.view = view;
  const inside = view === 'queue' || view === 'item';
  $('who').hidden = !inside;
  $('topnav').hidden = !inside;
  document.body.dataset.view = view;
}

function route() {
  if (!app.session) {
    showLogin();
    return;
  }
  const m = /^#\/item\/(.+)$/.exec(location.hash);
  if (m) {
    let id;
    try {
      id = decodeURIComponent(m[1]);
    } catch {
      id = m[1];
    }
    if (app.view !== 'item' || currentItemId() !== id) {
      show('item');
      selectId(id);
      showItem(id);
      $('main').focus({ preventScroll: true });
      window.scrollTo(0, 0);
    }
    return;
  }
  if (app.view !== 'queue') {
    show('queue');
    document.title = 'Queue · vmscreen review';
    showQueue().then(() => {
      // focus the selected row's link, so j/k and Enter go on from there
      const sel = document.querySelector('#queue-body tr.selected a');
      if (sel) sel.focus({ preventScroll: false });
    });
  }
}

// --- session -------------------------------------------------------------

function setSession(s) {
  app.session = s;
  setCsrf(s ? s.csrf : null);
  $('who-name').textContent = s ? s.user : '';
  if (s && s.expires) {
    const t = Date.parse(s.expires);
    $('who-name').title = Number.isFinite(t) ? 'Session until ' + new Date(t).toLocaleTimeString() : '';
  }
}

function showLogin(message) {
  show('login');
  document.title = 'Sign in · vmscreen review';
  const e = $('login-error');
  e.hidden = !message;
  e.textContent = message || '';
  $('login-password').value = '';
  const u = $('login-user');
  (u.value ? $('login-password') : u).focus();
}

async function boot() {
  show('loading');
  try {
    setSession(await api.session());
  } catch (err) {
    setSession(null);
    if (err.status !== 401) {
      showLogin('The server did not answer as expected (' + err.message + '). Try again.');
      return;
    }
  }
  route();
}

function loginRetryCountdown(seconds) {
  const btn = $('login-submit');
  const e = $('login-error');
  clearInterval(app.retryTimer);
  let left = seconds;
  const tick = () => {
    if (left <= 0) {
      clearInterval(app.retryTimer);
      btn.disabled = false;
      e.textContent = 'You can try again now.';
      return;
    }
    btn.disabled = true;
    e.hidden = false;
    e.textContent = 'Too many attempts, retry in ' + left + ' s.';
    left--;
  };
  tick();
  app.retryTimer = setInterval(tick, 1000);
}

async function onLogin(ev) {
  ev.preventDefault();
  const user = $('login-user').value.trim();
  const password = $('login-password').value;
  const e = $('login-error');
  if (!user || !password) {
    e.hidden = false;
    e.textContent = 'Enter your user name and password.';
    (user ? $('login-password') : $('login-user')).focus();
    return;
  }
  const btn = $('login-submit');
  btn.disabled = true;
  btn.textContent = 'Signing in…';
  e.hidden = true;
  try {
    const s = await api.login(user, password);
    setSession(s);
    $('login-password').value = '';
    btn.disabled = false;
    route();
    status('Signed in as ' + s.user + '.');
  } catch (err) {
    btn.disabled = false;
    $('login-password').value = '';
    $('login-password').focus();
    e.hidden = false;
    if (err.status === 429) {
      loginRetryCountdown(err.retryAfter || 60);
    } else if (err.status === 401) {
      e.textContent = 'Wrong user name or password.';
    } else {
      e.textContent = 'Sign-in failed: ' + err.message;
    }
  } finally {
    btn.textContent = 'Sign in';
  }
}

async function onLogout() {
  try {
    await api.logout();
  } catch (err) {
    if (err.status !== 401) {
      errorMsg('Logging out failed: ' + err.message);
      return;
    }
  }
  endSession('Signed out.');
}

function endSession(message) {
  setSession(null);
  resetQueue();
  show('loading');
  showLogin(message);
}

// --- decisions -----------------------------------------------------------

function decided(id, action, name, already) {
  forget(id);
  const what = name || id;
  const done = action === 'release' ? 'released' : 'rejected';
  status(already ? what + ' was already ' + done + '.' : (action === 'release' ? 'Released ' : 'Rejected ') + what + '.');
  location.hash = '#/';
}

// --- keyboard ------------------------------------------------------------

function onKey(ev) {
  if (ev.defaultPrevented || ev.ctrlKey || ev.metaKey || ev.altKey) return;
  if (app.view !== 'queue' && app.view !== 'item') return;
  if (dialogOpen()) return; // a dialog has its own keys (Esc closes it)
  const key = ev.key;
  if (key === 'Escape' && app.view === 'item' && decisionOpen()) {
    ev.preventDefault();
    closeDecision();
    $('release-btn').focus();
    return;
  }
  if (isTyping(ev)) {
    if (key === 'Escape' && app.view === 'queue' && ev.target instanceof Element && ev.target.id === 'f-text') {
      ev.target.blur();
    }
    return;
  }
  if (key === '?') {
    ev.preventDefault();
    $('help').showModal();
    return;
  }
  if (app.view === 'queue') {
    if (key === 'j' || key === 'ArrowDown') {
      ev.preventDefault();
      moveSelection(1);
    } else if (key === 'k' || key === 'ArrowUp') {
      ev.preventDefault();
      moveSelection(-1);
    } else if (key === '/') {
      ev.preventDefault();
      $('f-text').focus();
    } else if (key === 'Enter') {
      const t = ev.target;
      if (t instanceof Element && t.closest('a, button')) return; // it does its own Enter
      ev.preventDefault();
      openSelected();
    }
    return;
  }
  // the item page
  const onControl = ev.target instanceof Element && ev.target.closest('button, a, [role="button"]');
  if (key === 'Escape') {
    ev.preventDefault();
    location.hash = '#/';
  } else if (key === ' ' || key === 'Spacebar') {
    if (onControl && !ev.target.closest('#play-btn')) return; // Space presses the focused control
    ev.preventDefault();
    togglePlay();
  } else if (key === 'n') {
    ev.preventDefault();
    stepFinding(1);
  } else if (key === 'p') {
    ev.preventDefault();
    stepFinding(-1);
  } else if (key === 'r') {
    ev.preventDefault();
    openDecision('release');
  } else if (key === 'x') {
    ev.preventDefault();
    openDecision('reject');
  }
}

// --- start ---------------------------------------------------------------

function init() {
  onUnauthorized(() => {
    if (app.session) endSession('Your session has ended. Sign in again.');
  });
  initQueue({
    open: (id) => {
      location.hash = '#/item/' + encodeURIComponent(id);
    },
    error: errorMsg,
  });
  initItem({
    decided,
    status,
    error: errorMsg,
    neighbours: queueOrder,
  });
  $('login-form').addEventListener('submit', onLogin);
  $('logout-btn').addEventListener('click', onLogout);
  $('help-btn').addEventListener('click', () => $('help').showModal());
  window.addEventListener('hashchange', route);
  document.addEventListener('keydown', onKey);
  boot();
}

init();
