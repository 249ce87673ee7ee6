// An MCP client from another ecosystem (the official TypeScript SDK, pinned in this folder's
// package.json): starts `sak mcp` over stdio, lists its tools, makes the calls given, prints one
// JSON document. With SAK_MCP_INSPECT set it also reports what the server's process holds while
// it serves: its environment and the files it has open (Linux /proc).
//
//   node tools/node/mcp-client.mjs '["/path/to/sak", "mcp", "--session", "1"]' '[{"name": "status", "arguments": {}}]'
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { readFileSync, readdirSync, readlinkSync } from "node:fs";

const [command, ...args] = JSON.parse(process.argv[2]);
const calls = JSON.parse(process.argv[3] ?? "[]");
const transport = new StdioClientTransport({ command, args, env: process.env, stderr: "inherit" });
const client = new Client({ name: "sak-tests", version: "1.0.0" });
await client.connect(transport);
const listed = await client.listTools();
const results = [];
const elapsed_ms = [];
for (const call of calls) {
  const started = performance.now();
  results.push(await client.callTool(call));
  elapsed_ms.push(performance.now() - started);
}
let inspected = null;
if (process.env.SAK_MCP_INSPECT && transport.pid) {
  const proc = `/proc/${transport.pid}`;
  inspected = {
    environ: readFileSync(`${proc}/environ`, "latin1").split("\0").join("\n"),
    fds: readdirSync(`${proc}/fd`).map((fd) => {
      try {
        return readlinkSync(`${proc}/fd/${fd}`);
      } catch {
        return "";
      }
    }),
  };
}
await client.close();
console.log(JSON.stringify({
  tools: listed.tools.map((t) => ({ name: t.name, input_schema: t.inputSchema })),
  results,
  elapsed_ms,
  inspected,
}));
