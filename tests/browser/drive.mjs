// Drives the auth0-spa-js test page in Debian's Chromium and prints what happened as JSON.
// Usage: KS_CONFIG='{"spaOrigin":…,"client":{…},"username":…,"password":…,"scenario":…}' node drive.mjs
import { createRequire } from "node:module";
const require = createRequire(new URL("../compat/node/package.json", import.meta.url));
const { chromium } = require("playwright-core");

const cfg = JSON.parse(process.env.KS_CONFIG);
const out = { steps: {} };
const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const run = async (name, fn) => {
  try { out.steps[name] = { ok: true, value: await fn() }; }
  catch (e) { out.steps[name] = { ok: false, error: String(e && (e.error || e.message) || e), description: e && e.error_description }; throw e; }
};
try {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.on("console", (m) => { (out.console ||= []).push(m.text()); });
  await page.goto(cfg.spaOrigin + "/");
  await page.evaluate((c) => window.ks.configure(c), cfg.client);
  await page.reload();

  await run("login_page", async () => {
    await page.evaluate(() => { window.ks.login(); });
    await page.waitForSelector("input[name=username]", { timeout: 15000 });
    return new URL(page.url()).pathname;
  });
  await run("submit_credentials", async () => {
    await page.fill("input[name=username]", cfg.username);
    await page.fill("input[name=password]", cfg.password);
    await Promise.all([
      page.waitForURL((u) => u.href.startsWith(cfg.spaOrigin + "/callback"), { timeout: 15000 }),
      page.click("button[type=submit]"),
    ]);
    return new URL(page.url()).searchParams.has("code");
  });
  await run("callback", () => page.evaluate(() => window.ks.handleCallback()));
  await run("claims", () => page.evaluate(() => window.ks.claims()));
  await run("token_silent", () => page.evaluate(() => window.ks.token({ cacheMode: "off" })));
  await run("token_silent_again", () => page.evaluate(() => window.ks.token({ cacheMode: "off" })));
  for (const [name, call] of Object.entries(cfg.apiCalls || {})) {
    await run("api:" + name, () => page.evaluate((c) => window.ks.api(c[0], c[1], c[2]), call));
  }
  await run("logout", async () => {
    await Promise.all([
      page.waitForURL((u) => u.href.startsWith(cfg.spaOrigin + "/logged-out"), { timeout: 15000 }),
      page.evaluate(() => window.ks.logout()),
    ]);
    return page.url();
  });
  await run("after_logout_silent", async () => {
    await page.goto(cfg.spaOrigin + "/");
    return await page.evaluate(async () => {
      try { await window.ks.token({ cacheMode: "off" }); return "token"; }
      catch (e) { return e.error || String(e); }
    });
  });
} catch (e) {
  out.error = String(e && (e.message || e.error) || e);
} finally {
  await browser.close();
  process.stdout.write(JSON.stringify(out));
}
