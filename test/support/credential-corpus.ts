/**
 * Store URLs with credentials in every shape the drivers accept (and a few they reject), each with the
 * exact form redactUrl must print and the secrets that must never appear anywhere
 * (test/unit/redact.test.ts), and {@link CLI_CORPUS}: the same shapes packed into a few URLs that point at
 * a closed port on loopback (or cannot be parsed at all), run through every CLI surface
 * (test/cli/redact.test.ts). Secrets are distinct from anything else Sluice prints.
 */
export interface CredentialShape {
  name: string;
  url: string;
  redacted: string;
  secrets: string[];
}

export const REDACTION_CORPUS: CredentialShape[] = [
  {
    name: "@ inside the password (the driver splits at the last @)",
    url: "redis://default:Hunter2Secret@Tail9Zq@127.0.0.1:1/0",
    redacted: "redis://default:***@127.0.0.1:1/0",
    secrets: ["Hunter2Secret", "Tail9Zq"],
  },
  {
    name: "percent-encoded @ (%40) in the password",
    url: "postgres://app:Pct%40Secret9@127.0.0.1:1/test",
    redacted: "postgres://app:***@127.0.0.1:1/test",
    secrets: ["Pct%40Secret9", "Pct@Secret9", "Secret9"],
  },
  {
    name: "password as a query option (pg reads it)",
    url: "postgres://app@127.0.0.1:1/test?password=QueryPw7x",
    redacted: "postgres://app@127.0.0.1:1/test?password=***",
    secrets: ["QueryPw7x"],
  },
  {
    name: "PASSWORD in capitals beside a Sluice option",
    url: "redis://127.0.0.1:1/0?PASSWORD=UpperPw3q&prefix=jobs",
    redacted: "redis://127.0.0.1:1/0?PASSWORD=***&prefix=jobs",
    secrets: ["UpperPw3q"],
  },
  {
    name: "percent-encoded parameter name (pass%77ord = password, ioredis reads it)",
    url: "redis://127.0.0.1:1/0?pass%77ord=EncName5k",
    redacted: "redis://127.0.0.1:1/0?pass%77ord=***",
    secrets: ["EncName5k"],
  },
  {
    name: "passwd, pwd, pass, token, access_token, secret, auth",
    url: "postgres://127.0.0.1:1/test?passwd=PasswdV1&pwd=PwdV2&pass=PassV3&token=TokenV4&access_token=AccessV5&Secret=SecretV6&auth=AuthV7",
    redacted:
      "postgres://127.0.0.1:1/test?passwd=***&pwd=***&pass=***&token=***&access_token=***&Secret=***&auth=***",
    secrets: ["PasswdV1", "PwdV2", "PassV3", "TokenV4", "AccessV5", "SecretV6", "AuthV7"],
  },
  {
    name: "apikey, api_key and ApiKey",
    url: "redis://127.0.0.1:1/0?apikey=ApiKeyA1&api_key=ApiKeyB2&ApiKey=ApiKeyC3",
    redacted: "redis://127.0.0.1:1/0?apikey=***&api_key=***&ApiKey=***",
    secrets: ["ApiKeyA1", "ApiKeyB2", "ApiKeyC3"],
  },
  {
    name: "sslpassword and sslkey",
    url: "postgres://app@127.0.0.1:1/test?sslpassword=SslPw9z&sslmode=disable",
    redacted: "postgres://app@127.0.0.1:1/test?sslpassword=***&sslmode=disable",
    secrets: ["SslPw9z"],
  },
  {
    name: "sslkey path is key material too",
    url: "postgres://app@db.example/test?sslkey=/keys/KeyFile3.pem",
    redacted: "postgres://app@db.example/test?sslkey=***",
    secrets: ["KeyFile3"],
  },
  {
    name: "rediss (TLS) with user and password",
    url: "rediss://ops:TlsSecret4@127.0.0.1:1/5",
    redacted: "rediss://ops:***@127.0.0.1:1/5",
    secrets: ["TlsSecret4"],
  },
  {
    name: "postgresql:// scheme",
    url: "postgresql://app:PgqlSecret6@127.0.0.1:1/test",
    redacted: "postgresql://app:***@127.0.0.1:1/test",
    secrets: ["PgqlSecret6"],
  },
  {
    name: "unix-socket PostgreSQL host (?host=/var/run/…, empty authority host)",
    url: "postgres://app:SockSecret8@/test?host=/var/run/postgresql",
    redacted: "postgres://app:***@/test?host=/var/run/postgresql",
    secrets: ["SockSecret8"],
  },
  {
    name: "IPv6 host",
    url: "redis://:V6Secret2@[::1]:1/0",
    redacted: "redis://:***@[::1]:1/0",
    secrets: ["V6Secret2"],
  },
  {
    name: "empty user, password only",
    url: "redis://:EmptyUser5@127.0.0.1:1/0",
    redacted: "redis://:***@127.0.0.1:1/0",
    secrets: ["EmptyUser5"],
  },
  {
    name: "a password that is a substring of the host",
    url: "redis://:cache@cache.internal:6379/0",
    redacted: "redis://:***@cache.internal:6379/0",
    secrets: [":cache@"],
  },
  {
    name: "raw / in the password (no driver can parse it): everything up to the last @ is hidden",
    url: "redis://:Slash/Secret1@127.0.0.1:1/0",
    redacted: "redis://***@127.0.0.1:1/0",
    secrets: ["Slash", "Secret1"],
  },
  {
    name: "raw # in the password",
    url: "postgres://app:Hash#Secret2@127.0.0.1:1/test",
    redacted: "postgres://***@127.0.0.1:1/test",
    secrets: ["Hash", "Secret2"],
  },
  {
    name: "@ in a query value that is no secret, password in the user info",
    url: "postgres://app:AtQuery4@127.0.0.1:1/test?application_name=me@corp",
    redacted: "postgres://app:***@127.0.0.1:1/test?application_name=me@corp",
    secrets: ["AtQuery4"],
  },
  {
    name: "user:password@host without a scheme (names no engine)",
    url: "app:NoScheme7@127.0.0.1:1",
    redacted: "app:***@127.0.0.1:1",
    secrets: ["NoScheme7"],
  },
  {
    name: "user only: nothing to hide",
    url: "postgres://app@127.0.0.1:1/test",
    redacted: "postgres://app@127.0.0.1:1/test",
    secrets: [],
  },
  {
    name: "SQLite URLs are untouched",
    url: "sqlite:./jobs.db?synchronous=full",
    redacted: "sqlite:./jobs.db?synchronous=full",
    secrets: [],
  },
  {
    name: "SQLite path with @ is untouched",
    url: "sqlite:///srv/app@2/jobs.db",
    redacted: "sqlite:///srv/app@2/jobs.db",
    secrets: [],
  },
];

/** A URL for the CLI surfaces and every secret it holds. */
export interface CliCredentialUrl {
  name: string;
  url: string;
  secrets: string[];
}

/**
 * Every server shape of {@link REDACTION_CORPUS} (the query spellings share a URL, so each CLI surface
 * runs a handful of times, not once per shape), on 127.0.0.1:1 / [::1]:1 where nothing listens.
 */
export const CLI_CORPUS: CliCredentialUrl[] = [
  {
    name: "redis: @ in the password, PASSWORD, pass%77ord, apikey spellings",
    url:
      "redis://default:Hunter2Secret@Tail9Zq@127.0.0.1:1/0?PASSWORD=UpperPw3q&pass%77ord=EncName5k" +
      "&apikey=ApiKeyA1&api_key=ApiKeyB2&ApiKey=ApiKeyC3&prefix=jobs",
    secrets: ["Hunter2Secret", "Tail9Zq", "UpperPw3q", "EncName5k", "ApiKeyA1", "ApiKeyB2", "ApiKeyC3"],
  },
  {
    name: "postgres: %40 in the password, ?password and every other spelling, sslpassword, @ in a value",
    url:
      "postgres://app:Pct%40Secret9@127.0.0.1:1/test?password=QueryPw7x&passwd=PasswdV1&pwd=PwdV2" +
      "&pass=PassV3&token=TokenV4&access_token=AccessV5&Secret=SecretV6&auth=AuthV7&sslpassword=SslPw9z" +
      "&application_name=me@corp",
    secrets: [
      "Pct%40Secret9",
      "Pct@Secret9",
      "Secret9",
      "QueryPw7x",
      "PasswdV1",
      "PwdV2",
      "PassV3",
      "TokenV4",
      "AccessV5",
      "SecretV6",
      "AuthV7",
      "SslPw9z",
    ],
  },
  {
    name: "rediss with user and password on an IPv6 host",
    url: "rediss://ops:TlsSecret4@[::1]:1/5",
    secrets: ["TlsSecret4"],
  },
  {
    name: "postgresql:// with an empty user",
    url: "postgresql://:PgqlSecret6@127.0.0.1:1/test",
    secrets: ["PgqlSecret6"],
  },
  {
    name: "redis with an empty user",
    url: "redis://:EmptyUser5@127.0.0.1:1/0",
    secrets: ["EmptyUser5"],
  },
  {
    name: "unix-socket PostgreSQL host (not parsed by Sluice: INVALID_CONFIG)",
    url: "postgres://app:SockSecret8@/test?host=/var/run/postgresql",
    secrets: ["SockSecret8"],
  },
  {
    name: "raw / in a Redis password (unparsable)",
    url: "redis://:Slash/Secret1@127.0.0.1:1/0",
    secrets: ["Slash", "Secret1"],
  },
  {
    name: "raw # in a PostgreSQL password (unparsable)",
    url: "postgres://app:Hash#Secret2@127.0.0.1:1/test",
    secrets: ["Hash#", "Secret2"],
  },
  {
    name: "user:password@host without a scheme (names no engine)",
    url: "app:NoScheme7@127.0.0.1:1",
    secrets: ["NoScheme7"],
  },
];
