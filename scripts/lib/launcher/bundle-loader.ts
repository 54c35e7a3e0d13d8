// The loader of a built script, written as dist/NAME.cjs by scripts/build (build.ts compiles this file to CommonJS with
// esbuild and sets DTO_CHUNKS): what scripts/run and launch.ts start. Nothing imports this file.
//
// It reads NAME.bundle.cjs, compiles it with V8's code cache NAME.cache when there is a usable one, and runs it as a
// CommonJS module whose `__filename` is the bundle. The bundle holds the skill's own code; the packages it uses (zod,
// execa, yaml, ...) are chunks, `dist/chunks/<package>.cjs`, each compiled the same way with its own cache, and loaded
// only when the code first requires them: a start that only registers a task never loads execa, the yaml package or
// zod, and a smaller bundle is cheaper to start even where its code is not run (V8 makes a closure for every function
// declared at the top of a script). DTO_CHUNKS maps each package name to its chunk file; anything else (Node's own
// modules) is Node's require. js-yaml (under gray-matter) also tries require('esprima') at load time, for the unsafe
// !!js/function type that gray-matter's safe loading never uses: refusing it saves loading a 2 MB parser into every
// agent (js-yaml catches the error and goes on without it).
//
// A cache is used only when its header names this very code (the id on the bundle's first line, a hash of its code,
// written by the build) and the SHA-256 of its payload matches: V8 itself checks only its version, its flags and the
// source's length, and crashes on a damaged payload (measured: one flipped byte is a fatal error), so a cache left by a
// process that ran the previous build, or damaged on disk, is replaced instead of run. A missing or rejected cache is
// written when the process exits (temporary file, rename); one that cannot be written is only skipped.
// `DTO_WARM_CHUNKS=1` (used by the build) loads every chunk at start, so their caches get made.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import vm from 'node:vm';

/** Set by the build (esbuild `define`): each chunked package's file, relative to the loader's folder. */
declare const DTO_CHUNKS: Record<string, string>;

/** First bytes of a cache file; then the bundle's id and the SHA-256 of the V8 payload. */
const CACHE_MAGIC = 'dto-v8-cache-1';

/** A CommonJS module being loaded: what its code fills in. */
interface Module {
  exports: unknown;
}
type ModuleWrapper = (exports: unknown, require: NodeJS.Require, module: Module, filename: string, dirname: string) => void;

const chunks = DTO_CHUNKS;
const unsaved: Array<{ script: vm.Script; cachePath: string; id: string }> = [];
const loaded = new Map<string, Module>();

function checksum(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Writes the code caches V8 did not have (at exit: by then the code that ran is in them). */
function saveCaches(): void {
  for (const { script, cachePath, id } of unsaved) {
    const tmp = `${cachePath}.${process.pid}.tmp`;
    try {
      const payload = script.createCachedData();
      fs.writeFileSync(tmp, Buffer.concat([Buffer.from(`${CACHE_MAGIC} ${id} ${checksum(payload)}\n`, 'latin1'), payload]));
      fs.renameSync(tmp, cachePath);
    } catch {
      try {
        fs.unlinkSync(tmp);
      } catch {
        // Nothing was written.
      }
    }
  }
}

/** The payload of `cachePath` when it is a cache of the bundle with this `id` and intact; undefined otherwise. */
function readCache(cachePath: string, id: string): Buffer | undefined {
  try {
    const data = fs.readFileSync(cachePath);
    const head = new RegExp(`^${CACHE_MAGIC} ([0-9a-f]{32}) ([0-9a-f]{64})\\n`).exec(data.subarray(0, 160).toString('latin1'));
    const payload = head ? data.subarray(head[0].length) : null;
    return head && payload && head[1] === id && checksum(payload) === head[2] ? payload : undefined;
  } catch {
    return undefined;
  }
}

/** Compiles and runs the CommonJS code in `file` (a bundle or a chunk) as `mod`, with its code cache. */
function run(file: string, mod: Module): unknown {
  const source = fs.readFileSync(file, 'utf8');
  const cachePath = file.replace(/(\.bundle)?\.cjs$/, '.cache');
  const id = /^\/\/ dto-bundle ([0-9a-f]{32})\n/.exec(source)?.[1] ?? 'none';
  const cachedData = readCache(cachePath, id);
  const script = new vm.Script(`(function (exports, require, module, __filename, __dirname) {${source}\n})`, {
    filename: file,
    cachedData,
    importModuleDynamically: vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER,
  });
  if (cachedData === undefined || script.cachedDataRejected === true) {
    if (unsaved.length === 0) process.once('exit', saveCaches);
    unsaved.push({ script, cachePath, id });
  }
  (script.runInThisContext() as ModuleWrapper)(mod.exports, requireFor(file), mod, file, path.dirname(file));
  return mod.exports;
}

/** The `require` given to code in `file`: a chunked package from its chunk (loaded once), anything else from Node. */
function requireFor(file: string): NodeJS.Require {
  const base = createRequire(file);
  const load = (id: string): unknown => {
    if (id === 'esprima') throw new Error('esprima is left out of the bundle');
    const chunk = Object.hasOwn(chunks, id) ? chunks[id] : undefined;
    if (chunk === undefined) return base(id) as unknown;
    let mod = loaded.get(id);
    if (mod === undefined) {
      mod = { exports: {} };
      loaded.set(id, mod);
      run(path.join(__dirname, chunk), mod);
    }
    return mod.exports;
  };
  return Object.assign(load, base);
}

if (process.env.DTO_WARM_CHUNKS === '1') for (const id of Object.keys(chunks)) requireFor(__filename)(id);
run(path.join(__dirname, `${path.basename(__filename, '.cjs')}.bundle.cjs`), { exports: {} });
