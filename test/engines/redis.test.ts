/** The conformance suite against the shared development Redis: every run works under its own key prefix. */
import { defineConformanceSuite } from "../conformance/suite.js";
import { conformanceHarness } from "../support/engines/index.js";

defineConformanceSuite(conformanceHarness("redis"));
