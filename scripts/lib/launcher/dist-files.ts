// The files scripts/build writes (build.ts): each script's loader, bundle and code cache, and the chunks of packages,
// each written whole (temporary file, rename) and stamped with the id of its code.
import { createHash } from 'node:crypto';
import { renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/** The files of one built script in `outDir`: the loader (what is started), the code, V8's code cache. */
export function distFiles(outDir: string, name: string): { loader: string; bundle: string; cache: string } {
  return {
    loader: path.join(outDir, `${name}.cjs`),
    bundle: path.join(outDir, `${name}.bundle.cjs`),
    cache: path.join(outDir, `${name}.cache`),
  };
}

/** Writes a file by temporary file and rename, so a process starting meanwhile reads the old or the new one. */
export function replaceFile(file: string, contents: string | Uint8Array): void {
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    writeFileSync(tmp, contents);
    renameSync(tmp, file);
  } catch (error) {
    rmSync(tmp, { force: true });
    throw error;
  }
}

/** The text written for an output file: its id (a hash of its code, which a code cache must name to be used) first. */
export function withId(file: { contents: Uint8Array; text: string }): string {
  const id = createHash('sha256').update(file.contents).digest('hex').slice(0, 32);
  return `// dto-bundle ${id}\n${file.text}`;
}

/** The chunk of a package, relative to dist/: `chunks/<specifier>.cjs`, with `/` and `@` made safe for a file name. */
export function chunkFile(specifier: string): string {
  return `chunks/${specifier.replace(/^@/, '').replace(/[^A-Za-z0-9._-]/g, '+')}.cjs`;
}
