/**
 * Errors as the HTTP API answers them: `{ "error": { "code", "message" } }` with a status. The one place
 * that maps a `SluiceError` code to a status; anything else is a 500 `INTERNAL` with a generic message
 * (the error itself goes to the sluice logger, never to the client).
 */
import { redactUrl, SluiceError, StoreTimeoutError, ValidationError } from "../index.js";

/** Codes only the HTTP layer raises (the rest are `SluiceErrorCode`s). */
export type HttpOnlyCode =
  | "UNAUTHORIZED"
  | "FORBIDDEN"
  | "NOT_FOUND"
  | "UNSUPPORTED_MEDIA_TYPE"
  | "BODY_TOO_LARGE"
  | "ENQUEUE_DISABLED"
  | "JOB_STATE_CONFLICT"
  | "INTERNAL";

/** An error the HTTP layer raises with its own status. */
export class HttpError extends Error {
  constructor(
    readonly status: 400 | 401 | 403 | 404 | 409 | 413 | 415 | 500 | 503 | 504,
    readonly code: HttpOnlyCode | string,
    message: string,
  ) {
    super(message);
    this.name = "HttpError";
  }
}

/** Status of each `SluiceError` code a client may see; codes absent here answer 500 INTERNAL. */
const STATUS: Readonly<Record<string, 400 | 404 | 409 | 413 | 503 | 504>> = {
  INVALID_OPTION: 400,
  INVALID_PAYLOAD: 400,
  SCHEMA_VALIDATION: 400,
  INVALID_CRON: 400,
  INVALID_CONFIG: 400,
  INVALID_TRANSACTION: 400,
  TRANSACTION_UNSUPPORTED: 400,
  UNKNOWN_TASK: 400,
  PAYLOAD_TOO_LARGE: 413,
  JOB_NOT_FOUND: 404,
  BATCH_NOT_FOUND: 404,
  DEPENDENCY_NOT_FOUND: 400,
  DEPENDENCY_CYCLE: 400,
  BATCH_FINISHED: 409,
  BATCH_EXISTS: 409,
  SCHEDULE_NOT_FOUND: 404,
  STORE_UNAVAILABLE: 503,
  CLOSED: 503,
  STORE_TIMEOUT: 504,
};

/** The response for `error`: status and body; `unexpected` is true when it must be logged as a bug. */
export function toErrorResponse(
  error: unknown,
  secrets: readonly string[] = [],
): {
  status: number;
  body: { error: { code: string; message: string; field?: string } };
  unexpected: boolean;
} {
  if (error instanceof HttpError) {
    return {
      status: error.status,
      body: { error: { code: error.code, message: error.message } },
      unexpected: false,
    };
  }
  if (error instanceof SluiceError) {
    const status = STATUS[error.code];
    if (status !== undefined) {
      const field = error instanceof ValidationError ? error.field : undefined;
      return {
        status,
        body: {
          error: {
            code: error.code,
            message: scrub(error.message, secrets),
            ...(field !== undefined ? { field } : {}),
          },
        },
        unexpected: false,
      };
    }
  }
  return {
    status: 500,
    body: { error: { code: "INTERNAL", message: "internal error; the server's log has the details" } },
    unexpected: true,
  };
}

/**
 * A message safe to send: every URL in it through `redactUrl`, and every known secret (the store URL's
 * password, the API tokens) replaced by `***`, in case a driver's message quotes one.
 */
export function scrub(message: string, secrets: readonly string[]): string {
  let out = message.replace(/\b[a-z][a-z0-9+.-]*:\/\/[^\s"'<>]+/gi, (url) => redactUrl(url));
  for (const secret of secrets) {
    if (secret.length >= 4) out = out.split(secret).join("***");
  }
  return out;
}

/**
 * `promise`, or a StoreTimeoutError (504 STORE_TIMEOUT) once `ms` have passed without it settling. The call
 * itself is not cancelled (a store call cannot be), so its late failure is swallowed rather than left as an
 * unhandled rejection.
 */
export async function withDeadline<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new StoreTimeoutError(ms)), ms);
  });
  promise.catch(() => {});
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}
