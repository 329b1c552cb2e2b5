// File checks for paths named in config. `goldpath check` works offline, but a missing key file
// or policy is still caught before any process starts.
import { Buffer } from 'node:buffer';
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { open, stat } from 'node:fs/promises';

/** Config files are small; a huge one is a mistake (or an attack on the parser). */
export const MAX_CONFIG_FILE_BYTES = 256 * 1024;

/** A policy is a few KiB; a huge one is a mistake (or an attack on the Polar parser's memory). */
export const MAX_POLICY_BYTES = 1024 * 1024;

/** `1 MiB`, `256 KiB`: how a size limit reads in a problem. */
function sizeText(bytes: number): string {
  return bytes % (1024 * 1024) === 0 ? `${bytes / (1024 * 1024)} MiB` : `${Math.round(bytes / 1024)} KiB`;
}

/** The problem for a file over `maxBytes`. */
export function tooLarge(maxBytes: number, hint = 'a policy file is a few KiB; split a large one'): string {
  return `is larger than ${sizeText(maxBytes)}, the most goldpath reads (${hint})`;
}

/** Keys, certificates and CA bundles named in idps.yaml: a few KiB (a public CA bundle ~200 KiB). */
export const MAX_KEY_FILE_BYTES = 1024 * 1024;

/** Why `abs` is not a readable regular file of at most `maxBytes` (if given), or undefined if it is. */
export async function fileProblem(abs: string, maxBytes?: number, hint?: string): Promise<string | undefined> {
  try {
    const s = await stat(abs);
    if (!s.isFile()) return 'is not a file';
    if (maxBytes !== undefined && s.size > maxBytes) return tooLarge(maxBytes, hint);
    // Opened, not access(R_OK): Deno's access works R_OK out from the mode bits with the uid and
    // primary gid alone (no supplementary groups, no root), so it refuses files a read opens fine
    // (a Kubernetes fsGroup secret, mode 0440). A regular file (above): opening it cannot block.
    await (await open(abs, 'r')).close();
    return undefined;
  } catch (err) {
    return openFailure(err);
  }
}

/** The problem for a file that could not be looked at or opened. */
function openFailure(err: unknown): string {
  const code = (err as { code?: string }).code;
  if (code === 'ENOENT' || code === 'ENOTDIR') return 'does not exist';
  return `cannot be read (${code ?? 'error'})`;
}

/**
 * Decodes `bytes` as UTF-8, or gives the 1-based line of the first bytes that are not UTF-8: such
 * a file (Latin-1, UTF-16) would otherwise be read with U+FFFD in their place, silently, and a
 * secret, a claim value or a string a policy compares with would not be what the file says.
 */
export function decodeUtf8(bytes: Uint8Array): { text: string } | { badLine: number } {
  const fatal = new TextDecoder('utf-8', { fatal: true });
  try {
    return { text: fatal.decode(bytes) };
  } catch {
    // No UTF-8 sequence holds a newline byte: each line decodes alone or holds the fault.
    let line = 1;
    let start = 0;
    for (let i = 0; i <= bytes.length; i++) {
      if (i < bytes.length && bytes[i] !== 0x0a) continue;
      try {
        fatal.decode(bytes.subarray(start, i));
      } catch {
        return { badLine: line };
      }
      line++;
      start = i + 1;
    }
    return { badLine: line - 1 };
  }
}

/** The problem for a file that is not UTF-8 text (its location names the line). */
export function notUtf8(): string {
  return 'is not UTF-8 text: this line holds bytes that are not UTF-8 (save the file as UTF-8)';
}

/** A file readTextCapped() read that is not UTF-8 text. */
export class NotUtf8Error extends Error {
  readonly line: number;
  constructor(line: number) {
    super(notUtf8());
    this.name = 'NotUtf8Error';
    this.line = line;
  }
}

/** A file over the limit of readTextCapped(). */
export class FileTooLargeError extends Error {
  readonly maxBytes: number;
  constructor(maxBytes: number) {
    super(tooLarge(maxBytes));
    this.name = 'FileTooLargeError';
    this.maxBytes = maxBytes;
  }
}

/**
 * Reads `abs` as UTF-8 (NotUtf8Error if it is not), reading at most `maxBytes` + 1 bytes whatever
 * its size (a file may grow after a stat, or be a device): throws FileTooLargeError when there is more.
 */
export async function readTextCapped(abs: string, maxBytes: number): Promise<string> {
  const fh = await open(abs, 'r');
  try {
    const buf = Buffer.alloc(maxBytes + 1);
    let n = 0;
    while (n < buf.length) {
      const { bytesRead } = await fh.read(buf, n, buf.length - n, null);
      if (bytesRead === 0) break;
      n += bytesRead;
    }
    if (n > maxBytes) throw new FileTooLargeError(maxBytes);
    const decoded = decodeUtf8(buf.subarray(0, n));
    if ('badLine' in decoded) throw new NotUtf8Error(decoded.badLine);
    return decoded.text;
  } finally {
    await fh.close();
  }
}

/**
 * `(resolved to /abs/path)` for a problem about a file a config names, or, when the path holds a
 * value from the environment (`safe` would show the text as written instead), a note saying it is
 * not shown: "resolved to ./${SEC}.polar" would show a path that was never looked at.
 */
export function resolvedNote(abs: string, safe: (text: string) => string): string {
  const shown = safe(abs);
  return shown === abs ? `(resolved to ${abs})` : '(resolved with a value from the environment, not shown)';
}

/**
 * readTextCapped for the environment's files, which loadSettings checks synchronously: the text,
 * or the problem (as fileProblem and readTextCapped word them). Never opens what is not a regular
 * file (a FIFO would block the start for good); reads at most `maxBytes` + 1 bytes.
 */
export function readTextFileSync(abs: string, maxBytes: number, hint?: string): { text: string } | { problem: string } {
  let fd: number;
  try {
    // Looked at before it is opened: opening a FIFO for reading waits for a writer.
    const s = statSync(abs);
    if (!s.isFile()) return { problem: 'is not a file' };
    if (s.size > maxBytes) return { problem: tooLarge(maxBytes, hint) };
    fd = openSync(abs, 'r');
  } catch (err) {
    return { problem: openFailure(err) };
  }
  try {
    const buf = Buffer.alloc(maxBytes + 1);
    let n = 0;
    while (n < buf.length) {
      const got = readSync(fd, buf, n, buf.length - n, null);
      if (got === 0) break;
      n += got;
    }
    if (n > maxBytes) return { problem: tooLarge(maxBytes, hint) };
    const decoded = decodeUtf8(buf.subarray(0, n));
    if ('badLine' in decoded) return { problem: `is not UTF-8 text (line ${decoded.badLine} holds bytes that are not UTF-8; save the file as UTF-8)` };
    return decoded;
  } catch (err) {
    return { problem: openFailure(err) };
  } finally {
    closeSync(fd);
  }
}
