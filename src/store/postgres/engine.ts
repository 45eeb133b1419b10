/** The PostgreSQL engine's descriptor (see ../engine.ts): `postgres://user@host:5432/db?schema=sluice`. */
import type { EngineDescriptor } from "../engine.js";
import { type PostgresConfig, parsePostgresUrl, postgresTarget } from "./config.js";

export const postgresEngine: EngineDescriptor<"postgres", PostgresConfig> = {
  name: "postgres",
  urlExample: "postgres://…",
  matches: (url) => url.startsWith("postgres://") || url.startsWith("postgresql://"),
  parseUrl: (url) => parsePostgresUrl(url),
  doctorTarget: (url) => postgresTarget(url),
  async create(url, options) {
    const { PostgresStore } = await import("./postgres-store.js");
    return new PostgresStore(url, options);
  },
  traits: { inProcess: false, claimAhead: true },
};
