/** The SQLite engine's descriptor (see ../engine.ts): `sqlite:./sluice.db`, `sqlite:/abs.db`, `sqlite::memory:`. */
import type { EngineDescriptor } from "../engine.js";
import { parseSqliteUrl, type SqliteConfig, sqliteTarget } from "./config.js";

export const sqliteEngine: EngineDescriptor<"sqlite", SqliteConfig> = {
  name: "sqlite",
  urlExample: "sqlite:./sluice.db",
  matches: (url) => url.startsWith("sqlite:"),
  parseUrl: (url) => parseSqliteUrl(url),
  doctorTarget: (url) => sqliteTarget(url),
  async create(url, options) {
    const { SqliteStore } = await import("./sqlite-store.js");
    return new SqliteStore(url, options);
  },
  traits: { inProcess: true },
};
