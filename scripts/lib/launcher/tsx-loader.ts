// The tsx loader's URL as a constant, for tests and benchmarks that start TypeScript files of their own.
import { tsxLoader } from './launch.ts';

/** The tsx loader (a file URL) of this install: see {@link tsxLoader}. */
export const TSX_LOADER = tsxLoader();
