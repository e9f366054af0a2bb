// openid-client 6 authenticating with private_key_jwt (RFC 7523) against a live Keystead.
// Usage: KS_CONFIG='{"issuer":…,"clientId":…,"privateKeyPem":…,"otherKeyPem":…,"alg":…}'
//        node private_key_jwt.mjs
// Prints one JSON object: {steps: {name: {ok, value | error, code, status}}}.
import * as client from "openid-client";

const cfg = JSON.parse(process.env.KS_CONFIG);
const out = { steps: {} };

const run = async (name, fn) => {
  try {
    const value = await fn();
    out.steps[name] = { ok: true, value: value === undefined ? null : value };
  } catch (e) {
    out.steps[name] = {
      ok: false,
      error: String((e && e.message) || e),
      code: e && e.code,
      oauth_error: e && e.error,
      status: e && e.status,
    };
  }
};

const ALGS = {
  RS256: { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" },
  PS256: { name: "RSA-PSS", hash: "SHA-256" },
  ES256: { name: "ECDSA", namedCurve: "P-256" },
};

// A PKCS#8 PEM as a WebCrypto signing key.
const importKey = (pem, alg) => {
  const der = Buffer.from(pem.replace(/-----[^-]+-----/g, "").replace(/\s+/g, ""), "base64");
  return crypto.subtle.importKey("pkcs8", der, ALGS[alg], false, ["sign"]);
};

const configFor = async (pem) =>
  client.discovery(
    new URL(cfg.issuer),
    cfg.clientId,
    {},
    client.PrivateKeyJwt(await importKey(pem, cfg.alg)),
    { execute: [client.allowInsecureRequests] },
  );

const good = await configFor(cfg.privateKeyPem);
await run("metadata", () => good.serverMetadata().revocation_endpoint_auth_methods_supported);
await run("revoke_with_assertion", () => client.tokenRevocation(good, "no-such-token"));
await run("revoke_again", () => client.tokenRevocation(good, "no-such-token")); // a fresh jti
const wrong = await configFor(cfg.otherKeyPem);
await run("revoke_with_unregistered_key", () => client.tokenRevocation(wrong, "no-such-token"));

process.stdout.write(JSON.stringify(out));
