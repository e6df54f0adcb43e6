#!/usr/bin/env node
// Drives the page that `wristssl serve` returns at GET / in a real browser (Debian's Chromium through
// puppeteer-core): uploads an image through #file, waits for the result, checks the probability the page
// received against the expected one, toggles the Grad-CAM heatmap, and saves a screenshot.
//
// Usage: node browser_test.js URL IMAGE_FILE EXPECTED_PROBABILITY SCREENSHOT.png
// Exit: 0 passed; 1 a check failed (the message says which); 2 usage; 77 skipped (no puppeteer-core, no
// Chromium). puppeteer-core comes from tests/node (npm ci --ignore-scripts); CHROMIUM overrides the browser;
// WRISTSSL_TOKEN, when set, is typed into #token (for a server that requires a bearer token);
// WRISTSSL_EXPECTED_BOXES, when set, is how many boxes the page must list and draw.
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');

const kTolerance = 1e-5;
const kResultTimeoutMs = 60000;
const kWords = {fracture: 'Fracture likely', no_fracture: 'No fracture seen',
                refer: 'Uncertain: refer to a radiologist'};

function skip(why) { console.log(`browser_test: SKIP: ${why}`); process.exit(77); }
function fail(why) { const e = new Error(why); e.checkFailed = true; throw e; }

const [url, imageFile, expectedText, screenshot] = process.argv.slice(2);
if (!screenshot) {
  console.error('usage: node browser_test.js URL IMAGE_FILE EXPECTED_PROBABILITY SCREENSHOT.png');
  process.exit(2);
}
const expected = Number(expectedText);
if (!Number.isFinite(expected)) { console.error(`browser_test: EXPECTED_PROBABILITY '${expectedText}' is not a number`); process.exit(2); }
if (!fs.existsSync(imageFile)) { console.error(`browser_test: IMAGE_FILE ${imageFile} does not exist`); process.exit(2); }

let puppeteer;
try {
  puppeteer = require('puppeteer-core');
} catch (e) {
  try {  // tests/node/node_modules, where scripts/setup.sh installs it
    puppeteer = require(require.resolve('puppeteer-core', {paths: [path.join(__dirname, '..', 'node')]}));
  } catch (e2) {
    skip(`puppeteer-core cannot be required (cd tests/node && npm ci --ignore-scripts): ${e2.message.split('\n')[0]}`);
  }
}
const chromium = process.env.CHROMIUM || '/usr/bin/chromium';
if (!fs.existsSync(chromium)) skip(`${chromium} not found (apt-get install chromium)`);

async function main() {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'wristssl-browser-'));
  const browser = await puppeteer.launch({
    executablePath: chromium, headless: true, timeout: 60000,
    acceptInsecureCerts: url.startsWith('https:'),  // a test server on https has a self-signed certificate
    args: ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
           '--disable-background-networking', '--disable-component-update', '--disable-sync',
           `--user-data-dir=${profile}`],
  });
  const pageErrors = [];
  const consoleErrors = [];
  try {
    const page = await browser.newPage();
    await page.setViewport({width: 1280, height: 900});
    page.on('pageerror', (e) => pageErrors.push(String(e.message || e)));
    page.on('console', (m) => {  // the browser's own favicon.ico probe 404s on any server without one
      const where = (m.location() && m.location().url) || '';
      if (m.type() === 'error' && !where.endsWith('/favicon.ico')) consoleErrors.push(`${m.text()} ${where}`.trim());
    });

    const response = await page.goto(url, {waitUntil: 'load', timeout: 30000})
        .catch((e) => fail(`cannot open ${url}: ${e.message.split('\n')[0]}`));
    if (!response || !response.ok()) fail(`GET ${url} answered HTTP ${response ? response.status() : 'nothing'}`);
    for (const id of ['file', 'drop', 'token', 'view', 'heatmap-toggle', 'probability', 'decision', 'status', 'error']) {
      if (!(await page.$(`#${id}`))) fail(`the page has no #${id}`);
    }

    // WRISTSSL_TOKEN: for a server started with a token; typed into the page's field as a person would.
    if (process.env.WRISTSSL_TOKEN) {
      await page.type('#token', process.env.WRISTSSL_TOKEN);
      await page.$eval('#token', (e) => e.dispatchEvent(new Event('change')));
    }
    const input = await page.$('#file');
    await input.uploadFile(path.resolve(imageFile));
    // Either a result or an error ends the wait; an error should not cost the whole timeout.
    await page.waitForFunction(
        () => document.querySelector('#probability[data-value]') || document.getElementById('error').textContent.trim(),
        {timeout: kResultTimeoutMs}).catch(() => fail(`no result within ${kResultTimeoutMs / 1000} s`));
    const errorText = await page.$eval('#error', (e) => e.textContent.trim());
    if (errorText) fail(`the page shows an error: ${errorText}`);

    // The result image must be decoded, not only have a src.
    await page.waitForFunction(() => { const v = document.getElementById('view'); return v.complete && v.naturalWidth > 0; },
                               {timeout: 15000}).catch(() => {});
    const seen = await page.evaluate(() => {
      const $ = (id) => document.getElementById(id);
      const v = $('view');
      return {probability_value: $('probability').getAttribute('data-value'), probability_text: $('probability').textContent.trim(),
              decision: $('decision').getAttribute('data-decision'), decision_text: $('decision').textContent.trim(),
              status: $('status').textContent.trim(), model: $('model') ? $('model').textContent.trim() : null,
              heatmap_shown: $('heatmap-toggle').checked, view_src: v.getAttribute('src') || '',
              view_size: [v.naturalWidth, v.naturalHeight]};
    });

    const got = Number(seen.probability_value);
    if (!Number.isFinite(got)) fail(`#probability data-value '${seen.probability_value}' is not a number`);
    if (!(Math.abs(got - expected) <= kTolerance)) {
      fail(`probability ${got} differs from the expected ${expected} by ${Math.abs(got - expected)} (> ${kTolerance})`);
    }
    const wantText = `${(100 * got).toFixed(1)}%`;
    if (seen.probability_text !== wantText) fail(`#probability reads '${seen.probability_text}', expected '${wantText}'`);
    if (!(seen.decision in kWords)) fail(`#decision data-decision '${seen.decision}' is not fracture, no_fracture or refer`);
    if (seen.decision_text !== kWords[seen.decision]) {
      fail(`#decision reads '${seen.decision_text}' for '${seen.decision}', expected '${kWords[seen.decision]}'`);
    }
    if (seen.status !== 'Done') fail(`#status reads '${seen.status}', expected 'Done'`);
    if (!(seen.view_size[0] > 0)) fail('#view has naturalWidth 0: the result image did not load');

    // Toggle the heatmap: #view must switch to the other picture, and that one must load too.
    await page.click('#heatmap-toggle');
    await page.waitForFunction((before) => {
      const v = document.getElementById('view');
      return (v.getAttribute('src') || '') !== before && v.complete && v.naturalWidth > 0;
    }, {timeout: 15000}, seen.view_src).catch(() => fail('#view did not change to a loaded image after toggling #heatmap-toggle'));
    const toggled = await page.evaluate(() => {
      const v = document.getElementById('view');
      return {heatmap_shown: document.getElementById('heatmap-toggle').checked, view_size: [v.naturalWidth, v.naturalHeight]};
    });

    // The boxes: as many listed and drawn (two rectangles each: a dark rim and the white edge) as
    // predict shows for the file (WRISTSSL_EXPECTED_BOXES, its CSV's "boxes"); the toggle hides them.
    const boxes = await page.evaluate(() => ({listed: document.querySelectorAll('#where li').length,
                                              rects: document.querySelectorAll('#boxes rect').length}));
    if (process.env.WRISTSSL_EXPECTED_BOXES !== undefined) {
      const want = Number(process.env.WRISTSSL_EXPECTED_BOXES);
      if (boxes.listed !== want || boxes.rects !== 2 * want) {
        fail(`the page lists ${boxes.listed} boxes and draws ${boxes.rects} rectangles; predict shows ${want} boxes`);
      }
    }
    await page.click('#boxes-toggle');
    const hidden = await page.evaluate(() => document.querySelectorAll('#boxes rect').length);
    await page.click('#boxes-toggle');
    const again = await page.evaluate(() => document.querySelectorAll('#boxes rect').length);
    if (hidden !== 0 || again !== boxes.rects) fail(`boxes toggle: ${hidden} rectangles hidden, ${again} after showing again`);
    seen.boxes = boxes;

    if (pageErrors.length) fail(`the page threw: ${pageErrors.join('; ')}`);
    await page.screenshot({path: screenshot, fullPage: true});

    delete seen.view_src;
    console.log(JSON.stringify(Object.assign({ok: true, url, image: imageFile, expected}, seen,
        {probability_value: got, toggled, console_errors: consoleErrors, screenshot})));
  } finally {
    await browser.close().catch(() => {});
    fs.rmSync(profile, {recursive: true, force: true});
  }
}

// A hung browser must not hang ctest.
const watchdog = setTimeout(() => { console.error('browser_test: FAIL: gave up after 180 s'); process.exit(1); }, 180000);
main().then(() => { clearTimeout(watchdog); process.exit(0); }, (e) => {
  console.error(`browser_test: FAIL: ${e.checkFailed ? e.message : (e.stack || e)}`);
  process.exit(1);
});
