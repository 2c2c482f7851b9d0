// oauth-client.mjs: the official TypeScript MCP SDK client, starting with no
// token, against an OAuth-protected MCP endpoint. It is given only the MCP
// URL and its client credentials; everything else (protected resource
// metadata, authorization server, token endpoint, scopes) it discovers from
// the 401 and the documents it leads to.
//
//   node oauth-client.mjs <mcp-url> <client-id> <client-secret> [<tool> <json-args>]...
//
// It connects, lists the tools, calls each tool given, and prints one JSON
// object on stdout: the tools, each call's result or error, every HTTP
// exchange the SDK made (method, URL, status, WWW-Authenticate; never a
// token) and the claims of every access token it obtained.
//
// Two accommodations, both in the client, none in the gateway:
//  - ORY Hydra v2.3.0 ignores the RFC 8707 `resource` parameter and only
//    sets `aud` from its own `audience` parameter, so the token request
//    copies `resource` into `audience` (DESIGN.md §6).
//  - SDK 1.32.2's ClientCredentialsProvider always requests its configured
//    scope: the scope from a 401/403 challenge (SEP-835) reaches only the
//    authorization-code flow. The provider below requests the scope of the
//    latest challenge instead, which is what the spec asks of clients.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { ClientCredentialsProvider } from "@modelcontextprotocol/sdk/client/auth-extensions.js";

const [url, clientId, clientSecret, ...rest] = process.argv.slice(2);
if (!url || !clientId || !clientSecret || rest.length % 2 !== 0) {
  console.error("usage: node oauth-client.mjs <mcp-url> <client-id> <client-secret> [<tool> <json-args>]...");
  process.exit(2);
}
const calls = [];
for (let i = 0; i < rest.length; i += 2) calls.push({ name: rest[i], arguments: JSON.parse(rest[i + 1]) });

const exchanges = [];
const tokens = [];

function challengeParam(header, name) {
  const m = header && header.match(new RegExp(`${name}="([^"]*)"`));
  return m ? m[1] : undefined;
}

class DiscoveringClientCredentials extends ClientCredentialsProvider {
  challengedScope;

  prepareTokenRequest(scope) {
    return super.prepareTokenRequest(this.challengedScope ?? scope);
  }

  // client_secret_basic, as the parent would do without this hook, plus
  // Hydra's audience parameter. An arrow function: the SDK calls the hook
  // detached from the provider.
  addClientAuthentication = (headers, params) => {
    const info = this.clientInformation();
    const basic = Buffer.from(`${encodeURIComponent(info.client_id)}:${encodeURIComponent(info.client_secret)}`).toString("base64");
    headers.set("Authorization", `Basic ${basic}`);
    const resource = params.get("resource");
    if (resource) params.set("audience", resource);
    tokens.push({ requested: { scope: params.get("scope") ?? null, resource: resource ?? null } });
  };

  saveTokens(t) {
    super.saveTokens(t);
    const last = tokens[tokens.length - 1] ?? {};
    try {
      last.claims = JSON.parse(Buffer.from(t.access_token.split(".")[1], "base64url").toString());
    } catch {
      last.claims = null;
    }
  }
}

const provider = new DiscoveringClientCredentials({ clientId, clientSecret, clientName: "mcpgate-e2e" });

// Records every exchange the SDK makes (discovery, token, MCP) and the scope
// each challenge names.
async function recordingFetch(input, init) {
  const req = new Request(input, init);
  const res = await fetch(input, init);
  const www = res.headers.get("www-authenticate");
  exchanges.push({ method: req.method, url: req.url, status: res.status, www_authenticate: www ?? undefined });
  if ((res.status === 401 || res.status === 403) && www) {
    const scope = challengeParam(www, "scope");
    if (scope) provider.challengedScope = scope;
  }
  return res;
}

const out = { tools: [], calls: [], exchanges, tokens };
const client = new Client({ name: "mcpgate-oauth-e2e", version: "1.0.0" });
const transport = new StreamableHTTPClientTransport(new URL(url), { authProvider: provider, fetch: recordingFetch });
try {
  await client.connect(transport);
  out.tools = (await client.listTools()).tools.map((t) => t.name);
  for (const c of calls) {
    try {
      const r = await client.callTool(c);
      out.calls.push({ name: c.name, ok: !r.isError, content: r.content });
    } catch (e) {
      out.calls.push({ name: c.name, ok: false, error: { name: e.constructor.name, code: e.code ?? null, message: String(e.message) } });
    }
  }
} catch (e) {
  out.error = { name: e.constructor.name, code: e.code ?? null, message: String(e.message) };
} finally {
  await transport.terminateSession().catch(() => {});
  await client.close().catch(() => {});
}
process.stdout.write(JSON.stringify(out) + "\n");
