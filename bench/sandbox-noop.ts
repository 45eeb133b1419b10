/** The no-op handler bench/sandbox.ts runs in its sandboxes. */
export default function noop(): null {
  return null;
}
