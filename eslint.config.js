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
        projectService: { allowDefaultProject: ['eslint.config.js'] },
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
    files: ['test/**/*.ts'],
    rules: {
      // vitest's asymmetric matchers (`expect.stringMatching`, `expect.any`) are typed `any`: every use inside an expected
      // object would be reported.
      '@typescript-eslint/no-unsafe-assignment': 'off',
      // Tests pass `async () => value` where an API takes a function returning a promise (withLock, executor contexts).
      '@typescript-eslint/require-await': 'off',
    },
  },
  { files: ['**/*.js'], extends: [tseslint.configs.disableTypeChecked] },
);
