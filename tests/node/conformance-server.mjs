// conformance-server.mjs: an MCP server (Streamable HTTP, stateful sessions)
// with the tools, resources and prompts the server scenarios of
// @modelcontextprotocol/conformance ask for, written here from the scenario
// descriptions (`conformance list --server`, each scenario's "Server
// Implementation Requirements"). The end-to-end test tests/e2e/conformance_test.go
// runs the suite against it directly and through the gateway and compares.
//
// Usage: node conformance-server.mjs <port>
// Listens on 127.0.0.1:<port>, MCP endpoint /mcp. Prints "listening <port>"
// once ready. Requests whose Host or Origin is not a loopback name are
// refused with 403 (DNS-rebinding protection, as the spec asks of local
// servers).
import http from "node:http";
import { randomUUID } from "node:crypto";
import { Server } from "@modelcontextprotocol/sdk/server/index.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import {
  CallToolRequestSchema,
  CompleteRequestSchema,
  CreateMessageResultSchema,
  ElicitResultSchema,
  ErrorCode,
  GetPromptRequestSchema,
  ListPromptsRequestSchema,
  ListResourceTemplatesRequestSchema,
  ListResourcesRequestSchema,
  ListToolsRequestSchema,
  McpError,
  ReadResourceRequestSchema,
  SubscribeRequestSchema,
  UnsubscribeRequestSchema,
} from "@modelcontextprotocol/sdk/types.js";

const port = Number(process.argv[2]);
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  console.error("usage: node conformance-server.mjs <port>");
  process.exit(2);
}

// A 1x1 PNG and a WAV of eight silent 8-bit samples, generated for this file.
const PNG =
  "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC";
const WAV = "UklGRiwAAABXQVZFZm10IBAAAAABAAEAQB8AAEAfAAABAAgAZGF0YQgAAACAgICAgICAgA==";

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const noArgs = { type: "object", properties: {} };

const tools = [
  { name: "test_simple_text", description: "Returns one text item", inputSchema: noArgs },
  { name: "test_image_content", description: "Returns one PNG image", inputSchema: noArgs },
  { name: "test_audio_content", description: "Returns one WAV clip", inputSchema: noArgs },
  { name: "test_embedded_resource", description: "Returns an embedded text resource", inputSchema: noArgs },
  { name: "test_multiple_content_types", description: "Returns text, image and resource", inputSchema: noArgs },
  { name: "test_tool_with_logging", description: "Logs three messages while running", inputSchema: noArgs },
  { name: "test_tool_with_progress", description: "Reports progress 0, 50, 100 of 100", inputSchema: noArgs },
  { name: "test_error_handling", description: "Always fails with isError", inputSchema: noArgs },
  {
    name: "test_sampling",
    description: "Asks the client to sample an LLM",
    inputSchema: { type: "object", properties: { prompt: { type: "string" } }, required: ["prompt"] },
  },
  {
    name: "test_elicitation",
    description: "Asks the client for a username and email",
    inputSchema: { type: "object", properties: { message: { type: "string" } }, required: ["message"] },
  },
  { name: "test_elicitation_sep1034_defaults", description: "Elicits with defaults of every primitive type", inputSchema: noArgs },
  { name: "test_elicitation_sep1330_enums", description: "Elicits with the five enum forms", inputSchema: noArgs },
  { name: "test_reconnection", description: "Closes its SSE stream mid-call, then answers", inputSchema: noArgs },
  {
    name: "json_schema_2020_12_tool",
    description: "Input schema using JSON Schema 2020-12 keywords",
    inputSchema: {
      $schema: "https://json-schema.org/draft/2020-12/schema",
      type: "object",
      $defs: {
        address: { type: "object", properties: { street: { type: "string" }, city: { type: "string" } } },
      },
      properties: { name: { type: "string" }, address: { $ref: "#/$defs/address" } },
      additionalProperties: false,
    },
  },
];

const text = (t) => ({ type: "text", text: t });

async function callTool(req, extra) {
  const args = req.params.arguments ?? {};
  switch (req.params.name) {
    case "test_simple_text":
      return { content: [text("Simple text from the conformance server.")] };
    case "test_image_content":
      return { content: [{ type: "image", data: PNG, mimeType: "image/png" }] };
    case "test_audio_content":
      return { content: [{ type: "audio", data: WAV, mimeType: "audio/wav" }] };
    case "test_embedded_resource":
      return {
        content: [
          { type: "resource", resource: { uri: "test://embedded-resource", mimeType: "text/plain", text: "Embedded text." } },
        ],
      };
    case "test_multiple_content_types":
      return {
        content: [
          text("Three kinds of content follow."),
          { type: "image", data: PNG, mimeType: "image/png" },
          {
            type: "resource",
            resource: { uri: "test://mixed-content-resource", mimeType: "application/json", text: '{"kind":"mixed","n":3}' },
          },
        ],
      };
    case "test_tool_with_logging": {
      const log = (data) => extra.sendNotification({ method: "notifications/message", params: { level: "info", data } });
      await log("logging tool: start");
      await sleep(50);
      await log("logging tool: working");
      await sleep(50);
      await log("logging tool: done");
      return { content: [text("Logged three messages.")] };
    }
    case "test_tool_with_progress": {
      const token = req.params._meta?.progressToken;
      for (const p of [0, 50, 100]) {
        if (token !== undefined) {
          await extra.sendNotification({ method: "notifications/progress", params: { progressToken: token, progress: p, total: 100 } });
        }
        if (p < 100) await sleep(50);
      }
      return { content: [text("Progress reported.")] };
    }
    case "test_error_handling":
      return { isError: true, content: [text("This tool fails on purpose.")] };
    case "test_sampling": {
      const res = await extra.sendRequest(
        {
          method: "sampling/createMessage",
          params: { messages: [{ role: "user", content: text(String(args.prompt ?? "")) }], maxTokens: 100 },
        },
        CreateMessageResultSchema,
      );
      const got = res.content?.type === "text" ? res.content.text : JSON.stringify(res.content);
      return { content: [text(`Sampled: ${got}`)] };
    }
    case "test_elicitation":
      return elicit(extra, String(args.message ?? ""), {
        type: "object",
        properties: {
          username: { type: "string", description: "Your user name" },
          email: { type: "string", description: "Your email address" },
        },
        required: ["username", "email"],
      });
    case "test_elicitation_sep1034_defaults":
      return elicit(extra, "Confirm or change the defaults", {
        type: "object",
        properties: {
          name: { type: "string", default: "John Doe" },
          age: { type: "integer", default: 30 },
          score: { type: "number", default: 95.5 },
          status: { type: "string", enum: ["active", "inactive", "pending"], default: "active" },
          verified: { type: "boolean", default: true },
        },
      });
    case "test_elicitation_sep1330_enums":
      return elicit(extra, "Pick options", {
        type: "object",
        properties: {
          untitledSingle: { type: "string", enum: ["option1", "option2", "option3"] },
          titledSingle: {
            type: "string",
            oneOf: [
              { const: "value1", title: "Value one" },
              { const: "value2", title: "Value two" },
            ],
          },
          legacyEnum: { type: "string", enum: ["opt1", "opt2", "opt3"], enumNames: ["Opt one", "Opt two", "Opt three"] },
          untitledMulti: { type: "array", items: { type: "string", enum: ["option1", "option2", "option3"] } },
          titledMulti: {
            type: "array",
            items: {
              anyOf: [
                { const: "value1", title: "Choice one" },
                { const: "value2", title: "Choice two" },
              ],
            },
          },
        },
      });
    case "test_reconnection":
      // Close the POST stream; the answer is then delivered on the GET
      // stream the client opens with Last-Event-ID (replayed from the event
      // store).
      await sleep(50);
      extra.closeSSEStream?.();
      await sleep(200);
      return { content: [text("Answered after the stream was closed.")] };
    default:
      throw new McpError(ErrorCode.InvalidParams, `unknown tool ${req.params.name}`);
  }
}

async function elicit(extra, message, requestedSchema) {
  const res = await extra.sendRequest({ method: "elicitation/create", params: { message, requestedSchema } }, ElicitResultSchema);
  return { content: [text(`Elicitation: action=${res.action}, content=${JSON.stringify(res.content ?? {})}`)] };
}

const resources = [
  { uri: "test://static-text", name: "static-text", description: "A fixed text resource", mimeType: "text/plain" },
  { uri: "test://static-binary", name: "static-binary", description: "A fixed PNG", mimeType: "image/png" },
  { uri: "test://watched-resource", name: "watched-resource", description: "A resource to subscribe to", mimeType: "text/plain" },
];

function readResource(uri) {
  if (uri === "test://static-text") return [{ uri, mimeType: "text/plain", text: "Static text resource." }];
  if (uri === "test://static-binary") return [{ uri, mimeType: "image/png", blob: PNG }];
  if (uri === "test://watched-resource") return [{ uri, mimeType: "text/plain", text: "Watched." }];
  const m = /^test:\/\/template\/([^/]+)\/data$/.exec(uri);
  if (m) return [{ uri, mimeType: "application/json", text: JSON.stringify({ id: m[1], from: "template" }) }];
  throw new McpError(ErrorCode.InvalidParams, `no resource ${uri}`);
}

const prompts = [
  { name: "test_simple_prompt", description: "A prompt without arguments" },
  {
    name: "test_prompt_with_arguments",
    description: "A prompt with two arguments",
    arguments: [
      { name: "arg1", description: "first", required: true },
      { name: "arg2", description: "second", required: true },
    ],
  },
  {
    name: "test_prompt_with_embedded_resource",
    description: "A prompt embedding a resource",
    arguments: [{ name: "resourceUri", description: "resource to embed", required: true }],
  },
  { name: "test_prompt_with_image", description: "A prompt with an image" },
];

function getPrompt(name, args = {}) {
  const user = (content) => ({ role: "user", content });
  switch (name) {
    case "test_simple_prompt":
      return { messages: [user(text("A simple prompt."))] };
    case "test_prompt_with_arguments":
      return { messages: [user(text(`arg1=${args.arg1} arg2=${args.arg2}`))] };
    case "test_prompt_with_embedded_resource":
      return {
        messages: [
          user({ type: "resource", resource: { uri: String(args.resourceUri ?? ""), mimeType: "text/plain", text: "Embedded." } }),
          user(text("Use the resource above.")),
        ],
      };
    case "test_prompt_with_image":
      return { messages: [user({ type: "image", data: PNG, mimeType: "image/png" }), user(text("Describe the image."))] };
    default:
      throw new McpError(ErrorCode.InvalidParams, `no prompt ${name}`);
  }
}

function newServer() {
  const server = new Server(
    { name: "mcpgate-conformance-server", version: "1.0.0" },
    { capabilities: { tools: {}, resources: { subscribe: true }, prompts: {}, logging: {}, completions: {} } },
  );
  const subscriptions = new Set();
  server.setRequestHandler(ListToolsRequestSchema, async () => ({ tools }));
  server.setRequestHandler(CallToolRequestSchema, callTool);
  server.setRequestHandler(ListResourcesRequestSchema, async () => ({ resources }));
  server.setRequestHandler(ListResourceTemplatesRequestSchema, async () => ({
    resourceTemplates: [{ uriTemplate: "test://template/{id}/data", name: "template", description: "Data by id", mimeType: "application/json" }],
  }));
  server.setRequestHandler(ReadResourceRequestSchema, async (req) => ({ contents: readResource(req.params.uri) }));
  server.setRequestHandler(SubscribeRequestSchema, async (req) => {
    subscriptions.add(req.params.uri);
    return {};
  });
  server.setRequestHandler(UnsubscribeRequestSchema, async (req) => {
    subscriptions.delete(req.params.uri);
    return {};
  });
  server.setRequestHandler(ListPromptsRequestSchema, async () => ({ prompts }));
  server.setRequestHandler(GetPromptRequestSchema, async (req) => getPrompt(req.params.name, req.params.arguments));
  server.setRequestHandler(CompleteRequestSchema, async (req) => {
    const prefix = String(req.params.argument?.value ?? "");
    const values = ["alpha", "beta", "gamma"].filter((v) => v.startsWith(prefix));
    return { completion: { values, total: values.length, hasMore: false } };
  });
  return server;
}

// In-memory event store: events of a stream are kept in order so a client
// reconnecting with Last-Event-ID gets everything sent after that event.
class MemoryEventStore {
  constructor() {
    this.events = []; // { id, streamId, message }
    this.seq = 0;
  }
  async storeEvent(streamId, message) {
    const id = `${streamId}.${++this.seq}`;
    this.events.push({ id, streamId, message });
    return id;
  }
  async getStreamIdForEventId(eventId) {
    return this.events.find((e) => e.id === eventId)?.streamId;
  }
  async replayEventsAfter(lastEventId, { send }) {
    const i = this.events.findIndex((e) => e.id === lastEventId);
    if (i < 0) return "";
    const streamId = this.events[i].streamId;
    for (const e of this.events.slice(i + 1)) {
      if (e.streamId === streamId) await send(e.id, e.message);
    }
    return streamId;
  }
}

const loopbackNames = new Set(["localhost", "127.0.0.1", "[::1]", "::1"]);
function isLoopback(hostport) {
  if (!hostport) return true;
  try {
    return loopbackNames.has(new URL(`http://${hostport}`).hostname.toLowerCase());
  } catch {
    return false;
  }
}
function originOK(origin) {
  if (!origin) return true;
  try {
    return loopbackNames.has(new URL(origin).hostname.toLowerCase());
  } catch {
    return false;
  }
}

const transports = new Map(); // session id -> transport

function reply(res, status, message) {
  res.writeHead(status, { "Content-Type": "application/json" });
  res.end(JSON.stringify({ jsonrpc: "2.0", error: { code: -32000, message }, id: null }));
}

async function readJSON(req) {
  const chunks = [];
  for await (const c of req) chunks.push(c);
  return JSON.parse(Buffer.concat(chunks).toString("utf8"));
}

const httpServer = http.createServer(async (req, res) => {
  try {
    if (new URL(req.url, "http://x").pathname !== "/mcp") return reply(res, 404, "not found");
    if (!isLoopback(req.headers.host) || !originOK(req.headers.origin)) {
      return reply(res, 403, "Host or Origin is not a loopback name");
    }
    const sid = req.headers["mcp-session-id"];
    if (sid) {
      const t = transports.get(sid);
      if (!t) return reply(res, 404, "unknown session");
      return await t.handleRequest(req, res);
    }
    if (req.method !== "POST") return reply(res, 400, "no session");
    let body;
    try {
      body = await readJSON(req);
    } catch {
      return reply(res, 400, "body is not JSON");
    }
    if (body?.method !== "initialize") return reply(res, 400, "no session: initialize first");
    const transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      eventStore: new MemoryEventStore(),
      retryInterval: 500,
      onsessioninitialized: (id) => transports.set(id, transport),
      onsessionclosed: (id) => transports.delete(id),
    });
    transport.onclose = () => {
      if (transport.sessionId) transports.delete(transport.sessionId);
    };
    await newServer().connect(transport);
    await transport.handleRequest(req, res, body);
  } catch (err) {
    console.error("request failed:", err);
    if (!res.headersSent) reply(res, 500, "internal error");
  }
});

httpServer.listen(port, "127.0.0.1", () => console.log(`listening ${port}`));
for (const sig of ["SIGTERM", "SIGINT"]) process.on(sig, () => process.exit(0));
