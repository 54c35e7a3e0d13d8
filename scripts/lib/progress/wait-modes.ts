// Running poll-session's two Claude Code modes: --until_done (wait, write the report, print the digest) and --attention (one watch per folder; --keep_watching for the plugin's monitor).
import { existsSync } from 'node:fs';
import path from 'node:path';
import { EXIT } from '../core/errors.ts';
import { writeFinalReport } from '../report/final-report.ts';
import type { SessionPaths } from '../state/session-paths.ts';
import { createAttentionSink, ATTENTION_PREFIX } from './attention-sink.ts';
import { keepWatching, WatchLease } from './attention-watch.ts';
import { createDigestSink } from './digest.ts';
import type { FollowOptions, ProgressSink } from './poll-loop.ts';

/** Follows the session with a sink (poll-loop.ts followSession with the command line's options); `over` replaces some. */
export type Follow = (sink: ProgressSink, over?: Partial<Pick<FollowOptions, 'waitForSessionS' | 'timeoutS'>>) => Promise<number>;

/** What both modes need from the command line. */
export interface ModeContext {
  paths: SessionPaths;
  follow: Follow;
  /** Writes to standard output as is. */
  write: (text: string) => void;
  /** The limit (s), or undefined for none. */
  timeoutS?: number;
  /** `--expect N`. */
  expect?: number;
  /** The command that writes the report again (`"<run>" aggregate ...`). */
  aggregateCommand: string;
}

/**
 * Where `--until_done` writes the report: `final_output.md` beside the session folder, so `.agent/final_output.md` of
 * the project for the default `.agent/sessions` (aggregate's default), and beside a `--session_dir` elsewhere.
 */
export function untilDoneReportPath(paths: SessionPaths): string {
  return path.join(path.dirname(paths.dir), 'final_output.md');
}

/**
 * `--until_done`: waits silently; when every task has ended it writes the report ({@link untilDoneReportPath}, as
 * aggregate does) and then prints the digest, whose last line says to read it. The digest is held until the report is
 * written, so a digest that says "read the report" is never printed before the report exists; a report that cannot be
 * written is said on one more line, with the command that writes it.
 * @returns poll-session's exit code (0, 1, or 3 at the limit).
 */
export async function runUntilDone(context: ModeContext): Promise<number> {
  const held: string[] = [];
  const report = untilDoneReportPath(context.paths);
  const shown = path.relative(context.paths.cwd, report);
  const next = `read ${shown.startsWith('..') || path.isAbsolute(shown) ? report : shown} (written just now; ${context.aggregateCommand} writes it again)`;
  const sink = createDigestSink({
    write: (text) => held.push(text),
    timeoutS: context.timeoutS,
    expect: context.expect,
    nextCommand: next,
  });
  const code = await context.follow(sink);
  if (code === EXIT.ok || code === EXIT.taskFailed) {
    try {
      await writeFinalReport(context.paths, { outFile: report });
    } catch (error) {
      held.push(
        `The report was not written (${error instanceof Error ? error.message : String(error)}): run ${context.aggregateCommand}.\n`,
      );
    }
  }
  context.write(held.join(''));
  return code;
}

/** What `--attention` needs beyond {@link ModeContext}. */
export interface AttentionContext extends ModeContext {
  /** The exact command that re-arms the watch. */
  rearmCommand: string;
  /** `--keep_watching`: the plugin's monitor (no limit, every run in turn, no final line). */
  keep: boolean;
  /** Stops a keep-watching watch (tests). */
  signal?: AbortSignal;
}

/**
 * `--attention`: one watch per session folder ({@link WatchLease}). A watch that finds another live one reporting
 * says so in one line and ends (exit 0), so the model is never woken twice for one event; with `keep`, it waits
 * quietly for the lease instead, and follows every run of the project in turn ({@link keepWatching}).
 * @returns poll-session's exit code.
 */
export async function runAttention(context: AttentionContext): Promise<number> {
  const lease = new WatchLease(context.paths.dir);
  const sink = () =>
    createAttentionSink({
      write: context.write,
      timeoutS: context.keep ? undefined : context.timeoutS,
      nextCommand: context.aggregateCommand,
      rearmCommand: context.rearmCommand,
      endLine: !context.keep,
    });
  if (context.keep) {
    return keepWatching({
      paths: context.paths,
      lease,
      signal: context.signal,
      follow: async (over) => context.follow(sink(), { ...over, timeoutS: undefined }),
    });
  }
  if (existsSync(context.paths.dir) && !(await lease.tryAcquire())) {
    const holder = await lease.holder();
    context.write(
      `${ATTENTION_PREFIX}Another watch (pid ${holder?.pid ?? '?'}) already reports this session folder's events; this one stops (exit 0).\n`,
    );
    return EXIT.ok;
  }
  try {
    return await context.follow(sink());
  } finally {
    await lease.release();
  }
}
