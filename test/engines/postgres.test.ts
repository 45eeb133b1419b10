/**
 * The conformance suite against PostgreSQL. Each suite run gets its own schema on the shared server, so
 * concurrent runs (and other test files) never see each other's jobs; the schema is dropped afterwards
 * (test/support/engines).
 */
import { defineConformanceSuite } from "../conformance/suite.js";
import { conformanceHarness } from "../support/engines/index.js";

defineConformanceSuite(conformanceHarness("postgres"));
