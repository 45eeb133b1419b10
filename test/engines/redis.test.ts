import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import { defineConformanceSuite } from "../conformance/suite.js";

/** The shared development Redis; every suite run works under its own key prefix. */
const REDIS = process.env.SLUICE_TEST_REDIS ?? "redis://127.0.0.1:6379/0";

defineConformanceSuite({
  name: "redis",
  async newUrl() {
    return `${REDIS}?prefix=sluice_t_${randomBytes(6).toString("hex")}`;
  },
  async cleanup(url) {
    const prefix = new URL(url).searchParams.get("prefix");
    if (!prefix) return;
    const client = new Redis(REDIS);
    try {
      for (const pattern of [`{${prefix}}:*`, `{${prefix}:q:*`]) {
        let cursor = "0";
        do {
          const [next, keys] = await client.scan(cursor, "MATCH", pattern, "COUNT", 1000);
          cursor = next;
          if (keys.length > 0) await client.unlink(...keys);
        } while (cursor !== "0");
      }
    } finally {
      client.disconnect();
    }
  },
});
