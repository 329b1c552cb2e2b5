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
 * String.prototype.isWellFormed finds, from ES2024.) Kept here, used only through the functions
 * below: a global regex shared across modules carries its lastIndex from one use to the next.
 */
const LONE_SURROGATES = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/** Whether `s` holds no lone surrogate. */
export function wellFormed(s: string): boolean {
  return s.search(LONE_SURROGATES) < 0;
}

/** `s` with each lone surrogate replaced by U+FFFD (String.prototype.toWellFormed, from ES2024). */
export function toWellFormed(s: string): string {
  return s.replace(LONE_SURROGATES, '\ufffd');
}

/** A lone surrogate, or a run of anything else (pairs whole). */
const PIECES = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]|(?:[\ud800-\udbff][\udc00-\udfff]|[^\ud800-\udfff])+/g;

/**
 * encodeURIComponent, total: a lone surrogate, which it throws on, becomes `%u` and its code, which
 * no percent-encoding produces, so distinct strings stay distinct (store keys).
 */
export function percentEncode(s: string): string {
  try {
    return encodeURIComponent(s);
  } catch {
    return s.replace(PIECES, (piece) => (piece.length === 1 && !wellFormed(piece)
      ? `%u${piece.charCodeAt(0).toString(16)}`
      : encodeURIComponent(piece)));
  }
}
