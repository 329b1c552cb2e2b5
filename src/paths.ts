// The package root, found the same way from src/ (Deno runs the .ts files) and from dist/src/
// (Node runs the compiled ones): the nearest folder upwards that holds package.json.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let root: string | undefined;

export function packageRoot(): string {
  if (root) return root;
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('goldpath: cannot find the package root (package.json)');
    dir = up;
  }
  return (root = dir);
}
