/**
 * Store URLs made safe to print: logs, error messages, `sluice info`, `sluice doctor`, `sluice migrate`,
 * `sluice dev` and `Sluice.safeUrl` all go through {@link redactUrl}, and nothing else prints a URL.
 *
 * The URL is split the way the drivers split it (`pg` and `ioredis` both use the WHATWG parser): the
 * authority ends at the first `/`, `?` or `#` after `//`, and the user info runs to the LAST `@` in it, so
 * a password holding `@` is masked whole. Every query parameter whose name (case-insensitive, raw or
 * percent-encoded) looks like a credential is masked too: `pg` and `ioredis` both read `?password=`, and
 * TLS key material travels as `sslkey` / `sslpassword`. When the URL is so malformed that a driver would
 * misread it (a raw `/`, `?` or `#` inside the password), everything up to the last `@` is masked: a URL
 * that cannot work is better shown short than with a piece of its password. SQLite URLs carry no
 * credentials and are returned as they are.
 */

/** Query parameter names (decoded, case-insensitive) whose values are never shown. */
const SECRET_PARAM = /pass|pwd|secret|token|auth|key|credential|signature/i;

/** A host and optional port as the WHATWG parser accepts them in an authority (IPv6 in brackets). */
const HOST_PORT = /^(\[[0-9A-Fa-f:.%A-Za-z]*\]|[A-Za-z0-9._~%!$&'()*+,;=-]*)(:\d*)?$/;

const MASK = "***";

/** The URL with every credential replaced by `***`, safe for logs and error messages. */
export function redactUrl(url: string): string {
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(url);
  if (scheme?.[1]?.toLowerCase() === "sqlite") return url;
  let start = scheme ? scheme[0].length : 0;
  const hierarchical = url.startsWith("//", start);
  if (hierarchical) start += 2;
  const head = url.slice(0, start);
  const rest = url.slice(start);

  const delimiter = rest.search(/[/?#]/);
  const authorityEnd = delimiter < 0 ? rest.length : delimiter;
  let at = rest.lastIndexOf("@", authorityEnd - 1);
  let malformed = !hierarchical;
  if (at < 0 && rest.includes("@") && !HOST_PORT.test(rest.slice(0, authorityEnd))) {
    // No `@` in the authority, but the authority is no host either: a raw delimiter in the password.
    at = rest.lastIndexOf("@");
    malformed = true;
  }
  let userInfo = "";
  let tail = rest;
  if (at >= 0) {
    const raw = rest.slice(0, at);
    const colon = raw.indexOf(":");
    const user = colon < 0 ? raw : raw.slice(0, colon);
    // Without `//` (or with a broken authority) a user and a password cannot be told apart: hide both.
    userInfo = malformed || /[/?#]/.test(user) ? `${MASK}@` : colon < 0 ? `${raw}@` : `${user}:${MASK}@`;
    tail = rest.slice(at + 1);
  }
  return head + userInfo + redactQuery(tail);
}

/** Masks credential-like query parameters in `text` (whatever precedes the first `?` is kept). */
function redactQuery(text: string): string {
  const question = text.indexOf("?");
  if (question < 0) return text;
  const hash = text.indexOf("#", question);
  const end = hash < 0 ? text.length : hash;
  const query = text
    .slice(question + 1, end)
    .split("&")
    .map((part) => {
      const equals = part.indexOf("=");
      if (equals < 0) return part;
      const name = part.slice(0, equals);
      return SECRET_PARAM.test(decodeName(name)) ? `${name}=${MASK}` : part;
    })
    .join("&");
  return `${text.slice(0, question + 1)}${query}${text.slice(end)}`;
}

function decodeName(name: string): string {
  const spaced = name.replace(/\+/g, " ");
  try {
    return decodeURIComponent(spaced);
  } catch {
    // A broken escape: decode what can be decoded, so `pass%77ord%` is still recognised.
    return spaced.replace(/%([0-9A-Fa-f]{2})/g, (_, hex: string) =>
      String.fromCharCode(Number.parseInt(hex, 16)),
    );
  }
}
