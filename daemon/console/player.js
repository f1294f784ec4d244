// The waveform player: wavesurfer.js v7 (vendored at build time into
// /console/vendor/) on our own <audio> element, findings as regions.
import WaveSurfer from '/console/vendor/wavesurfer.esm.js';
import RegionsPlugin from '/console/vendor/regions.esm.js';

export const WAVE_HEIGHT = 96;

// wavesurfer v7 writes these rules as a <style> into its shadow root; the
// console's CSP (style-src 'self') refuses that element, so the same rules
// are given again as a constructed stylesheet, which CSP does not govern.
// Without them the canvases are not positioned and the progress overlay is
// not clipped.  (Harmless duplicates if the <style> was allowed.)
const SHADOW_CSS = `
:host { user-select: none; min-width: 1px; }
:host audio { display: block; width: 100%; }
:host .scroll { overflow-x: auto; overflow-y: hidden; width: 100%; position: relative; }
:host .noScrollbar { scrollbar-color: transparent; scrollbar-width: none; }
:host .noScrollbar::-webkit-scrollbar { display: none; -webkit-appearance: none; }
:host .wrapper { position: relative; overflow: visible; z-index: 2; }
:host .canvases { min-height: ${WAVE_HEIGHT}px; pointer-events: none; }
:host .canvases > div { position: relative; }
:host canvas { display: block; position: absolute; top: 0; image-rendering: pixelated; }
:host .progress { pointer-events: none; position: absolute; z-index: 2; top: 0; left: 0; width: 0;
  height: 100%; overflow: hidden; }
:host .progress > div { position: relative; }
:host .cursor { pointer-events: none; position: absolute; z-index: 5; top: 0; left: 0; height: 100%;
  border-radius: 2px; }
`;

let shadowSheet = null;

function adoptShadowStyles(ws) {
  try {
    const root = ws.getWrapper().getRootNode();
    if (!(root instanceof ShadowRoot) || !('adoptedStyleSheets' in root)) return;
    if (!shadowSheet) {
      shadowSheet = new CSSStyleSheet();
      shadowSheet.replaceSync(SHADOW_CSS);
    }
    if (!root.adoptedStyleSheets.includes(shadowSheet)) {
      root.adoptedStyleSheets = [...root.adoptedStyleSheets, shadowSheet];
    }
  } catch {
    // an older browser: the console's own ::part() rules still apply
  }
}

const REGION_COLOURS = {
  high: 'rgba(201, 52, 39, 0.20)',
  medium: 'rgba(214, 140, 20, 0.22)',
  low: 'rgba(52, 110, 190, 0.18)',
};

/**
 * A player on container for url, using the <audio> element media.
 * cb: onReady(duration), onTime(t), onPlayState(playing), onError(message),
 * onRegion(index).
 */
export function createPlayer({ container, media, url, findings, channels = 1, cb }) {
  // a stereo call: one lane per channel (agent and caller), the same total
  // height (the shadow <style> text, and so its CSP hash, stays the same)
  const split = channels === 2 ? [
    { height: WAVE_HEIGHT / 2, waveColor: '#9aa6b8', progressColor: '#3b5bdb' },
    { height: WAVE_HEIGHT / 2, waveColor: '#b3a58f', progressColor: '#8a5a00' },
  ] : undefined;
  const ws = WaveSurfer.create({
    splitChannels: split,
    container,
    media,
    url,
    height: WAVE_HEIGHT,
    waveColor: '#9aa6b8',
    progressColor: '#3b5bdb',
    cursorColor: '#1d2430',
    cursorWidth: 2,
    barWidth: 2,
    barGap: 1,
    barRadius: 1,
    normalize: true,
    dragToSeek: true,
    autoScroll: true,
    fetchParams: { credentials: 'same-origin', cache: 'no-store' },
  });
  adoptShadowStyles(ws);
  const regions = ws.registerPlugin(RegionsPlugin.create());
  let ready = false;
  let pending = null;

  ws.on('ready', (duration) => {
    ready = true;
    for (const [i, f] of findings.entries()) {
      if (typeof f.start_s !== 'number' || typeof f.end_s !== 'number') continue;
      regions.addRegion({
        id: 'f' + i,
        start: f.start_s,
        end: Math.max(f.end_s, f.start_s + 0.02),
        color: REGION_COLOURS[f.severity] || 'rgba(120, 120, 120, 0.18)',
        drag: false,
        resize: false,
      });
    }
    cb.onReady(duration);
    if (pending) {
      const p = pending;
      pending = null;
      p();
    }
  });
  regions.on('region-clicked', (region, ev) => {
    ev.stopPropagation();
    const i = Number(String(region.id).slice(1));
    if (Number.isInteger(i)) cb.onRegion(i);
  });
  ws.on('timeupdate', (t) => cb.onTime(t));
  ws.on('play', () => cb.onPlayState(true));
  ws.on('pause', () => cb.onPlayState(false));
  ws.on('finish', () => cb.onPlayState(false));
  ws.on('error', (err) => cb.onError(err && err.message ? err.message : String(err)));

  const whenReady = (fn) => {
    if (ready) fn();
    else pending = fn;
  };
  return {
    ws,
    isReady: () => ready,
    toggle: () => whenReady(() => ws.playPause().catch((e) => cb.onError(e.message))),
    play: () => whenReady(() => ws.play().catch((e) => cb.onError(e.message))),
    seekAndPlay: (t) => whenReady(() => {
      ws.setTime(t);
      ws.play().catch((e) => cb.onError(e.message));
    }),
    setRate: (r) => ws.setPlaybackRate(r, true),
    currentTime: () => ws.getCurrentTime(),
    isPlaying: () => ws.isPlaying(),
    destroy: () => {
      try {
        ws.destroy();
      } catch {
        // already gone
      }
    },
  };
}
