// Drives the auth0-spa-js test page in Debian's Chromium and prints what happened as JSON.
// Usage: KS_CONFIG='{"spaOrigin":…,"client":{…},"username":…,"password":…,"scenario":…}' node drive.mjs
// With "mfa": {"wrongCode": true|false} the password leads to the code page; each code to type is
// asked of the test as it is needed: a line `ks-ask {"ask":"code"|"wrong_code"}` on stdout, the
// answer one line on stdin (see conftest.drive_asking). The result is the last line of stdout.
import { createRequire } from "node:module";
const require = createRequire(new URL("../compat/node/package.json", import.meta.url));
const { chromium } = require("playwright-core");
const readline = require("node:readline");

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
let lines = null, answers = null;  // stdin is read only when a code is asked for
const ask = async (what) => {
  lines ||= readline.createInterface({ input: process.stdin });
  answers ||= lines[Symbol.asyncIterator]();
  process.stdout.write("ks-ask " + JSON.stringify({ ask: what }) + "\n");
  const { value, done } = await answers.next();
  if (done) throw new Error("no answer for " + what);
  return value.trim();
};
const codePage = async () => ({
  path: new URL(page.url()).pathname,
  title: await page.title(),
  heading: await page.textContent("h1"),
  input: await page.$eval("input[name=code]", (i) => ({
    type: i.type, autocomplete: i.autocomplete, inputmode: i.inputMode,
    invalid: i.getAttribute("aria-invalid"), value: i.value,
  })),
  error: await page.$eval("#form-error", (e) => e.textContent.trim()).catch(() => null),
});
const submitCode = async (code, until) => {
  await page.fill("input[name=code]", code);
  await Promise.all([page.waitForURL(until, { timeout: 15000 }), page.click("button[type=submit]")]);
};
let page;
try {
  const context = await browser.newContext();
  page = await context.newPage();
  page.on("console", (m) => { (out.console ||= []).push(m.text()); });
  await page.goto(cfg.spaOrigin + "/");
  await page.evaluate((c) => window.ks.configure(c), cfg.client);
  await page.reload();

  await run("login_page", async () => {
    await page.evaluate(() => { window.ks.login(); });
    await page.waitForSelector("input[name=username]", { timeout: 15000 });
    return new URL(page.url()).pathname;
  });
  const atCallback = (u) => u.href.startsWith(cfg.spaOrigin + "/callback");
  if (cfg.mfa) {
    // The right password answers the code page in place of the redirect back to the SPA.
    await run("submit_password", async () => {
      await page.fill("input[name=username]", cfg.username);
      await page.fill("input[name=password]", cfg.password);
      await Promise.all([
        page.waitForSelector("input[name=code]", { timeout: 15000 }),
        page.click("button[type=submit]"),
      ]);
      return await codePage();
    });
    if (cfg.mfa.wrongCode) {
      await run("wrong_code", async () => {
        await submitCode(await ask("wrong_code"), (u) => u.pathname === "/u/mfa-challenge");
        await page.waitForSelector("#form-error", { timeout: 15000 });
        return await codePage();
      });
    }
    await run("submit_credentials", async () => {
      await submitCode(await ask("code"), atCallback);
      return new URL(page.url()).searchParams.has("code");
    });
  } else {
    await run("submit_credentials", async () => {
      await page.fill("input[name=username]", cfg.username);
      await page.fill("input[name=password]", cfg.password);
      await Promise.all([
        page.waitForURL(atCallback, { timeout: 15000 }),
        page.click("button[type=submit]"),
      ]);
      return new URL(page.url()).searchParams.has("code");
    });
  }
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
  if (lines) { lines.close(); process.stdin.destroy(); }  // or node waits on stdin
  process.stdout.write(JSON.stringify(out));
}
