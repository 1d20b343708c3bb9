const MASK = "***";

// Each pattern keeps the name of the secret (so a log still says what was there) and masks its value.
const PATTERNS: ReadonlyArray<readonly [RegExp, string]> = [
  // IoT Hub / Event Hubs / Service Bus connection strings, and SAS tokens (sig=…&se=…).
  [/(SharedAccessKey\s*=\s*)[^;"'\s]+/gi, `$1${MASK}`],
  [/(\bsig=)[^&;"'\s]+/gi, `$1${MASK}`],
  // Storage connection strings.
  [/(AccountKey\s*=\s*)[^;"'\s]+/gi, `$1${MASK}`],
  // key=value passwords (ADO/libpq style `password=…`, `Password=…;`) and JSON `"password": "…"`.
  [/(\bpassword\s*=\s*)(?:'[^']*'|[^;&"'\s]+)/gi, `$1${MASK}`],
  [/("password"\s*:\s*)"(?:[^"\\]|\\.)*"/gi, `$1"${MASK}"`],
  // HTTP Authorization values: Entra access tokens, and IoT Hub's `SharedAccessSignature sr=…`.
  [/(\bBearer\s+)[A-Za-z0-9\-._~+/]+=*/gi, `$1${MASK}`],
  // Passwords in URLs: postgres://user:secret@host/db (any scheme with user:password@).
  [/(\b[a-z][a-z0-9+.-]*:\/\/[^:/@\s]*:)[^@\s/]*@/gi, `$1${MASK}@`],
];

/** Masks the secret values in `text` (SAS keys and signatures, account keys, passwords, bearer tokens, URL passwords). */
export function redact(text: string): string {
  let result = text;
  for (const [pattern, replacement] of PATTERNS) result = result.replace(pattern, replacement);
  return result;
}
