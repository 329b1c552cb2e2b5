// String helpers for long-lived keys.

/**
 * The same characters in a string of its own. Strings made by concatenation or slicing keep the
 * pieces or the whole they were made from alive for as long as they live; a cache key is kept for
 * a long time, so caches store a copy. (JSON's escaping round-trips every string exactly, lone
 * surrogates included; the copy costs about a microsecond, paid once per insertion.)
 */
export function flatCopy(s: string): string {
  return JSON.parse(JSON.stringify(s)) as string;
}

/**
 * A UTF-16 surrogate without its other half: JSON lets an IdP send one (`"\ud800"`), no UTF-8 can
 * hold it (encodeURIComponent throws, Buffer writes U+FFFD), so it never round-trips. (What
 * String.prototype.isWellFormed finds, from ES2024.)
 */
export const LONE_SURROGATES = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/** Whether `s` holds no lone surrogate. */
export function wellFormed(s: string): boolean {
  // search(), not test(): it leaves the shared regex's lastIndex as it was (matchAll starts from it).
  return s.search(LONE_SURROGATES) < 0;
}
