/**
 * The fixes `sluice doctor` prints for Redis settings run as printed in a shell: every part joined by `&&`
 * is a `redis-cli` command (the doctor aims it at the server), and prose only follows a `#`.
 */
import { describe, expect, it } from "vitest";
import { hazardsOf } from "../../src/store/redis/hazards.js";

const SETTINGS = [
  { policy: undefined, aof: false, appendfsync: null },
  { policy: "allkeys-lru", aof: true, appendfsync: "no" },
  { policy: "noeviction", aof: true, appendfsync: "everysec" },
];

describe("Redis hazard fixes", () => {
  it.each(SETTINGS)("are shell commands for %j", (settings) => {
    for (const hazard of hazardsOf(settings)) {
      if (hazard.severity === "ok") continue;
      const command = (hazard.fix ?? "").split("#")[0] ?? "";
      const parts = command.split("&&").map((p) => p.trim());
      expect(parts.length).toBeGreaterThan(0);
      for (const part of parts)
        expect(part, hazard.fix).toMatch(/^redis-cli CONFIG (SET [a-z-]+ [a-z]+|REWRITE)$/);
    }
  });
});
