// File checks for paths named in config. `goldpath check` works offline, but a missing key file
// or policy is still caught before any process starts.
import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';

/** Why `abs` is not a readable regular file, or undefined if it is. */
export async function fileProblem(abs: string): Promise<string | undefined> {
  try {
    const s = await stat(abs);
    if (!s.isFile()) return 'is not a file';
    await access(abs, constants.R_OK);
    return undefined;
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return 'does not exist';
    return `cannot be read (${code ?? 'error'})`;
  }
}
