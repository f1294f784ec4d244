// One item: player, findings, transcript with the findings' spans marked,
// metadata, audio facts, review history, and the decision.
import { api } from './api.js';
import { createPlayer } from './player.js';
import {
  $, append, clear, el, fmtBytes, fmtClock, fmtConfidence, fmtDuration, fmtWhen, jsonText,
  sevBadge, sevRank, utf8Length,
} from './util.js';

const EPS = 0.005; // a word that only touches a span's edge is not in it

const it = {
  id: null,
  data: null,
  findings: [],
  player: null,
  words: [],          // [{word, el}] in time order, for the "now playing" mark
  nowWord: null,
  current: -1,        // the finding last played
  decision: null,     // 'release' | 'reject' while the reason box is open
  faIndex: null,
  token: 0,           // bumps on every load, so a late answer is dropped
  hooks: { decided: () => {}, status: () => {}, error: () => {}, neighbours: () => [] },
};

export function initItem(hooks) {
  it.hooks = hooks;
  $('play-btn').addEventListener('click', () => togglePlay());
  $('next-finding').addEventListener('click', () => stepFinding(1));
  $('prev-finding').addEventListener('click', () => stepFinding(-1));
  $('rate').addEventListener('change', () => it.player && it.player.setRate(Number($('rate').value) || 1));
  $('release-btn').addEventListener('click', () => openDecision('release'));
  $('reject-btn').addEventListener('click', () => openDecision('reject'));
  $('decide-cancel').addEventListener('click', () => closeDecision());
  $('reason').addEventListener('input', () => reasonChanged());
  $('reason').addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' && (ev.ctrlKey || ev.metaKey)) {
      ev.preventDefault();
      if (!$('decide-submit').disabled) $('decide-form').requestSubmit();
    }
  });
  $('decide-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    submitDecision();
  });
  $('fa-note').addEventListener('input', () => {
    const v = $('fa-note').value;
    $('fa-submit').disabled = !v.trim() || utf8Length(v) > 1000;
  });
  $('fa-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    submitFalseAlarm();
  });
  $('fa-cancel').addEventListener('click', () => $('fa-dialog').close());
  $('item-prev').addEventListener('click', () => goNeighbour(-1));
  $('item-next').addEventListener('click', () => goNeighbour(1));
}

export function currentItemId() {
  return it.id;
}

export function hideItem() {
  it.token++;
  if (it.player) it.player.destroy();
  it.player = null;
  const audio = $('player-audio');
  audio.pause();
  audio.removeAttribute('src');
  audio.load();
  clear($('waveform'));
  it.id = null;
  it.data = null;
  it.decision = null;
  if ($('fa-dialog').open) $('fa-dialog').close();
}

export async function showItem(id) {
  hideItem();
  const token = it.token;
  it.id = id;
  $('item-title').textContent = 'Loading…';
  $('item-sub').textContent = '';
  for (const c of ['findings', 'transcript', 'facts', 'metadata', 'history']) clear($(c));
  for (const c of ['findings-count', 'decide-state', 'transcript-note']) $(c).textContent = '';
  $('metadata-empty').hidden = true;
  $('history-empty').hidden = true;
  $('time-cur').textContent = fmtClock(0);
  $('time-dur').textContent = fmtClock(0);
  $('item-grid').hidden = false;
  $('decide-form').hidden = true;
  $('decide-buttons').hidden = true;
  $('wave-msg').hidden = true;
  $('play-btn').disabled = true;
  setPlayIcon(false);
  let data;
  try {
    data = await api.item(id);
  } catch (err) {
    if (token !== it.token) return;
    $('item-grid').hidden = true;
    $('item-prev').disabled = true;
    $('item-next').disabled = true;
    $('item-title').textContent = err.status === 404 ? 'Item not found' : 'Could not load the item';
    $('item-sub').textContent = err.status === 404 ? 'It may have been decided and moved, or never existed.' : err.message;
    if (err.status !== 401 && err.status !== 404) it.hooks.error('Could not load the item: ' + err.message);
    return;
  }
  if (token !== it.token) return;
  it.data = data || {};
  it.findings = Array.isArray(it.data.alerts) ? it.data.alerts.filter((f) => f && typeof f === 'object') : [];
  it.current = -1;
  renderHead();
  renderNeighbours();
  renderFindings();
  renderTranscript();
  renderFacts();
  renderMetadata();
  renderHistory();
  renderDecision();
  startPlayer(token);
}

// --- head ----------------------------------------------------------------

function renderHead() {
  const d = it.data;
  $('item-title').textContent = typeof d.name === 'string' ? d.name : String(d.id || it.id);
  const sub = $('item-sub');
  clear(sub);
  const worst = it.findings.reduce((a, f) => (sevRank(f.severity) > sevRank(a) ? f.severity : a), null);
  append(sub, [
    sevBadge(worst),
    el('span', { class: 'state state-' + (d.state || 'unknown'), text: d.state || 'unknown' }),
    el('span', { text: 'spool ' + (d.spool || '–') + (d.mode ? ' (' + d.mode + ')' : '') }),
    el('span', { text: fmtDuration(d.duration_s) }),
    el('span', { text: 'screened ' + fmtWhen(d.screened_at) }),
  ]);
  document.title = (typeof d.name === 'string' ? d.name : it.id) + ' · vmscreen review';
}

function renderNeighbours() {
  const order = it.hooks.neighbours();
  const i = order.indexOf(it.id);
  $('item-prev').disabled = i <= 0;
  $('item-next').disabled = i < 0 || i >= order.length - 1;
}

function goNeighbour(delta) {
  const order = it.hooks.neighbours();
  const i = order.indexOf(it.id);
  if (i < 0) return;
  const next = order[i + delta];
  if (next) location.hash = '#/item/' + encodeURIComponent(next);
}

// --- player --------------------------------------------------------------

function startPlayer(token) {
  const audio = $('player-audio');
  const tags = $('wave-tags');
  clear(tags);
  if (Number(it.data.channels) === 2) {
    for (let ch = 0; ch < 2; ch++) tags.append(el('span', { class: 'wave-tag wave-tag-' + ch, text: channelLabel(ch) }));
  }
  const url = api.audioUrl(it.id);
  $('download').href = url;
  $('download').setAttribute('download', typeof it.data.name === 'string' ? it.data.name : 'recording');
  $('time-cur').textContent = fmtClock(0);
  $('time-dur').textContent = fmtClock(it.data.duration_s);
  try {
    it.player = createPlayer({
      container: $('waveform'),
      media: audio,
      url,
      findings: it.findings,
      channels: Number(it.data.channels) || 1,
      cb: {
        onReady: (dur) => {
          if (token !== it.token) return;
          $('play-btn').disabled = false;
          if (Number.isFinite(dur) && dur > 0) $('time-dur').textContent = fmtClock(dur);
        },
        onTime: (t) => {
          if (token !== it.token) return;
          $('time-cur').textContent = fmtClock(t);
          markNow(t);
        },
        onPlayState: (playing) => token === it.token && setPlayIcon(playing),
        onError: (msg) => {
          if (token !== it.token) return;
          const m = $('wave-msg');
          m.hidden = false;
          m.textContent = 'The browser cannot show or play this recording (' + (it.data.audio_type || 'unknown type') +
            '): ' + msg + '. Download it to listen.';
        },
        onRegion: (i) => playFinding(i),
      },
    });
  } catch (err) {
    $('wave-msg').hidden = false;
    $('wave-msg').textContent = 'The player could not start: ' + err.message;
  }
}

function setPlayIcon(playing) {
  const b = $('play-btn');
  b.classList.toggle('playing', playing);
  b.setAttribute('aria-label', playing ? 'Pause' : 'Play');
}

export function togglePlay() {
  if (it.player) it.player.toggle();
}

export function playFinding(i) {
  const f = it.findings[i];
  if (!f || typeof f.start_s !== 'number') return;
  it.current = i;
  for (const li of $('findings').children) li.classList.toggle('current', Number(li.dataset.index) === i);
  for (const m of $('transcript').querySelectorAll('.hl')) {
    m.classList.toggle('current', m.dataset.finding === String(i));
  }
  if (it.player) it.player.seekAndPlay(f.start_s);
  it.hooks.status('Playing finding ' + (i + 1) + ' from ' + fmtClock(f.start_s, 2));
}

/** n / p: the next or previous finding in time from where we are. */
export function stepFinding(delta) {
  if (!it.findings.length) return;
  const order = it.findings.map((f, i) => i).filter((i) => typeof it.findings[i].start_s === 'number')
    .sort((a, b) => it.findings[a].start_s - it.findings[b].start_s || a - b);
  if (!order.length) return;
  let pos = order.indexOf(it.current);
  pos = pos < 0 ? (delta > 0 ? 0 : order.length - 1) : (pos + delta + order.length) % order.length;
  playFinding(order[pos]);
  const li = $('findings').querySelector(`li[data-index="${order[pos]}"]`);
  if (li) li.scrollIntoView({ block: 'nearest' });
}

// --- findings ------------------------------------------------------------

function span(f) {
  if (typeof f.start_s !== 'number') return '–';
  return fmtClock(f.start_s, 2) + (typeof f.end_s === 'number' ? '–' + fmtClock(f.end_s, 2) : '');
}

function renderFindings() {
  const ol = $('findings');
  clear(ol);
  $('findings-count').textContent = String(it.findings.length);
  if (!it.findings.length) {
    ol.append(el('li', { class: 'muted', text: 'No findings: held for another reason (see the verdict).' }));
    return;
  }
  for (const [i, f] of it.findings.entries()) {
    const seek = el('button', {
      type: 'button', class: 'seek', title: 'Play from ' + fmtClock(f.start_s, 2),
      'aria-label': 'Play finding ' + (i + 1) + ' from ' + fmtClock(f.start_s, 2),
      onclick: () => playFinding(i),
    }, el('span', { class: 'icon-play', 'aria-hidden': 'true' }), el('span', { class: 'mono', text: span(f) }));
    const fa = el('button', {
      type: 'button', class: 'btn btn-quiet btn-sm fa-btn', text: 'False alarm',
      title: 'Record that this finding is wrong', onclick: () => openFalseAlarm(i),
    });
    const li = el('li', { class: 'finding sev-line-' + (f.severity || 'none'), dataset: { index: String(i) } },
      seek,
      el('div', { class: 'finding-body' },
        el('div', { class: 'finding-top' },
          sevBadge(f.severity),
          el('span', { class: 'finding-cat', text: f.category || '–' }),
          el('span', { class: 'muted', text: f.type || '' }),
          el('span', { class: 'finding-conf', title: 'Confidence', text: 'confidence ' + fmtConfidence(f.confidence) })),
        typeof f.evidence === 'string' && f.evidence
          ? el('q', { class: 'finding-ev', text: f.evidence })
          : el('span', { class: 'finding-ev muted', text: 'no evidence text' }),
        el('div', { class: 'finding-rule muted' }, 'rule ', el('code', { text: f.rule || '–' }))),
      fa);
    ol.append(li);
  }
}

// --- transcript ----------------------------------------------------------

function coverage(w) {
  const out = [];
  for (const [i, f] of it.findings.entries()) {
    if (typeof f.start_s !== 'number' || typeof f.end_s !== 'number') continue;
    if (typeof f.channel === 'number' && typeof w.channel === 'number' && f.channel !== w.channel) continue;
    if (w.start_s < f.end_s - EPS && w.end_s > f.start_s + EPS) out.push(i);
  }
  // the finding a click plays: the most severe, then the narrowest
  out.sort((a, b) => sevRank(it.findings[b].severity) - sevRank(it.findings[a].severity) ||
    (it.findings[a].end_s - it.findings[a].start_s) - (it.findings[b].end_s - it.findings[b].start_s) || a - b);
  return out;
}

/** Words as text; runs covered by the same finding as one clickable mark. */
function renderWords(container, words) {
  let run = null;
  let runKey = null;
  for (const w of words) {
    const cov = coverage(w);
    const key = cov.length ? cov.join(',') : null;
    const word = el('span', {
      class: 'w' + (typeof w.conf === 'number' && w.conf < 0.5 ? ' low-conf' : ''),
      title: fmtClock(w.start_s, 2) + (typeof w.conf === 'number' ? ' · ' + Math.round(w.conf * 100) + '% sure' : ''),
      text: w.w,
    });
    word.addEventListener('click', () => {
      // inside a mark the mark's own handler plays the finding
      if (word.parentElement && word.parentElement.classList.contains('hl')) return;
      if (it.player) it.player.seekAndPlay(w.start_s);
    });
    it.words.push({ w, el: word });
    if (key === null) {
      run = null;
      runKey = null;
      container.append(word, ' ');
      continue;
    }
    if (key !== runKey) {
      const primary = cov[0];
      const f = it.findings[primary];
      const label = cov.map((i) => {
        const x = it.findings[i];
        return (x.severity || '?') + ' ' + (x.category || '') + ' (' + (x.rule || '') + ')';
      }).join('; ');
      run = el('mark', {
        class: 'hl sev-' + (f.severity || 'none') + (cov.length > 1 ? ' multi' : ''),
        role: 'button', tabindex: '0', title: label,
        'aria-label': 'Finding ' + (primary + 1) + ': ' + label + '. Play from ' + fmtClock(f.start_s, 2),
        dataset: { finding: String(primary) },
      });
      run.addEventListener('click', (ev) => {
        ev.stopPropagation();
        playFinding(primary);
      });
      run.addEventListener('keydown', (ev) => {
        if (ev.key === 'Enter' || ev.key === ' ') {
          ev.preventDefault();
          ev.stopPropagation();
          playFinding(primary);
        }
      });
      container.append(run, ' ');
      runKey = key;
    } else {
      run.append(' ');
    }
    run.append(word);
  }
}

function channelLabel(ch) {
  const meta = it.data.metadata && typeof it.data.metadata === 'object' ? it.data.metadata : {};
  const agent = Number.isInteger(meta.agent_channel) ? meta.agent_channel
    : Number.isInteger(it.data.agent_channel) ? it.data.agent_channel : null;
  const base = 'Channel ' + (ch + 1);
  if (agent === null) return base;
  return base + (ch === agent ? ' · agent' : ' · caller');
}

function renderTranscript() {
  const box = $('transcript');
  clear(box);
  it.words = [];
  it.nowWord = null;
  const tr = it.data.transcript && typeof it.data.transcript === 'object' ? it.data.transcript : {};
  const words = (Array.isArray(tr.words) ? tr.words : [])
    .filter((w) => w && typeof w.w === 'string' && typeof w.start_s === 'number' && typeof w.end_s === 'number')
    .sort((a, b) => a.start_s - b.start_s);
  const note = $('transcript-note');
  const channels = Number(it.data.channels) || 1;
  const stereo = channels > 1 && words.some((w) => typeof w.channel === 'number');
  note.textContent = words.length
    ? 'Marked words are what the findings cover; click one to play it. Faint words were recognised with low confidence.'
    : '';
  if (!words.length) {
    box.append(el('p', { class: 'muted', text: typeof tr.text === 'string' && tr.text ? tr.text : 'No words were recognised.' }));
    return;
  }
  if (!stereo) {
    const p = el('p', { class: 'words' });
    renderWords(p, words);
    box.append(p);
  } else {
    const transcribed = Array.isArray(tr.channels) ? tr.channels : null;
    const lanes = el('div', { class: 'lanes' });
    for (let ch = 0; ch < channels; ch++) {
      const mine = words.filter((w) => w.channel === ch);
      const p = el('p', { class: 'words' });
      if (mine.length) renderWords(p, mine);
      else {
        p.append(el('span', {
          class: 'muted',
          text: transcribed && !transcribed.includes(ch) ? 'Not transcribed.' : 'No words recognised.',
        }));
      }
      lanes.append(el('div', { class: 'lane' }, el('h3', { class: 'lane-label', text: channelLabel(ch) }), p));
    }
    box.append(lanes);
    it.words.sort((a, b) => a.w.start_s - b.w.start_s);
  }
}

function markNow(t) {
  // the word being heard; words are few, a linear scan is fine
  let hit = null;
  for (const x of it.words) {
    if (x.w.start_s <= t && t < x.w.end_s) {
      hit = x.el;
      break;
    }
  }
  if (hit === it.nowWord) return;
  if (it.nowWord) it.nowWord.classList.remove('now');
  if (hit) hit.classList.add('now');
  it.nowWord = hit;
}

// --- facts, metadata, history ---------------------------------------------

function kvRow(k, v, cls) {
  return el('tr', {}, el('th', { scope: 'row', text: k }), el('td', { class: cls || null }, v));
}

function renderFacts() {
  const d = it.data;
  const t = $('facts');
  clear(t);
  const audio = d.audio && typeof d.audio === 'object' ? d.audio : {};
  const rows = [
    ['ID', d.id || it.id, 'mono'],
    ['Verdict', d.verdict],
    ['State', d.state],
    ['Duration', fmtDuration(d.duration_s)],
    ['Channels', d.channels],
    ['Sample rate', typeof d.sample_rate === 'number' ? d.sample_rate + ' Hz' : d.sample_rate],
    ['Type', d.audio_type],
    ['Size', typeof audio.bytes === 'number' ? fmtBytes(audio.bytes) + ' (' + audio.bytes.toLocaleString() + ' bytes)' : null],
    ['SHA-256', audio.sha256, 'mono hash'],
    ['Screened', d.screened_at ? fmtWhen(d.screened_at) : null],
    ['Claimed', d.claimed_at ? fmtWhen(d.claimed_at) : null],
    ['Screener', d.version ? 'vmscreen ' + d.version : null],
  ];
  for (const [k, v, cls] of rows) {
    if (v === undefined || v === null || v === '') continue;
    t.append(kvRow(k, jsonText(v), cls));
  }
}

function renderMetadata() {
  const t = $('metadata');
  clear(t);
  const meta = it.data.metadata && typeof it.data.metadata === 'object' && !Array.isArray(it.data.metadata)
    ? it.data.metadata : {};
  const keys = Object.keys(meta);
  $('metadata-empty').hidden = keys.length > 0;
  for (const k of keys) t.append(kvRow(k, jsonText(meta[k]), typeof meta[k] === 'string' ? null : 'mono'));
}

function renderHistory() {
  const ol = $('history');
  clear(ol);
  const hist = Array.isArray(it.data.review) ? it.data.review.filter((r) => r && typeof r === 'object') : [];
  $('history-empty').hidden = hist.length > 0;
  for (const r of hist) {
    ol.append(el('li', { class: 'hist' },
      el('div', { class: 'hist-top' },
        el('strong', { class: 'hist-action', text: r.action || '?' }),
        r.from && r.to ? el('span', { class: 'muted', text: r.from + ' → ' + r.to }) : null,
        el('span', { class: 'muted', text: fmtWhen(r.at) })),
      el('div', { class: 'hist-by', text: 'by ' + (r.by || 'unknown') + (r.via ? ' via ' + r.via : '') }),
      r.reason ? el('blockquote', { class: 'hist-reason', text: r.reason }) : null));
  }
}

// --- decision ------------------------------------------------------------

function renderDecision() {
  const state = it.data.state;
  const rel = $('release-btn');
  const rej = $('reject-btn');
  const msg = $('decide-state');
  $('decide-buttons').hidden = false;
  rel.hidden = !(state === 'hold' || state === 'rejected');
  rej.hidden = state !== 'hold';
  $('decide-buttons').hidden = rel.hidden && rej.hidden;
  msg.textContent = state === 'hold'
    ? 'Release sends the recording on; reject keeps it from being delivered.'
    : state === 'rejected' ? 'Rejected. It may still be released.' : 'Released: no decision left to take.';
  closeDecision();
}

export function openDecision(action) {
  if (!it.data) return;
  const allowed = action === 'release' ? !$('release-btn').hidden : !$('reject-btn').hidden;
  if (!allowed) return;
  it.decision = action;
  $('decide-form').hidden = false;
  $('decide-form').dataset.action = action;
  $('reason-label').textContent = action === 'release' ? 'Reason for releasing' : 'Reason for rejecting';
  $('decide-submit').textContent = action === 'release' ? 'Release' : 'Reject';
  $('decide-submit').className = 'btn ' + (action === 'release' ? 'btn-release' : 'btn-reject');
  $('decide-error').hidden = true;
  $('release-btn').setAttribute('aria-pressed', action === 'release' ? 'true' : 'false');
  $('reject-btn').setAttribute('aria-pressed', action === 'reject' ? 'true' : 'false');
  reasonChanged();
  $('reason').focus();
}

export function decisionOpen() {
  return it.decision !== null;
}

export function closeDecision() {
  it.decision = null;
  $('decide-form').hidden = true;
  $('reason').value = '';
  $('release-btn').setAttribute('aria-pressed', 'false');
  $('reject-btn').setAttribute('aria-pressed', 'false');
  reasonChanged();
}

function reasonChanged() {
  const v = $('reason').value;
  const n = utf8Length(v);
  $('decide-submit').disabled = !v.trim() || n > 1000;
  $('reason-count').textContent = n > 800 ? n + ' / 1000 bytes' : '';
}

// Why a decision was not carried out, in words.  A 409 with "changed" is a
// stale page: someone else decided the item after it was opened here.
function decisionError(err) {
  const d = err.data || {};
  if (err.status === 409 && d.changed) {
    const what = err.message.replace(/^[^:]*: changed since you looked at it: /, '');
    return 'Not done: this item changed after you opened it (' + what +
      '). Reload it to see its state before deciding.';
  }
  if (err.status === 409) return 'This item is no longer held: someone may have decided it already. Reload it to see its state.';
  if (err.status === 404) return 'This item is gone (decided elsewhere?).';
  return 'Not done: ' + err.message;
}

async function submitDecision() {
  const action = it.decision;
  const reason = $('reason').value.trim();
  if (!action || !reason) return;
  const id = it.id;
  const name = it.data.name;
  $('decide-submit').disabled = true;
  $('decide-error').hidden = true;
  let res;
  try {
    res = await api.decide(id, action, reason, it.data.version);
  } catch (err) {
    if (id !== it.id) return;
    const e = $('decide-error');
    e.hidden = false;
    e.textContent = decisionError(err);
    reasonChanged();
    return;
  }
  it.hooks.decided(id, action, name, !!(res && res.already));
}

// --- false alarms --------------------------------------------------------

function openFalseAlarm(i) {
  const f = it.findings[i];
  if (!f) return;
  it.faIndex = i;
  const what = $('fa-what');
  clear(what);
  append(what, [
    'Finding ' + (i + 1) + ': ', sevBadge(f.severity), ' ', f.category || '', ' · ',
    el('code', { text: f.rule || '–' }), ' · ', el('q', { text: f.evidence || '' }),
  ]);
  $('fa-note').value = '';
  $('fa-submit').disabled = true;
  $('fa-error').hidden = true;
  $('fa-dialog').showModal();
  $('fa-note').focus();
}

async function submitFalseAlarm() {
  const i = it.faIndex;
  const note = $('fa-note').value.trim();
  if (i === null || !note) return;
  $('fa-submit').disabled = true;
  try {
    await api.falseAlarm(it.id, i, note);
  } catch (err) {
    $('fa-error').hidden = false;
    $('fa-error').textContent = 'Not recorded: ' + err.message;
    $('fa-submit').disabled = false;
    return;
  }
  $('fa-dialog').close();
  const li = $('findings').querySelector(`li[data-index="${i}"]`);
  if (li && !li.querySelector('.fa-done')) {
    li.querySelector('.finding-top').append(el('span', { class: 'tag fa-done', text: 'false alarm noted' }));
  }
  it.hooks.status('False alarm recorded for finding ' + (i + 1) + '.');
}

export function dialogOpen() {
  return $('fa-dialog').open || $('help').open;
}
