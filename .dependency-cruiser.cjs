// The floors of scripts/lib, written once as data and enforced by `npm run lint` (dependency-cruiser): a folder imports
// its own files and the floors below it, never a floor above or a neighbour on its own floor, and no import cycle exists
// anywhere in scripts/ (type-only imports count too). The README's code map lists the same floors; test/architecture/
// floors.test.ts checks that it does.
// @ts-check

/**
 * The floors, lowest first. Each entry is one floor: the folders of scripts/lib on it. The entry scripts
 * (scripts/*.ts) stand above every floor.
 */
const FLOORS = [
  ['core'], // errors, names, formatting, limits: imports nothing of ours
  ['process', 'launcher'], // process identity, liveness, signals and trees; how scripts are started
  ['cli'], // argument parsing
  ['state'], // the session state, its lock, store and events
  ['scheduling'], // the task state machine and the one scheduling decision
  ['verification'], // receipts, verdicts, file snapshots, checks and output schemas
  ['agents'], // mock and claude agents
  ['execution'], // running claimed tasks: heartbeats, queueing, replacement, detached runs
  ['isolation', 'backend'], // git worktrees and the merge queue; the BullMQ backend
  ['report'], // the final report
  ['progress'], // poll-session's board, slices and watches
  ['plan'], // the plan runner
];

/** @type {import('dependency-cruiser').IForbiddenRuleType[]} */
const floorRules = FLOORS.map((floor, level) => {
  const notBelow = FLOORS.slice(level).flat();
  return {
    name: `floor-${floor.join('-')}`,
    severity: 'error',
    comment:
      `scripts/lib/{${floor.join(',')}} may import only ${level === 0 ? 'its own files' : `its own folder and the floors below it (${FLOORS.slice(0, level).flat().join(', ')})`}. ` +
      'Move the shared code down a floor, or pass what is needed in (an injected sink or callback): see .dependency-cruiser.cjs.',
    from: { path: `^scripts/lib/(${floor.join('|')})/` },
    to: { path: `^scripts/lib/(${notBelow.join('|')})/`, pathNot: `^scripts/lib/$1/` },
  };
});

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    ...floorRules,
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'An import cycle: break it by moving the shared part into its own file lower down, or by passing it in.',
      from: { path: '^scripts/' },
      to: { circular: true },
    },
    {
      name: 'lib-not-into-entry-scripts',
      severity: 'error',
      comment: 'scripts/lib never imports an entry script (scripts/*.ts): those stand above every floor.',
      from: { path: '^scripts/lib/' },
      to: { path: '^scripts/[^/]+\\.ts$' },
    },
    {
      name: 'no-unknown-folder',
      severity: 'error',
      comment: 'Every folder of scripts/lib is on a floor: add a new folder to FLOORS in .dependency-cruiser.cjs.',
      from: { path: '^scripts/lib/', pathNot: `^scripts/lib/(${FLOORS.flat().join('|')})/` },
      to: {},
    },
    {
      name: 'no-unknown-folder',
      severity: 'error',
      comment: 'Every folder of scripts/lib is on a floor: add a new folder to FLOORS in .dependency-cruiser.cjs.',
      from: {},
      to: { path: '^scripts/lib/', pathNot: `^scripts/lib/(${FLOORS.flat().join('|')})/` },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    includeOnly: '^scripts/',
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default'] },
  },
};
// For test/architecture/floors.test.ts; not enumerable, so dependency-cruiser's schema check does not see it.
Object.defineProperty(module.exports, 'FLOORS', { value: FLOORS, enumerable: false });
