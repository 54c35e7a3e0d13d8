// Before real agents start: is the claude CLI there, and is it logged in? (`claude auth status`, no network.)
import { execa } from 'execa';
import { OrchestratorError } from '../core/errors.ts';

/** Longest wait for `claude auth status` (ms); it answers from local files, in well under a second. */
export const PREFLIGHT_TIMEOUT_MS = 20_000;

/**
 * Checks that real agents can start: runs `<bin> auth status`, which per the CLI contract
 * (/work/shared/claude-cli-contract.md: Claude Code 2.1.330) prints JSON and exits 0 when
 * credentials are set (a login or `ANTHROPIC_API_KEY`), 1 when none are, and makes no network call.
 * Its output is never printed (it can name the account).
 *
 * @param bin - the claude executable (`--claude_bin`, `CLAUDE_BIN` or `claude` on PATH).
 * @param env - the environment the agents will get.
 * @throws OrchestratorError `claude_not_found` (exit 2) when the CLI is missing, cannot run, is
 *   not logged in, or does not answer within {@link PREFLIGHT_TIMEOUT_MS}; the message says what to do,
 *   including `--agent mock` for a rehearsal.
 */
export async function checkClaudeReady(bin: string, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const result = await execa(bin, ['auth', 'status'], {
    reject: false,
    stdin: 'ignore',
    timeout: PREFLIGHT_TIMEOUT_MS,
    env,
    extendEnv: false,
  });
  const rehearse = 'For a rehearsal without an account, use --agent mock (simulated results); --skip_preflight skips this check.';
  if (result.exitCode === 0) return;
  const spawnCode = (result as { code?: string }).code;
  if (spawnCode === 'ENOENT' || spawnCode === 'EACCES' || (result.failed && result.exitCode === undefined && !result.timedOut)) {
    throw new OrchestratorError(
      'claude_not_found',
      `The claude CLI ${JSON.stringify(bin)} ${spawnCode === 'EACCES' ? 'is not executable' : 'was not found'}. ` +
        `Install it (npm install -g @anthropic-ai/claude-code) or name it with --claude_bin PATH or CLAUDE_BIN. ${rehearse}`,
    );
  }
  if (result.timedOut) {
    throw new OrchestratorError(
      'claude_not_found',
      `\`${bin} auth status\` did not answer within ${PREFLIGHT_TIMEOUT_MS / 1000} s. ${rehearse}`,
    );
  }
  if (result.exitCode === 1) {
    throw new OrchestratorError(
      'claude_not_found',
      `claude is not logged in (\`${bin} auth status\` exited 1). Log in with \`claude\` then /login, or set ANTHROPIC_API_KEY, then run again. ${rehearse}`,
    );
  }
  throw new OrchestratorError('claude_not_found', `\`${bin} auth status\` failed (exit ${result.exitCode ?? result.signal}). ${rehearse}`);
}
