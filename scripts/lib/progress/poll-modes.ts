// poll-session's two waiting modes for Claude Code: --until_done (a background command) and --attention (the Monitor tool): limits, flag rules, the re-arm command.
import { usageError } from '../core/errors.ts';
import { launcherCommand, shellWord } from '../launcher/dist.ts';

/**
 * How long `--until_done` waits by default before exit 3 (s): 29 min, just under the default limit
 * of a Claude Code Bash call run with `run_in_background: true` (its `timeout`, default 1,800,000 ms,
 * at most 7,200,000 ms; Claude Code's Bash tool description), so the command ends by itself and its
 * digest is read instead of the call being killed.
 */
export const DEFAULT_UNTIL_DONE_S = 1740;

/**
 * How long an `--attention` watch lasts by default before exit 3 (s): 29 min, just under the
 * 30 minutes one watch of Claude Code's Monitor tool lasts at most; the model then re-arms it.
 */
export const DEFAULT_ATTENTION_S = 1740;

/** The flags that decide poll-session's output, as parsed. */
export interface ModeFlags {
  until_done: boolean;
  attention: boolean;
  json: boolean;
  verbose: boolean;
  plain: boolean;
  once: boolean;
  from_start: boolean;
  keep_watching: boolean;
}

/**
 * Refuses flags that do not go with `--until_done` or `--attention`: each prints one fixed kind of
 * output (one digest; attention lines and one final line), and both wait for the end.
 * @throws OrchestratorError usage (exit 2) naming the two flags.
 */
export function checkModeFlags(flags: ModeFlags): void {
  const given = (names: Array<keyof ModeFlags>) => names.filter((name) => flags[name]).map((name) => `--${name}`);
  if (flags.keep_watching && !flags.attention)
    throw usageError("--keep_watching only goes with --attention (the plugin's monitor): poll-session --attention --keep_watching.");
  if (flags.until_done && flags.attention)
    throw usageError('Give either --until_done (one digest at the end) or --attention (a line per event that needs you), not both.');
  if (flags.until_done) {
    const clash = given(['json', 'verbose', 'plain', 'once', 'from_start'])[0];
    if (clash)
      throw usageError(`--until_done cannot be combined with ${clash}: it prints nothing while it waits, then one digest of the session.`);
  }
  if (flags.attention) {
    const clash = given(['json', 'verbose', 'plain', 'once'])[0];
    if (clash)
      throw usageError(`--attention cannot be combined with ${clash}: it prints only the events that need attention, then one final line.`);
  }
}

/**
 * The limit of `--until_done` (s), or undefined for none: `--timeout S` as given (0 = no limit), else
 * {@link DEFAULT_UNTIL_DONE_S}. `BASH_DEFAULT_TIMEOUT_MS` is not read: it sets the Bash tool's limit for
 * foreground calls only; a background call with it at 5,000 ms ran a 12 s command to exit 0 (measured
 * with Claude Code 2.1.330).
 */
export function untilDoneTimeoutS(flag: number | undefined): number | undefined {
  if (flag !== undefined) return flag === 0 ? undefined : flag;
  return DEFAULT_UNTIL_DONE_S;
}

/** The limit of an `--attention` watch (s), or undefined for none: `--timeout S` (0 = no limit), else {@link DEFAULT_ATTENTION_S}. */
export function attentionTimeoutS(flag: number | undefined): number | undefined {
  if (flag !== undefined) return flag === 0 ? undefined : flag;
  return DEFAULT_ATTENTION_S;
}

/**
 * The command that re-arms a watch: poll-session with the same arguments, less `--from_start`
 * (a re-armed watch goes on from where the last one stopped), through this install's launcher.
 */
export function rearmCommand(argv: readonly string[]): string {
  const args = argv.filter((arg) => !/^--from[_-]start$/.test(arg));
  return launcherCommand('poll-session', args.map(shellWord).join(' '));
}
