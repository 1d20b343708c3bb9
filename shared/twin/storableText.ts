/**
 * Whether PostgreSQL can store `text` as text or jsonb: no NUL (text cannot hold U+0000) and no lone
 * surrogate (it has no UTF-8 encoding; pg would silently turn it into U+FFFD).
 */
export function storableText(text: string): boolean {
  return !text.includes("\u0000") && text.isWellFormed();
}
