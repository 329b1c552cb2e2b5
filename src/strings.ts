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
