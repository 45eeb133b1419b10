/** The conformance suite against SQLite: each run gets its own database file (test/support/engines). */
import { defineConformanceSuite } from "../conformance/suite.js";
import { conformanceHarness } from "../support/engines/index.js";

defineConformanceSuite(conformanceHarness("sqlite"));
