// openid-client 6 (strict OIDC relying party) against a live Keystead, over plain http.
// Usage: KS_CONFIG='{"issuer":…,"clientId":…,"clientSecret":…,"redirectUri":…,"username":…,
//                    "password":…,"audience":…}' node openid_client_flow.mjs
// Prints one JSON object: {steps: {name: {ok, value | error, code, status}}}. The login page is
// driven over HTTP here (no browser); nothing listens on the redirect URI: the flow stops at
// the redirect that carries the code, which is all authorizationCodeGrant needs.
import * as client from "openid-client";

const cfg = JSON.parse(process.env.KS_CONFIG);
const out = { steps: {} };

// Runs one step; `show` picks what of its result goes into the report.
const run = async (name, fn, show = (v) => v) => {
  try {
    const value = await fn();
    out.steps[name] = { ok: true, value: value === undefined ? null : show(value) };
    return value;
  } catch (e) {
    out.steps[name] = {
      ok: false,
      error: String((e && e.message) || e),
      code: e && e.code,
      oauth_error: e && e.error,
      description: e && e.error_description,
      status: e && e.status,
    };
    return undefined;
  }
};

// --- a minimal browser: cookie jar, manual redirects, the login form -------------------------

const jar = new Map();
const remember = (res) => {
  for (const line of res.headers.getSetCookie()) {
    const [pair] = line.split(";");
    const eq = pair.indexOf("=");
    jar.set(pair.slice(0, eq).trim(), pair.slice(eq + 1).trim());
  }
};
const cookieHeader = () => [...jar].map(([k, v]) => `${k}=${v}`).join("; ");

const decode = (s) =>
  s.replace(/&(amp|quot|#39|#x27|lt|gt);/g, (_, e) =>
    ({ amp: "&", quot: '"', "#39": "'", "#x27": "'", lt: "<", gt: ">" })[e]);

const attributes = (tag) => {
  const attrs = {};
  for (const m of tag.matchAll(/([\w-]+)\s*=\s*"([^"]*)"/g)) attrs[m[1].toLowerCase()] = decode(m[2]);
  return attrs;
};

const request = async (url, init = {}) => {
  const res = await fetch(url, {
    ...init,
    redirect: "manual",
    headers: { ...(init.headers || {}), cookie: cookieHeader() },
  });
  remember(res);
  return res;
};

// Follows redirects until one points at the redirect URI (returned) or a page answers 200.
const follow = async (res, base) => {
  for (let hops = 0; hops < 10; hops++) {
    if (res.status < 300 || res.status >= 400) return { page: res, url: base };
    const location = new URL(res.headers.get("location"), base).href;
    if (location.startsWith(cfg.redirectUri)) return { callback: location };
    base = location;
    res = await request(location);
  }
  throw new Error("too many redirects");
};

const login = async (authorizationUrl) => {
  const first = await follow(await request(authorizationUrl), authorizationUrl);
  if (first.callback) return { callback: first.callback, loginPage: null };
  const loginPage = new URL(first.url).pathname;
  const html = await first.page.text();
  const formTag = html.match(/<form\b[^>]*>/i);
  if (!formTag) throw new Error(`no login form at ${first.url} (status ${first.page.status})`);
  const action = new URL(attributes(formTag[0]).action || first.url, first.url).href;
  const body = new URLSearchParams();
  for (const m of html.matchAll(/<input\b[^>]*>/gi)) {
    const a = attributes(m[0]);
    if (a.type === "hidden" && a.name) body.set(a.name, a.value ?? "");
  }
  body.set("username", cfg.username);
  body.set("password", cfg.password);
  const posted = await request(action, {
    method: "POST",
    body,
    headers: { "content-type": "application/x-www-form-urlencoded" },
  });
  const done = await follow(posted, action);
  if (!done.callback) {
    throw new Error(`login did not reach the redirect URI (status ${done.page.status})`);
  }
  return { callback: done.callback, loginPage, csrf: body.has("csrf_token") };
};

// --- the flow --------------------------------------------------------------------------------

const claimsOf = (jwt) => JSON.parse(Buffer.from(jwt.split(".")[1], "base64url").toString());

try {
  const cfgObj = await run(
    "discovery",
    () =>
      client.discovery(new URL(cfg.issuer), cfg.clientId, cfg.clientSecret, undefined, {
        execute: [client.allowInsecureRequests],
      }),
    (c) => c.serverMetadata(),
  );
  if (!cfgObj) throw new Error("discovery failed");

  // One authorization-code + PKCE round trip through the library: the URL it builds, the login
  // page, and its strict checks of the callback and the ID token.
  const authorize = async (prefix) => {
    const verifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const nonce = client.randomNonce();
    const checks = { pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce };
    const authUrl = await run(`${prefix}authorization_url`, async () =>
      client.buildAuthorizationUrl(cfgObj, {
        redirect_uri: cfg.redirectUri,
        scope: "openid profile email offline_access read:things",
        audience: cfg.audience,
        code_challenge: await client.calculatePKCECodeChallenge(verifier),
        code_challenge_method: "S256",
        state,
        nonce,
      }).href);
    const loggedIn = await run(`${prefix}login`, () => login(authUrl));
    if (!loggedIn) throw new Error("login failed");
    const tokens = await run(
      `${prefix}authorization_code_grant`,
      () => client.authorizationCodeGrant(cfgObj, new URL(loggedIn.callback), { ...checks, idTokenExpected: true }),
      (t) => ({
        token_type: t.token_type,
        scope: t.scope,
        expires_in: t.expires_in,
        has_refresh_token: typeof t.refresh_token === "string",
        id_token_claims: t.claims(),
        access_token_claims: claimsOf(t.access_token),
      }),
    );
    const replay = () => client.authorizationCodeGrant(cfgObj, new URL(loggedIn.callback), checks);
    return { tokens, replay };
  };

  const first = await authorize("");
  const tokens = first.tokens;
  if (tokens) {
    const sub = tokens.claims().sub;
    await run("userinfo", () => client.fetchUserInfo(cfgObj, tokens.access_token, sub));
    await run("refresh_token_grant", () => client.refreshTokenGrant(cfgObj, tokens.refresh_token), (t) => ({
      access_token_claims: claimsOf(t.access_token),
      id_token_claims: t.claims() ?? null,
      rotated: typeof t.refresh_token === "string" && t.refresh_token !== tokens.refresh_token,
    }));
    await run("token_revocation", () => client.tokenRevocation(cfgObj, tokens.refresh_token));
    await run("refresh_after_revocation", () => client.refreshTokenGrant(cfgObj, tokens.refresh_token));
  }

  // A code is single use, and presenting it again revokes what it was exchanged for.
  const second = await authorize("second_");
  if (second.tokens) {
    await run("code_replay", second.replay);
    await run("refresh_after_code_replay", () =>
      client.refreshTokenGrant(cfgObj, second.tokens.refresh_token));
  }

  await run("client_credentials_grant", async () => {
    const t = await client.clientCredentialsGrant(cfgObj, { audience: cfg.audience });
    return { token_type: t.token_type, scope: t.scope, access_token_claims: claimsOf(t.access_token) };
  });
  // No client grant for the Management API: refused (contract §3.4).
  await run("client_credentials_without_grant", () =>
    client.clientCredentialsGrant(cfgObj, { audience: cfg.issuer + "api/v2/" }));
  // A wrong secret: 401 invalid_client (contract §3.1).
  await run("wrong_secret", async () => {
    const bad = await client.discovery(new URL(cfg.issuer), cfg.clientId, "wrong-secret", undefined, {
      execute: [client.allowInsecureRequests],
    });
    return client.clientCredentialsGrant(bad, { audience: cfg.audience });
  });
} catch (e) {
  out.error = String((e && e.message) || e);
} finally {
  process.stdout.write(JSON.stringify(out));
}
