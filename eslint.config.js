// ESLint 9 flat config: eslint's recommended rules plus typescript-eslint's type-aware recommended set (rules that ask the
// TypeScript checker: floating and misused promises, unsafe `any`, needless assertions, ...), over the same files as tsc.
// Formatting is prettier's (`npm run format`, checked by `npm run lint`).
// @ts-check
import eslint from '@eslint/js';
import { defineConfig } from 'eslint/config';
import tseslint from 'typescript-eslint';

export default defineConfig(
  { ignores: ['dist/**', 'node_modules/**', 'evals/**', 'templates/**', 'references/**'] },
  eslint.configs.recommended,
  tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: {
        // One TypeScript program per tsconfig.json (the one `tsc --noEmit` checks); the config file itself is plain JS.
        projectService: { allowDefaultProject: ['eslint.config.js', '.dependency-cruiser.cjs'] },
        tsconfigRootDir: import.meta.dirname,
      },
    },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      // `_name` marks a value kept on purpose (a rest sibling dropped from an object, a parameter a callback shape requires).
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrorsIgnorePattern: '^_', ignoreRestSiblings: true },
      ],
    },
  },
  {
    // An agent start that only registers a task must not load the large packages (bench/RESULTS.md, "Start-up cost";
    // test/execution/prebuilt.test.ts runs one with them missing). Only the modules below import them statically, and
    // those are reached by dynamic import() from the start path; anything else imports them with `await import(...)`.
    files: ['scripts/**/*.ts'],
    ignores: [
      'scripts/lib/state/schema.ts',
      'scripts/lib/state/task-schemas.ts',
      'scripts/lib/plan/**',
      'scripts/lib/agents/claude-prompt.ts',
      'scripts/lib/agents/claude-result.ts',
      'scripts/lib/agents/claude-runner.ts',
      'scripts/lib/agents/claude-preflight.ts',
      'scripts/lib/backend/**',
      'scripts/lib/launcher/run-script.ts',
      'scripts/lib/report/**',
      'scripts/worker.ts',
    ],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          paths: ['zod', 'execa', 'yaml', 'gray-matter'].map((name) => ({
            name,
            allowTypeImports: true,
            message: 'Load it with `await import(...)` where it is needed: agent starts must not load it (see eslint.config.js).',
          })),
          patterns: [
            {
              group: ['**/state/schema.ts'],
              allowTypeImports: true,
              message: 'Import values from state/model.ts; the zod schema is loaded only where a state must be validated in full.',
            },
          ],
        },
      ],
    },
  },
  {
    // Issue 22's sizes: a file of scripts/ is read whole (at most 300 lines), a function at one sitting (at most 80 lines
    // of code, blank lines and comments not counted). Split by concern; do not squeeze.
    files: ['scripts/**/*.ts'],
    rules: {
      'max-lines': ['error', { max: 300, skipBlankLines: false, skipComments: false }],
      'max-lines-per-function': ['error', { max: 80, skipBlankLines: true, skipComments: true, IIFEs: true }],
    },
  },
  {
    files: ['test/**/*.ts'],
    rules: {
      // vitest's asymmetric matchers (`expect.stringMatching`, `expect.any`) are typed `any`: every use inside an expected
      // object would be reported.
      '@typescript-eslint/no-unsafe-assignment': 'off',
      // Tests pass `async () => value` where an API takes a function returning a promise (withLock, executor contexts).
      '@typescript-eslint/require-await': 'off',
    },
  },
  { files: ['**/*.js', '**/*.cjs'], extends: [tseslint.configs.disableTypeChecked] },
  { files: ['**/*.cjs'], languageOptions: { sourceType: 'commonjs', globals: { module: 'writable', require: 'readonly' } } },
);
