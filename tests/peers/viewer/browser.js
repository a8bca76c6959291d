// A headless Chromium driven through playwright-core, controlled with JSON lines on stdin; one JSON
// line answers each command on stdout. Used by tests/viewer_browser.rs, which keeps the assertions.
//   {"op":"launch","args":["--host-resolver-rules=MAP viewer.test 127.0.0.1"],"width":1280,"height":720}
//   {"op":"goto","url":"http://127.0.0.1:PORT/"}
//   {"op":"eval","js":"window.sioedge.path"}      -> {"ok":true,"value":...}
//   {"op":"click","selector":"#streams button[data-stream=cam0]"}
//   {"op":"press","key":"s"}
//   {"op":"viewport","width":390,"height":844}
//   {"op":"fill","selector":"#secret","value":"s3cret"}
//   {"op":"screenshot","path":"target/viewer.png","selector":".player"}
//   {"op":"download","selector":".player .snap-btn","dir":"target/x"} -> {"name","bytes","width","height"}
//      (clicks, saves the download in dir, and decodes it as an image in the page: its size)
//   {"op":"close"}
// Each run uses a fresh user-data-dir, removed on close.
'use strict';
const { chromium } = require('playwright-core');
const fs = require('fs'), os = require('os'), path = require('path'), readline = require('readline');

let ctx = null, page = null, udd = null;
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

const ops = {
  async launch({ args = [], width = 800, height = 520 }) {
    udd = fs.mkdtempSync(path.join(os.tmpdir(), 'sioedge-chr-'));
    ctx = await chromium.launchPersistentContext(udd, { executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true,
      viewport: { width, height }, args: [...FLAGS, ...args] });
    page = ctx.pages()[0] || await ctx.newPage();
    page.on('console', (m) => process.stderr.write(`console.${m.type()}: ${m.text()}\n`));
    page.on('pageerror', (e) => process.stderr.write(`pageerror: ${e}\n`));
  },
  async goto({ url }) { await page.goto(url, { timeout: 15000 }); },
  async eval({ js }) { return page.evaluate(js); },
  async click({ selector }) { await page.click(selector, { timeout: 10000 }); },
  async press({ key }) { await page.keyboard.press(key); },
  async viewport({ width, height }) { await page.setViewportSize({ width, height }); },
  async fill({ selector, value }) { await page.fill(selector, value, { timeout: 10000 }); },
  async download({ selector, dir }) {
    const [dl] = await Promise.all([page.waitForEvent('download', { timeout: 15000 }), page.click(selector, { timeout: 10000 })]);
    const name = dl.suggestedFilename(), file = path.join(dir, name);
    await dl.saveAs(file);
    const bytes = fs.readFileSync(file);
    const [width, height] = await page.evaluate(async (b64) => {
      const bmp = await createImageBitmap(new Blob([Uint8Array.from(atob(b64), (c) => c.charCodeAt(0))], { type: 'image/jpeg' }));
      return [bmp.width, bmp.height];
    }, bytes.toString('base64'));
    return { name, bytes: bytes.length, width, height, jpeg: bytes[0] === 0xff && bytes[1] === 0xd8 };
  },
  async screenshot({ path: p, selector }) { await (selector ? page.locator(selector).first() : page).screenshot({ path: p }); },
  async close() { await shutdown(); },
};
async function shutdown() {
  if (ctx) await ctx.close().catch(() => {});
  ctx = null;
  if (udd) fs.rmSync(udd, { recursive: true, force: true });
  udd = null;
}

const rl = readline.createInterface({ input: process.stdin });
let chain = Promise.resolve();
rl.on('line', (line) => {
  chain = chain.then(async () => {
    let cmd;
    try {
      cmd = JSON.parse(line);
      const value = await ops[cmd.op](cmd);
      process.stdout.write(JSON.stringify({ ok: true, value: value === undefined ? null : value }) + '\n');
    } catch (e) {
      process.stdout.write(JSON.stringify({ ok: false, error: String(e && e.message || e) }) + '\n');
    }
    if (cmd && cmd.op === 'close') process.exit(0);
  });
});
rl.on('close', () => { chain.then(shutdown).then(() => process.exit(0)); });
