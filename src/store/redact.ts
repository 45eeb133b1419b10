/** Store URLs made safe to print: logs, error messages, `sluice info` and `sluice doctor`. */

/** The URL with any password replaced, safe for logs and error messages. */
export function redactUrl(url: string): string {
  return url.replace(/(\/\/[^:/@]*:)[^@]*@/, "$1***@");
}
