/**
 * The client side of bench/sse-fanout.ts, in its own process so reading 200 streams does not share an
 * event loop with the server it measures. argv[2] = JSON { base, token, queues: string[] } (client i follows
 * queues[i]). Prints `ready` once every stream is open; on SIGTERM prints `result <json>` and exits.
 */
const { base, token, queues } = JSON.parse(process.argv[2] ?? "{}") as {
  base: string;
  token: string;
  queues: string[];
};
const delays: number[] = [];
let received = 0;
let opened = 0;
let failed = 0;

async function follow(queue: string): Promise<void> {
  const res = await fetch(`${base}/events?queue=${encodeURIComponent(queue)}`, {
    headers: { authorization: `Bearer ${token}`, accept: "text/event-stream" },
  });
  if (res.status !== 200 || !res.body) throw new Error(`stream answered ${res.status}`);
  opened++;
  if (opened === queues.length) process.stdout.write("ready\n");
  const decoder = new TextDecoder();
  let buffer = "";
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(chunk, { stream: true });
    for (let end = buffer.indexOf("\n\n"); end >= 0; end = buffer.indexOf("\n\n")) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const data = block.split("\n").find((line) => line.startsWith("data: "));
      if (!data || !block.includes("\nevent: ")) continue;
      const event = JSON.parse(data.slice(6)) as { at: number };
      received++;
      delays.push(Date.now() - event.at);
    }
  }
}

for (const queue of queues) {
  follow(queue).catch((error: unknown) => {
    failed++;
    process.stderr.write(`client for ${queue}: ${String(error)}\n`);
  });
}
process.once("SIGTERM", () => {
  delays.sort((a, b) => a - b);
  const at = (p: number) => delays[Math.min(delays.length - 1, Math.floor(p * delays.length))] ?? 0;
  process.stdout.write(
    `result ${JSON.stringify({ received, failed, p50: at(0.5), p99: at(0.99), max: delays.at(-1) ?? 0 })}\n`,
  );
  process.exit(0);
});
