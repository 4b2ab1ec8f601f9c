// Drives the official MCP TypeScript SDK against a server, one command a line on stdin,
// one JSON result a line on stdout; tests/test_mcp_clients.py is its only user.
//
//   node ts_client.mjs URL --token TOKEN            connect with a bearer token
//   node ts_client.mjs URL --oauth CLIENT_ID        connect through the SDK's own OAuth support
//                                                  (discovery, PKCE, token, refresh), following
//                                                  the auto-approved redirect itself
// Commands: ping | tools | call NAME JSON | resources | prompts | close | quit
//           rejoin SESSION_ID   initialize through a transport that already holds SESSION_ID
//                               (the SDK's Client would skip initialize: it reconnects)
//           batch0326           the transport alone: initialize at 2025-03-26, then two batches
import readline from "node:readline";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { UnauthorizedError } from "@modelcontextprotocol/sdk/client/auth.js";

const [url, mode, arg] = process.argv.slice(2);
const out = (value) => process.stdout.write(JSON.stringify(value) + "\n");
const problem = (error) => ({ ok: false, error: String(error?.message ?? error), code: error?.code ?? null });

class AutoApprovingProvider {
  constructor(clientId) {
    this.clientId = clientId;
    this.saved = undefined;
    this.verifier = "";
    this.code = undefined;
    this.log = [];
  }
  get redirectUrl() { return "http://127.0.0.1:33418/callback"; }
  get clientMetadata() {
    return { client_name: "ts-sdk-test", redirect_uris: [this.redirectUrl],
             grant_types: ["authorization_code", "refresh_token"], response_types: ["code"],
             token_endpoint_auth_method: "none" };
  }
  clientInformation() { return { client_id: this.clientId }; }
  tokens() { return this.saved; }
  saveTokens(tokens) { this.saved = tokens; this.log.push("tokens"); }
  saveCodeVerifier(verifier) { this.verifier = verifier; }
  codeVerifier() { return this.verifier; }
  async redirectToAuthorization(authorizationUrl) {
    this.authorization = authorizationUrl.toString();
    // What a browser would do: the mock approves at once and redirects to our callback.
    const answer = await fetch(authorizationUrl, { redirect: "manual" });
    const location = new URL(answer.headers.get("location"));
    this.code = location.searchParams.get("code");
    this.log.push("authorized");
  }
}

let provider;
let transport;
let client;

async function connect() {
  const options = {};
  if (mode === "--token") options.requestInit = { headers: { Authorization: `Bearer ${arg}` } };
  if (mode === "--oauth") options.authProvider = provider ??= new AutoApprovingProvider(arg);
  transport = new StreamableHTTPClientTransport(new URL(url), options);
  client = new Client({ name: "ts-sdk-test", version: "1.2.3" });
  try {
    await client.connect(transport);
  } catch (error) {
    if (!(error instanceof UnauthorizedError) || !provider?.code) throw error;
    await transport.finishAuth(provider.code);
    transport = new StreamableHTTPClientTransport(new URL(url), options);
    client = new Client({ name: "ts-sdk-test", version: "1.2.3" });
    await client.connect(transport);
  }
  return { ok: true, sessionId: transport.sessionId, protocolVersion: transport.protocolVersion ?? null,
           oauth: provider ? provider.log : null, authorization: provider?.authorization ?? null };
}

function transportOptions() {
  return mode === "--token" ? { requestInit: { headers: { Authorization: `Bearer ${arg}` } } } : {};
}

async function rejoin(sessionId) {
  const other = new StreamableHTTPClientTransport(new URL(url), { ...transportOptions(), sessionId });
  await other.start();
  try {
    await other.send({ jsonrpc: "2.0", id: 1, method: "initialize", params: {
      protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "ts-rejoin", version: "1" } } });
  } finally {
    await other.close();
  }
  return { ok: true, sessionId: other.sessionId };
}

async function batch0326() {
  // The SDK's client always asks its newest revision; its transport sends what it is given,
  // batches included, and reads each answer with the SDK's own message schema.
  const raw = new StreamableHTTPClientTransport(new URL(url), transportOptions());
  const received = [];
  raw.onmessage = (message) => received.push(message);
  await raw.start();
  await raw.send({ jsonrpc: "2.0", id: 1, method: "initialize", params: {
    protocolVersion: "2025-03-26", capabilities: {}, clientInfo: { name: "ts-batch", version: "1" } } });
  raw.setProtocolVersion(received[0].result.protocolVersion);
  await raw.send([{ jsonrpc: "2.0", id: 2, method: "ping" },
                  { jsonrpc: "2.0", method: "notifications/cancelled", params: { requestId: 0 } },
                  { jsonrpc: "2.0", id: 3, method: "tools/list" }]);
  await raw.send([{ jsonrpc: "2.0", method: "notifications/cancelled", params: { requestId: 0 } }]);
  const sessionId = raw.sessionId;
  await raw.terminateSession();
  await raw.close();
  return { ok: true, sessionId, received };
}

const commands = {
  connect,
  rejoin,
  batch0326,
  ping: async () => ({ ok: true, result: await client.ping() }),
  tools: async () => ({ ok: true, result: await client.listTools() }),
  call: async (name, ...json) => ({ ok: true, result: await client.callTool({ name, arguments: JSON.parse(json.join(" ") || "{}") }) }),
  resources: async () => ({ ok: true, result: await client.listResources() }),
  prompts: async () => ({ ok: true, result: await client.listPrompts() }),
  close: async () => { await transport.terminateSession(); await client.close(); return { ok: true }; },
  quit: async () => { process.exit(0); },
};

const lines = readline.createInterface({ input: process.stdin });
for await (const line of lines) {
  const [name, ...rest] = line.trim().split(" ");
  const command = commands[name];
  if (!command) { out({ ok: false, error: `unknown command ${name}` }); continue; }
  try { out(await command(...rest)); } catch (error) { out(problem(error)); }
}
process.exit(0);
