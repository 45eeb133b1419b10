/** `sluice doctor` on postgres: every check's bad situation built for real (see ./suite.ts). */
import { doctorSuite } from "./suite.js";

doctorSuite("postgres");
