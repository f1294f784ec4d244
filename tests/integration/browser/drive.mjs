// Drives Debian's chromium (headless, puppeteer-core) through the reviewer
// console of a real vmscreend, the way a reviewer would, for
// tests/integration/test_console.py.  It asserts nothing about the server's
// files: it acts and reports what the browser saw as one JSON object on
// stdout; the Python side judges it.  A step that cannot be done (a
// selector that never appears) ends the run with {"error": ...} and exit 1.
//
//   node drive.mjs   with a JSON plan on stdin:
//   {"base": "http://127.0.0.1:PORT", "chromium": "/usr/bin/chromium",
//    "user": "alice", "password": "...", "target": "a.wav",
//    "hostile": "<img src=x onerror=alert(1)>.wav", "expect": ["a.wav", ...],
//    "reason": "...", "screenshots": "DIR" or null}
import puppeteer from 'puppeteer-core';
import { readFileSync } from 'node:fs';
import path from 'node:path';

const plan = JSON.parse(readFileSync(0, 'utf8'));
const out = {
  steps: [],
  console: [],      // every console message: {type, text, url}
  pageErrors: [],
  dialogs: [],
  violations: [],   // securitypolicyviolation events: {directive, blocked, sample}
  responses: [],    // {url, status} of every answer
};
const STEP_MS = 20000;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function step(name) {
  out.steps.push(name);
  process.stderr.write('drive: ' + name + '\n');
}

let browser;
try {
  browser = await puppeteer.launch({
    executablePath: plan.chromium,
    headless: true,
    args: ['--no-sandbox', '--mute-audio', '--autoplay-policy=no-user-gesture-required',
      '--no-first-run', '--disable-background-networking', '--disable-component-update'],
    protocolTimeout: 60000,
  });
  const page = await browser.newPage();
  page.setDefaultTimeout(STEP_MS);
  await page.setViewport({ width: 1280, height: 800 });
  page.on('console', (m) => {
    const loc = m.location() || {};
    out.console.push({ type: m.type(), text: m.text(), url: loc.url || '' });
  });
  page.on('pageerror', (e) => out.pageErrors.push(String(e && e.message ? e.message : e)));
  page.on('dialog', async (d) => {
    out.dialogs.push({ type: d.type(), message: d.message() });
    await d.dismiss();
  });
  page.on('response', (r) => out.responses.push({ url: r.url(), status: r.status() }));
  await page.evaluateOnNewDocument(() => {
    window.__violations = [];
    document.addEventListener('securitypolicyviolation', (e) => {
      window.__violations.push({
        directive: e.effectiveDirective || e.violatedDirective,
        blocked: e.blockedURI,
        sample: e.sample,
      });
    }, true);
  });
  const shot = async (name) => {
    if (!plan.screenshots) return;
    await sleep(400); // let the waveform settle
    await page.evaluate(() => {
      document.getElementById('status').classList.remove('visible');
      if (document.activeElement) document.activeElement.blur();
    });
    await sleep(250); // the toast fades
    await page.screenshot({ path: path.join(plan.screenshots, name) });
  };
  const visible = (sel) => page.waitForSelector(sel, { visible: true });
  const queueNames = () => page.$$eval('#queue-body tr .c-name a', (as) => as.map((a) => a.textContent));
  const collect = async () => {
    out.violations.push(...await page.evaluate(() => window.__violations.splice(0)));
  };

  step('open the console');
  const first = await page.goto(plan.base + '/', { waitUntil: 'networkidle0' });
  out.csp = first.headers()['content-security-policy'] || null;
  await visible('#login-form');

  if (plan.mode === 'lockout') {
    // wrong passwords until the server says 429: the page says how long
    out.attempts = [];
    for (let i = 0; i < 10; i++) {
      step('wrong password ' + (i + 1));
      await page.$eval('#login-user', (e) => { e.value = ''; });
      await page.type('#login-user', plan.user);
      await page.type('#login-password', 'not the password ' + i);
      await page.click('#login-submit');
      await page.waitForFunction(() => !document.getElementById('login-error').hidden &&
        !document.getElementById('login-submit').textContent.includes('…'));
      const a = await page.evaluate(() => ({
        error: document.getElementById('login-error').textContent,
        disabled: document.getElementById('login-submit').disabled,
      }));
      out.attempts.push(a);
      if (a.disabled) break;
    }
    await sleep(2200);
    out.later = await page.$eval('#login-error', (e) => e.textContent);
    out.ok = true;
    throw null; // done: to the report
  }

  step('wrong password');
  await page.type('#login-user', plan.user);
  await page.type('#login-password', plan.password + '-wrong');
  await page.click('#login-submit');
  await page.waitForFunction(() => !document.getElementById('login-error').hidden &&
    document.getElementById('login-error').textContent.length > 0);
  out.loginError = await page.$eval('#login-error', (e) => e.textContent);
  out.queueShownAfterWrong = await page.$eval('#view-queue', (e) => !e.hidden);

  step('right password');
  await page.type('#login-password', plan.password);
  await page.click('#login-submit');
  await visible('#view-queue');
  await page.waitForFunction((n) => document.querySelectorAll('#queue-body tr').length >= n, {},
    plan.expect.length);
  out.user = await page.$eval('#who-name', (e) => e.textContent);
  out.queue = await queueNames();
  out.queueCount = await page.$eval('#queue-count', (e) => e.textContent);
  out.imgs = await page.evaluate(() => document.querySelectorAll('img').length);
  await shot('console-queue.png');

  step('the hostile name is text');
  out.hostile = await page.evaluate((name) => {
    const a = [...document.querySelectorAll('#queue-body .c-name a')].find((x) => x.textContent === name);
    return a ? { text: a.textContent, children: a.children.length } : null;
  }, plan.hostile);
  // open it (a click on its row), look at its page, go back with Esc
  await page.evaluate((name) => {
    const a = [...document.querySelectorAll('#queue-body .c-name a')].find((x) => x.textContent === name);
    a.closest('tr').querySelector('.c-age').click();
  }, plan.hostile);
  await visible('#view-item');
  await page.waitForFunction((name) => document.getElementById('item-title').textContent === name, {},
    plan.hostile);
  await page.waitForSelector('#metadata tr');
  out.hostileItem = await page.evaluate(() => ({
    title: document.getElementById('item-title').textContent,
    metadata: [...document.querySelectorAll('#metadata tr')].map((tr) => [tr.cells[0].textContent,
      tr.cells[1].textContent, tr.cells[1].children.length]),
    imgs: document.querySelectorAll('img').length,
  }));
  await page.keyboard.press('Escape');
  await visible('#view-queue');
  await page.waitForSelector('#queue-body tr');

  if (plan.stereo) {
    step('a stereo item: one transcript lane per channel');
    await page.evaluate((name) => {
      const a = [...document.querySelectorAll('#queue-body .c-name a')].find((x) => x.textContent === name);
      a.click();
    }, plan.stereo);
    await page.waitForFunction((name) => document.getElementById('item-title').textContent === name &&
      document.querySelectorAll('#transcript .lane').length > 0, {}, plan.stereo);
    out.stereo = await page.$$eval('#transcript .lane', (ls) => ls.map((l) => ({
      label: l.querySelector('.lane-label').textContent,
      words: l.querySelectorAll('.w').length,
    })));
    out.stereoWaveTags = await page.$$eval('#wave-tags .wave-tag', (ts) => ts.map((t) => t.textContent));
    await page.click('#item-back');
    await visible('#view-queue');
    await page.waitForSelector('#queue-body tr');
  }

  step('keyboard: j/k to the target, Enter');
  const selected = () => page.evaluate(() => {
    const tr = document.querySelector('#queue-body tr.selected');
    return tr ? tr.querySelector('.c-name a').textContent : null;
  });
  await page.evaluate(() => document.activeElement && document.activeElement.blur());
  let seen = [];
  for (let i = 0; i < out.queue.length + 1 && (await selected()) !== plan.target; i++) {
    await page.keyboard.press('j');
    seen.push(await selected());
  }
  if ((await selected()) !== plan.target) {
    // it may be above the selection: go up
    for (let i = 0; i < out.queue.length + 1 && (await selected()) !== plan.target; i++) {
      await page.keyboard.press('k');
      seen.push(await selected());
    }
  }
  out.keyboardSelection = seen;
  await page.keyboard.press('Enter');
  await visible('#view-item');
  await page.waitForFunction((name) => document.getElementById('item-title').textContent === name, {},
    plan.target);
  out.itemHash = await page.evaluate(() => location.hash);
  const id = decodeURIComponent(out.itemHash.replace(/^#\/item\//, ''));
  // the verdict as the API gives it, for the findings' start_s
  out.item = await page.evaluate(async (itemId) => {
    const r = await fetch('/api/items/' + encodeURIComponent(itemId), { credentials: 'same-origin' });
    return r.json();
  }, id);
  await page.waitForFunction(() => !document.getElementById('play-btn').disabled);
  out.findingsShown = await page.$$eval('#findings li.finding', (lis) => lis.map((li) => ({
    text: li.textContent,
    confidence: li.querySelector('.finding-conf').textContent,
  })));
  out.transcriptMarks = await page.$$eval('#transcript .hl', (ms) => ms.map((m) => ({
    text: m.textContent, finding: Number(m.dataset.finding),
  })));
  out.transcriptText = await page.$eval('#transcript', (e) => e.textContent);
  // wavesurfer's own <style> in its shadow root, and its CSP hash
  out.waveStyle = await page.evaluate(async () => {
    const host = document.querySelector('#waveform > div');
    const st = host && host.shadowRoot && host.shadowRoot.querySelector('style');
    if (!st) return null;
    const d = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(st.textContent));
    const hash = 'sha256-' + btoa(String.fromCharCode(...new Uint8Array(d)));
    const canvas = host.shadowRoot.querySelector('canvas');
    const progress = host.shadowRoot.querySelector('.progress');
    return {
      hash,
      canvasPosition: canvas ? getComputedStyle(canvas).position : null,
      progressPosition: progress ? getComputedStyle(progress).position : null,
      progressOverflow: progress ? getComputedStyle(progress).overflow : null,
    };
  });

  step('play');
  await page.evaluate(() => {
    const a = document.getElementById('player-audio');
    window.__seeks = [];
    a.addEventListener('seeked', () => window.__seeks.push(a.currentTime));
  });
  const t0 = await page.$eval('#player-audio', (a) => a.currentTime);
  await page.click('#play-btn');
  await page.waitForFunction(() => !document.getElementById('player-audio').paused);
  await sleep(700);
  const t1 = await page.$eval('#player-audio', (a) => a.currentTime);
  await sleep(300);
  const t2 = await page.$eval('#player-audio', (a) => a.currentTime);
  out.play = { t0, t1, t2, label: await page.$eval('#play-btn', (b) => b.getAttribute('aria-label')) };

  step('Space pauses');
  await page.evaluate(() => document.activeElement && document.activeElement.blur());
  await page.keyboard.press('Space');
  await page.waitForFunction(() => document.getElementById('player-audio').paused);
  out.pausedBySpace = true;

  step('click each finding in the list');
  out.seeks = [];
  const nFindings = out.findingsShown.length;
  for (let i = 0; i < nFindings; i++) {
    await page.evaluate(() => { window.__seeks = []; });
    await page.click(`#findings li[data-index="${i}"] button.seek`);
    await page.waitForFunction(() => window.__seeks.length > 0);
    const s = await page.evaluate(() => window.__seeks[window.__seeks.length - 1]);
    const playing = await page.$eval('#player-audio', (a) => !a.paused);
    out.seeks.push({ via: 'list', finding: i, at: s, playing });
  }

  step('click a finding in the transcript');
  if (out.transcriptMarks.length) {
    await page.evaluate(() => {
      window.__seeks = [];
      document.getElementById('player-audio').pause();
    });
    const m = out.transcriptMarks[out.transcriptMarks.length - 1];
    const marks = await page.$$('#transcript .hl');
    await marks[marks.length - 1].click();
    await page.waitForFunction(() => window.__seeks.length > 0);
    out.seeks.push({
      via: 'transcript', finding: m.finding,
      at: await page.evaluate(() => window.__seeks[window.__seeks.length - 1]),
      playing: await page.$eval('#player-audio', (a) => !a.paused),
    });
  }

  step('n: next finding');
  await page.evaluate(() => {
    window.__seeks = [];
    document.activeElement && document.activeElement.blur();
  });
  await page.keyboard.press('n');
  await page.waitForFunction(() => window.__seeks.length > 0);
  out.seeks.push({ via: 'key n', at: await page.evaluate(() => window.__seeks[window.__seeks.length - 1]) });
  await page.evaluate(() => document.getElementById('player-audio').pause());

  step('a false alarm on the first finding');
  await page.click('#findings li[data-index="0"] .fa-btn');
  await page.waitForFunction(() => document.getElementById('fa-dialog').open);
  out.faSubmitDisabledEmpty = await page.$eval('#fa-submit', (b) => b.disabled);
  await page.type('#fa-note', plan.note);
  await page.click('#fa-submit');
  await page.waitForFunction(() => !document.getElementById('fa-dialog').open &&
    document.querySelector('#findings li[data-index="0"] .fa-done'));
  out.faNoted = await page.$eval('#findings li[data-index="0"] .fa-done', (e) => e.textContent);

  step('help with ?');
  await page.keyboard.press('?');
  await page.waitForFunction(() => document.getElementById('help').open);
  await page.keyboard.press('Escape');
  await page.waitForFunction(() => !document.getElementById('help').open);
  // Escape closed the dialog only: still on the item page
  out.itemAfterHelp = await page.$eval('#view-item', (e) => !e.hidden);

  step('item screenshot');
  await page.evaluate(() => {
    const a = document.getElementById('player-audio');
    a.currentTime = Math.min(1.0, a.duration / 2 || 0);
  });
  await shot('console-item.png');

  step('r: release with a reason');
  await page.keyboard.press('r');
  await visible('#decide-form');
  out.reasonFocused = await page.evaluate(() => document.activeElement.id === 'reason');
  out.submitDisabledEmpty = await page.$eval('#decide-submit', (b) => b.disabled);
  // shortcuts are off while typing: these letters go into the box
  await page.type('#reason', 'j');
  out.typedNotShortcut = await page.$eval('#view-item', (e) => !e.hidden);
  await page.$eval('#reason', (t) => { t.value = ''; t.dispatchEvent(new Event('input')); });
  await page.type('#reason', '   ');
  out.submitDisabledBlank = await page.$eval('#decide-submit', (b) => b.disabled);
  await page.$eval('#reason', (t) => { t.value = ''; t.dispatchEvent(new Event('input')); });
  await page.type('#reason', plan.reason);
  out.submitDisabledFilled = await page.$eval('#decide-submit', (b) => b.disabled);
  await page.click('#decide-submit');
  await visible('#view-queue');
  await page.waitForFunction((name) =>
    ![...document.querySelectorAll('#queue-body .c-name a')].some((a) => a.textContent === name),
  {}, plan.target);
  out.statusAfterRelease = await page.$eval('#status', (e) => e.textContent);
  out.queueAfterRelease = await queueNames();

  step('the next refresh still does not show it');
  await page.click('#refresh-btn');
  await sleep(500);
  await page.waitForFunction(() => !document.getElementById('queue-table').hasAttribute('aria-busy'));
  out.queueAfterRefresh = await queueNames();

  step('released tab shows it');
  await page.click('#state-switch button[data-state="released"]');
  await page.waitForFunction((name) =>
    [...document.querySelectorAll('#queue-body .c-name a')].some((a) => a.textContent === name),
  {}, plan.target);
  out.released = await queueNames();

  if (plan.rejectTarget) {
    step('x: reject another with a reason, Ctrl+Enter');
    await page.click('#state-switch button[data-state="hold"]');
    await page.waitForFunction((name) =>
      [...document.querySelectorAll('#queue-body .c-name a')].some((a) => a.textContent === name),
    {}, plan.rejectTarget);
    await page.evaluate((name) => {
      [...document.querySelectorAll('#queue-body .c-name a')].find((a) => a.textContent === name).click();
    }, plan.rejectTarget);
    await page.waitForFunction((name) => document.getElementById('item-title').textContent === name &&
      !document.getElementById('decide-buttons').hidden, {}, plan.rejectTarget);
    await page.evaluate(() => document.activeElement && document.activeElement.blur());
    await page.keyboard.press('x');
    await visible('#decide-form');
    out.rejectLabel = await page.$eval('#reason-label', (e) => e.textContent);
    await page.type('#reason', plan.reason);
    await page.keyboard.down('Control');
    await page.keyboard.press('Enter');
    await page.keyboard.up('Control');
    await visible('#view-queue');
    await page.waitForFunction((name) =>
      ![...document.querySelectorAll('#queue-body .c-name a')].some((a) => a.textContent === name),
    {}, plan.rejectTarget);
    out.queueAfterReject = await queueNames();
  }

  if (plan.staleTarget) {
    // issue 18: a colleague decides while this page is open; the page's
    // decision is then refused (409) and the page says so in words
    step('a decision from a stale page');
    await page.click('#state-switch button[data-state="hold"]');
    await page.waitForFunction((name) =>
      [...document.querySelectorAll('#queue-body .c-name a')].some((a) => a.textContent === name),
    {}, plan.staleTarget);
    await page.evaluate((name) => {
      [...document.querySelectorAll('#queue-body .c-name a')].find((a) => a.textContent === name).click();
    }, plan.staleTarget);
    await page.waitForFunction((name) => document.getElementById('item-title').textContent === name &&
      !document.getElementById('decide-buttons').hidden, {}, plan.staleTarget);
    await page.evaluate(async () => {
      const id = decodeURIComponent(location.hash.split('/').pop()); // #/item/ID
      const s = await (await fetch('/api/session')).json();
      const v = await (await fetch('/api/items/' + encodeURIComponent(id))).json();
      await fetch('/api/items/' + encodeURIComponent(id) + '/reject', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': s.csrf },
        body: JSON.stringify({ reason: 'a colleague was faster', version: v.version }),
      });
    });
    await page.evaluate(() => document.activeElement && document.activeElement.blur());
    await page.keyboard.press('r');
    await visible('#decide-form');
    await page.type('#reason', plan.reason);
    await page.click('#decide-submit');
    await visible('#decide-error');
    out.staleError = await page.$eval('#decide-error', (e) => e.textContent);
  }

  step('log out');
  await page.click('#logout-btn');
  await visible('#view-login');
  out.afterLogout = await page.evaluate(async () => (await fetch('/api/session')).status);
  await collect();
  out.imgsEnd = await page.evaluate(() => document.querySelectorAll('img').length);
  out.ok = true;
} catch (err) {
  if (err !== null) out.error = String(err && err.stack ? err.stack : err);
} finally {
  if (browser) await browser.close().catch(() => {});
}
process.stdout.write(JSON.stringify(out) + '\n');
process.exit(out.ok ? 0 : 1);
