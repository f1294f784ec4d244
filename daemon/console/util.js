// Small DOM and formatting helpers for the reviewer console.
//
// Everything that came from the server (file names, transcripts, evidence,
// reasons, metadata) enters the page through el()/text nodes: textContent
// and createElement only, never innerHTML.

/** Create an element.  props: class, text, dataset, on<event>, or attributes. */
export function el(tag, props = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = String(v);
    else if (k === 'dataset') Object.assign(e.dataset, v);
    else if (k.startsWith('on')) {
      if (typeof v !== 'function') throw new Error('el(): ' + k + ' takes a function, never text');
      e.addEventListener(k.slice(2), v);
    } else if (k === 'style') throw new Error('el(): no style attributes (CSP); use classes');
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  append(e, kids);
  return e;
}

/** Append children: nodes as they are, anything else as a text node. */
export function append(parent, kids) {
  for (const kid of [kids].flat(Infinity)) {
    if (kid === undefined || kid === null || kid === false) continue;
    parent.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
  }
  return parent;
}

export function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
  return node;
}

export const $ = (id) => document.getElementById(id);

export const SEVERITY_RANK = { low: 1, medium: 2, high: 3 };

export function sevRank(s) {
  return SEVERITY_RANK[s] || 0;
}

/** A severity badge; unknown severities are shown as they are, neutral. */
export function sevBadge(sev) {
  if (sev === null || sev === undefined || sev === '') {
    return el('span', { class: 'badge badge-none', text: 'none' });
  }
  const known = Object.prototype.hasOwnProperty.call(SEVERITY_RANK, sev);
  return el('span', { class: 'badge ' + (known ? 'sev-' + sev : 'badge-none'), text: String(sev) });
}

/** 83.4 -> "1:23.4" (tenths), for the player and the spans of findings. */
export function fmtClock(s, digits = 1) {
  if (typeof s !== 'number' || !Number.isFinite(s) || s < 0) return '–';
  const m = Math.floor(s / 60);
  const rest = s - m * 60;
  const sec = rest.toFixed(digits);
  return m + ':' + (rest < 10 ? '0' : '') + sec;
}

/** 3.06 -> "3.1 s", 83 -> "1:23". */
export function fmtDuration(s) {
  if (typeof s !== 'number' || !Number.isFinite(s)) return '–';
  if (s < 60) return s.toFixed(1) + ' s';
  return fmtClock(s, 0);
}

/** Milliseconds of age -> "12 min", "3 h 04 min", "2 d 3 h". */
export function fmtAge(ms) {
  if (!Number.isFinite(ms)) return '–';
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return '< 1 min';
  const m = Math.floor(s / 60);
  if (m < 60) return m + ' min';
  const h = Math.floor(m / 60);
  if (h < 24) return h + ' h ' + String(m % 60).padStart(2, '0') + ' min';
  const d = Math.floor(h / 24);
  return d + ' d ' + (h % 24) + ' h';
}

export function parseTime(iso) {
  const t = Date.parse(iso);
  return Number.isFinite(t) ? t : NaN;
}

/** An ISO time as the reviewer's local date and time. */
export function fmtWhen(iso) {
  const t = parseTime(iso);
  if (!Number.isFinite(t)) return iso ? String(iso) : '–';
  return new Date(t).toLocaleString(undefined, {
    year: 'numeric', month: 'short', day: 'numeric',
    hour: '2-digit', minute: '2-digit', second: '2-digit',
  });
}

export function fmtBytes(n) {
  if (typeof n !== 'number' || !Number.isFinite(n)) return '–';
  if (n < 1024) return n + ' B';
  if (n < 1024 * 1024) return (n / 1024).toFixed(1) + ' KiB';
  return (n / 1024 / 1024).toFixed(2) + ' MiB';
}

/** Confidence 0..1 as a percentage, "n/a" when absent. */
export function fmtConfidence(c) {
  if (typeof c !== 'number' || !Number.isFinite(c)) return 'n/a';
  return Math.round(c * 100) + '%';
}

/** Any JSON value as one line of text (strings as they are). */
export function jsonText(v) {
  if (typeof v === 'string') return v;
  try {
    return JSON.stringify(v);
  } catch {
    return String(v);
  }
}

/** UTF-8 length, for the 1000-byte limit of reasons and notes. */
export function utf8Length(s) {
  return new TextEncoder().encode(s).length;
}

/** True when a keyboard event comes from a place where the user types. */
export function isTyping(ev) {
  const t = ev.target;
  if (!(t instanceof Element)) return false;
  if (t.isContentEditable) return true;
  const tag = t.tagName;
  if (tag === 'TEXTAREA' || tag === 'SELECT') return true;
  if (tag === 'INPUT') {
    const type = (t.getAttribute('type') || 'text').toLowerCase();
    return !['button', 'submit', 'reset', 'checkbox', 'radio', 'range', 'color'].includes(type);
  }
  return false;
}
