/** `sluice doctor` on sqlite: every check's bad situation built for real (see ./suite.ts). */
import { doctorSuite } from "./suite.js";

doctorSuite("sqlite");
