// node `auth0` 7 ManagementClient against a live Keystead served with --dev-tls.
// Usage: NODE_EXTRA_CA_CERTS=<dev CA> KS_CONFIG='{"domain":"127.0.0.1:PORT","clientId":…,
//        "clientSecret":…,"email":…}' node management_client.mjs
// The SDK always uses https://{domain}/api/v2 and fetches its own token from
// https://{domain}/oauth/token, so only the domain and the M2M credentials are passed in.
// Prints one JSON object: {steps: {name: {ok, value | error, status, body}}}.
import { ManagementClient } from "auth0";

const cfg = JSON.parse(process.env.KS_CONFIG);
const out = { steps: {} };

const run = async (name, fn, show = (v) => v) => {
  try {
    const value = await fn();
    out.steps[name] = { ok: true, value: value === undefined ? null : show(value) };
    return value;
  } catch (e) {
    out.steps[name] = {
      ok: false,
      error: String((e && e.message) || e),
      status: e && e.statusCode,
      body: e && e.body,
      cause: e && e.cause ? String(e.cause.message || e.cause) : undefined,
    };
    return undefined;
  }
};

const management = new ManagementClient({
  domain: cfg.domain,
  clientId: cfg.clientId,
  clientSecret: cfg.clientSecret,
});

try {
  // Offset paging with include_totals: per_page 1 makes the pager walk one page per user.
  await run("users_first_page", () => management.users.list({ per_page: 1, page: 0, include_totals: true }),
    (page) => ({
      start: page.response.start,
      limit: page.response.limit,
      total: page.response.total,
      length: page.response.length,
      emails: page.data.map((u) => u.email),
      has_next_page: page.hasNextPage(),
    }));
  await run("users_all_pages", async () => {
    const emails = [];
    const page = await management.users.list({ per_page: 1, include_totals: true });
    for await (const user of page) emails.push(user.email);
    return { emails, total: page.response.total };
  });

  const created = await run("users_create", () =>
    management.users.create({
      connection: "Username-Password-Authentication",
      email: cfg.email,
      password: "Node-Mgmt-Passw0rd-1",
      name: "Node Management",
      user_metadata: { theme: "light", lang: "en" },
      app_metadata: { plan: "pro" },
    }));
  if (created) {
    const id = created.user_id;
    await run("users_get", () => management.users.get(id));
    await run("users_update", () =>
      management.users.update(id, { user_metadata: { lang: null, tz: "UTC" }, nickname: "nm" }));
    await run("users_by_email", () => management.users.listUsersByEmail({ email: cfg.email }));

    const role = await run("roles_create", () =>
      management.roles.create({ name: `node-role-${Date.now()}`, description: "from node auth0 7" }));
    if (role) {
      await run("roles_assign_users", () => management.roles.users.assign(role.id, { users: [id] }));
      await run("roles_users", async () => (await management.roles.users.list(role.id)).data);
      await run("user_roles", async () => (await management.users.roles.list(id)).data);
      await run("roles_list", async () => {
        const names = [];
        for await (const r of await management.roles.list({ per_page: 50 })) names.push(r.name);
        return names;
      });
      await run("roles_delete", () => management.roles.delete(role.id));
    }

    await run("users_delete", () => management.users.delete(id));
    await run("users_get_deleted", () => management.users.get(id));
  }

  await run("clients_list", async () => {
    const clients = [];
    for await (const c of await management.clients.list({ per_page: 2 })) {
      clients.push({ client_id: c.client_id, name: c.name, app_type: c.app_type });
    }
    return clients;
  });
} catch (e) {
  out.error = String((e && e.message) || e);
} finally {
  process.stdout.write(JSON.stringify(out));
}
