/** A minimal Server-Sent Events reader over fetch, for tests: parses messages as they arrive. */
export interface SseMessage {
  id: string | null;
  event: string;
  data: string;
}

export interface SseConnection {
  status: number;
  headers: Headers;
  /** Resolves with the next message (comments such as heartbeats are counted, not returned). */
  next(timeoutMs?: number): Promise<SseMessage>;
  /** Comment lines seen so far (heartbeats). */
  comments: number;
  close(): void;
}

export async function connectSse(url: string, headers: Record<string, string> = {}): Promise<SseConnection> {
  const abort = new AbortController();
  const res = await fetch(url, {
    headers: { accept: "text/event-stream", ...headers },
    signal: abort.signal,
  });
  const queue: SseMessage[] = [];
  const waiters: ((m: SseMessage | Error) => void)[] = [];
  const connection: SseConnection = {
    status: res.status,
    headers: res.headers,
    comments: 0,
    close: () => abort.abort(),
    next(timeoutMs = 20_000) {
      const ready = queue.shift();
      if (ready) return Promise.resolve(ready);
      return new Promise<SseMessage>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no SSE message within ${timeoutMs} ms`)), timeoutMs);
        waiters.push((m) => {
          clearTimeout(timer);
          if (m instanceof Error) reject(m);
          else resolve(m);
        });
      });
    },
  };
  if (!res.body || res.status !== 200) return connection;
  void (async () => {
    const decoder = new TextDecoder();
    let buffer = "";
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        buffer += decoder.decode(chunk, { stream: true });
        for (let end = buffer.indexOf("\n\n"); end >= 0; end = buffer.indexOf("\n\n")) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const message: SseMessage = { id: null, event: "message", data: "" };
          let fields = 0;
          for (const line of block.split("\n")) {
            if (line.startsWith(":")) {
              connection.comments++;
              continue;
            }
            const [field, value] = [line.slice(0, line.indexOf(": ")), line.slice(line.indexOf(": ") + 2)];
            if (field === "id") message.id = value;
            else if (field === "event") message.event = value;
            else if (field === "data") message.data += value;
            else continue;
            fields++;
          }
          if (fields === 0) continue;
          const waiter = waiters.shift();
          if (waiter) waiter(message);
          else queue.push(message);
        }
      }
    } catch {
      // aborted by close(), or the server ended the stream
    }
    for (const waiter of waiters.splice(0)) waiter(new Error("the SSE stream ended"));
  })();
  return connection;
}
