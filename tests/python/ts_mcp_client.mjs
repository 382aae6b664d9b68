// The TypeScript SDK's MCP client (@modelcontextprotocol/sdk) for test_gateway_oauth.py:
//   node ts_mcp_client.mjs URL token TOKEN               -> lists tools with a bearer token
//   node ts_mcp_client.mjs URL credentials ID SECRET     -> discovers the issuer from the 401 and
//                                                           gets a token (client_credentials)
// Prints one JSON line: {"tools": [...names], "token": "..."} or {"error": "..."}.
// The SDK is found under MCP_SDK_DIR (the cached conformance suite's node_modules).
const sdk = process.env.MCP_SDK_DIR;
const { Client } = await import(`${sdk}/dist/esm/client/index.js`);
const { StreamableHTTPClientTransport } = await import(`${sdk}/dist/esm/client/streamableHttp.js`);
const { ClientCredentialsProvider } = await import(`${sdk}/dist/esm/client/auth-extensions.js`);

const [url, how, a, b] = process.argv.slice(2);
const options = {};
let provider;
if (how === "token") {
  options.requestInit = { headers: { Authorization: `Bearer ${a}` } };
} else {
  provider = new ClientCredentialsProvider({ clientId: a, clientSecret: b, scope: "tools:call" });
  options.authProvider = provider;
}
const client = new Client({ name: "switchboard-ts-test", version: "1.0.0" });
try {
  await client.connect(new StreamableHTTPClientTransport(new URL(url), options));
  const { tools } = await client.listTools();
  const token = provider ? (await provider.tokens())?.access_token : undefined;
  console.log(JSON.stringify({ tools: tools.map((t) => t.name).sort(), token }));
  await client.close();
} catch (error) {
  console.log(JSON.stringify({ error: String(error?.message ?? error) }));
}
process.exit(0);
