/**
 * The conformance suite against PostgreSQL. Each suite run gets its own schema on the shared server, so
 * concurrent runs (and other test files) never see each other's jobs; the schema is dropped afterwards.
 */
import { defineConformanceSuite } from "../conformance/suite.js";
import { dropSchema, SHARED_URL, uniqueSchema, urlWithSchema } from "../postgres/pg-test-utils.js";

const schemas = new Map<string, string>();

defineConformanceSuite({
  name: "postgres",
  async newUrl() {
    const schema = uniqueSchema();
    const url = urlWithSchema(SHARED_URL, schema);
    schemas.set(url, schema);
    return url;
  },
  async cleanup(url) {
    const schema = schemas.get(url);
    if (schema) await dropSchema(SHARED_URL, schema);
  },
});
