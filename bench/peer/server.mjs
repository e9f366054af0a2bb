// The peer of bench/http_bench.py --peer: node oidc-provider with one confidential client for the
// client-credentials grant, RS256 JWT access tokens for one API (as Keystead issues), in-memory
// storage, PEER_WORKERS processes (node:cluster) on PEER_PORT. Not for any other use.
import cluster from "node:cluster";
import { generateKeyPairSync } from "node:crypto";

import Provider from "oidc-provider";

const port = Number(process.env.PEER_PORT || 18081);
const workers = Number(process.env.PEER_WORKERS || 2);
const API = "https://api.bench.test/";

if (cluster.isPrimary) {
  // One signing key for every worker, as Keystead's workers share one key ring.
  const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const jwk = JSON.stringify({ ...privateKey.export({ format: "jwk" }), use: "sig", alg: "RS256" });
  for (let i = 0; i < workers; i += 1) cluster.fork({ PEER_JWK: jwk });
  process.on("SIGTERM", () => {
    for (const w of Object.values(cluster.workers)) w.kill("SIGTERM");
    process.exit(0);
  });
} else {
  const provider = new Provider(`http://127.0.0.1:${port}`, {
    clients: [
      {
        client_id: "bench-peer-client",
        client_secret: "bench-peer-secret-0123456789abcdef",
        grant_types: ["client_credentials"],
        redirect_uris: [],
        response_types: [],
        token_endpoint_auth_method: "client_secret_post",
      },
    ],
    jwks: { keys: [JSON.parse(process.env.PEER_JWK)] },
    features: {
      clientCredentials: { enabled: true },
      devInteractions: { enabled: false },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => API,
        useGrantedResource: () => true,
        getResourceServerInfo: () => ({
          scope: "read:things write:things",
          audience: API,
          accessTokenTTL: 86400,
          accessTokenFormat: "jwt",
          jwt: { sign: { alg: "RS256" } },
        }),
      },
    },
  });
  provider.listen(port);
}
