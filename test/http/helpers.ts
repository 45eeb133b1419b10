/** Test plumbing for the HTTP API: a real node:http server on 127.0.0.1 (port 0) and a fetch helper. */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { getRequestListener } from "@hono/node-server";
import { createHttpApi, type HttpApiOptions } from "../../src/http/index.js";
import type { Sluice } from "../../src/index.js";

export const ADMIN_TOKEN = "admin-token-0123456789abcdef";
export const READ_TOKEN = "read-token-0123456789abcdef";
export const TOKENS = `admin:${ADMIN_TOKEN},read:${READ_TOKEN}`;

/** A running API server. */
export interface ApiServer {
  base: string;
  server: Server;
  close(): Promise<void>;
}

/** Listens on `server` at 127.0.0.1, any free port. */
export async function listen(server: Server): Promise<ApiServer> {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    base: `http://127.0.0.1:${port}`,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** The API of `sluice` on a node:http server. */
export function startApi(sluice: Sluice, options: HttpApiOptions = {}): Promise<ApiServer> {
  const app = createHttpApi(sluice, { tokens: TOKENS, ...options });
  return listen(createServer(getRequestListener(app.fetch)));
}

/** A response as the tests read it. */
export interface Answer {
  status: number;
  body: unknown;
  text: string;
  headers: Headers;
}

/** Calls the API: JSON body (with the JSON content type) unless `raw` gives another. */
export async function call(
  base: string,
  method: string,
  path: string,
  options: {
    token?: string | null;
    body?: unknown;
    raw?: string;
    headers?: Record<string, string>;
    /** Gives up the request (rejecting) when it aborts: a deadline for calls that could hang. */
    signal?: AbortSignal;
  } = {},
): Promise<Answer> {
  const headers: Record<string, string> = {};
  const token = options.token === undefined ? ADMIN_TOKEN : options.token;
  if (token !== null) headers.authorization = `Bearer ${token}`;
  let body: string | undefined;
  if (method === "GET") body = undefined;
  else if (options.raw !== undefined) body = options.raw;
  else if (options.body !== undefined) body = JSON.stringify(options.body);
  else body = "";
  if (method !== "GET") headers["content-type"] = "application/json";
  Object.assign(headers, options.headers ?? {});
  const response = await fetch(`${base}${path}`, {
    method,
    headers,
    ...(body !== undefined ? { body } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
  });
  // An event stream never ends by itself: its status and headers are the answer.
  if (response.headers.get("content-type")?.startsWith("text/event-stream")) {
    await response.body?.cancel();
    return { status: response.status, body: null, text: "", headers: response.headers };
  }
  const text = await response.text();
  let parsed: unknown = null;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = null;
  }
  return { status: response.status, body: parsed, text, headers: response.headers };
}

/** The error code of an error answer. */
export function codeOf(answer: Answer): string | undefined {
  return (answer.body as { error?: { code?: string } } | null)?.error?.code;
}
