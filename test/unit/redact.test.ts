/**
 * redactUrl (src/store/redact.ts), the one function every surface prints a store URL through: a corpus of
 * credential shapes, each with the exact redacted form and the secrets that must not survive. The same
 * corpus (its server URLs) goes through the real `sluice` binary in test/cli/redact.test.ts.
 */
import { describe, expect, it } from "vitest";
import { redactUrl } from "../../src/index.js";
import { CLI_CORPUS, REDACTION_CORPUS } from "../support/credential-corpus.js";

describe("redactUrl", () => {
  it("has a corpus of at least 15 credential shapes", () => {
    expect(REDACTION_CORPUS.length).toBeGreaterThanOrEqual(15);
  });

  it.each(REDACTION_CORPUS)("$name", ({ url, redacted, secrets }) => {
    const shown = redactUrl(url);
    expect(shown).toBe(redacted);
    for (const secret of secrets) expect(shown).not.toContain(secret);
  });

  it.each(CLI_CORPUS)("CLI corpus: $name", ({ url, secrets }) => {
    const shown = redactUrl(url);
    for (const secret of secrets) expect(shown).not.toContain(secret);
  });

  it("is idempotent: a redacted URL stays as it is", () => {
    for (const { redacted } of REDACTION_CORPUS) expect(redactUrl(redacted)).toBe(redacted);
  });

  it("keeps the user name and the rest of an ordinary URL, so the location stays useful", () => {
    expect(redactUrl("postgres://app:s3cret@db.example:6543/jobs?schema=sluice&pool=4")).toBe(
      "postgres://app:***@db.example:6543/jobs?schema=sluice&pool=4",
    );
    expect(redactUrl("redis://127.0.0.1:6379/0?prefix=jobs")).toBe("redis://127.0.0.1:6379/0?prefix=jobs");
  });
});
