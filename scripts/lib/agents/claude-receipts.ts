// Receipts from `claude -p --output-format stream-json --verbose`: each tool call (assistant `tool_use`), its result (user `tool_result`), and the denials.
import {
  COMMAND_CHARS,
  emptyAttempt,
  lineCount,
  relativeToCwd,
  summarize,
  toolKind,
  type AttemptReceipt,
  type CommandReceipt,
  type FileReceipt,
  type ReceiptSummary,
} from '../verification/receipts.ts';

type Line = Record<string, unknown>;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function text(value: unknown): string {
  if (typeof value === 'string') return value;
  if (Array.isArray(value)) return value.map((part) => (isRecord(part) && typeof part.text === 'string' ? part.text : '')).join('\n');
  return '';
}

/** `+`/`-` lines of a `structuredPatch` (the edit tools' result: hunks whose `lines` start with ' ', '+' or '-'). */
function patchLines(patch: unknown): { added: number; removed: number } | null {
  if (!Array.isArray(patch) || patch.length === 0) return null;
  let added = 0;
  let removed = 0;
  for (const hunk of patch) {
    if (!isRecord(hunk) || !Array.isArray(hunk.lines)) continue;
    for (const line of hunk.lines) {
      if (typeof line !== 'string') continue;
      if (line.startsWith('+')) added++;
      else if (line.startsWith('-')) removed++;
    }
  }
  return { added, removed };
}

/** Lines an edit tool's input would add and remove, when its result carries no patch. */
function inputLines(name: string, input: Line): { added: number; removed: number } {
  const str = (value: unknown) => (typeof value === 'string' ? value : '');
  if (name === 'Write') return { added: lineCount(str(input.content)), removed: 0 };
  if (name === 'NotebookEdit') return { added: lineCount(str(input.new_source)), removed: 0 };
  const edits = name === 'MultiEdit' && Array.isArray(input.edits) ? input.edits.filter(isRecord) : [input];
  let added = 0;
  let removed = 0;
  for (const edit of edits) {
    added += lineCount(str(edit.new_string));
    removed += lineCount(str(edit.old_string));
  }
  return { added, removed };
}

/** What a call is waiting for: its result fills in the receipt it points at. */
type Pending = { kind: 'file'; receipt: FileReceipt; name: string } | { kind: 'command'; receipt: CommandReceipt } | { kind: 'other' };

/**
 * Collects one run's receipt from its stream-json lines (shapes observed on Claude Code 2.1.330 against the loopback
 * stub; references/verification.md, "Receipts"): an `assistant` line's `tool_use` blocks count the calls by kind and
 * name the file (`file_path`, `notebook_path`) or the command; the `user` line with the matching `tool_result` says
 * whether it worked (`is_error`; a Bash error's text starts `Exit code N`), and its `tool_use_result` carries an edit's
 * `structuredPatch` (the exact lines) and a command's `interrupted`; `system/permission_denied` lines and the result's
 * `permission_denials` name the denials. A call without a result (the run was cut) keeps `ok: null` / `exit: null`.
 */
export class ReceiptCollector {
  readonly #receipt: AttemptReceipt;
  readonly #pending = new Map<string, Pending>();
  readonly #denied = new Set<string>();
  readonly #cwd: string;

  /** @param cwd - the agent's working directory: paths inside it are recorded relative to it. */
  constructor(attempt: number, cwd: string) {
    this.#receipt = emptyAttempt(attempt);
    this.#cwd = cwd;
  }

  /** Reads one parsed line; @returns true when the receipt changed. */
  take(line: Line): boolean {
    if (line.type === 'assistant') return this.#calls(line);
    if (line.type === 'user') return this.#results(line);
    if (line.type === 'system' && line.subtype === 'permission_denied')
      return this.#deny(typeof line.tool_use_id === 'string' ? line.tool_use_id : null, line.tool_name);
    if (line.type === 'result' && Array.isArray(line.permission_denials)) {
      let changed = false;
      for (const denial of line.permission_denials.filter(isRecord))
        changed = this.#deny(typeof denial.tool_use_id === 'string' ? denial.tool_use_id : null, denial.tool_name) || changed;
      return changed;
    }
    return false;
  }

  /**
   * The totals of `earlier` attempts and this one so far (verification/receipts.ts `summarize`), read in place: the
   * runner asks on every changed line, so no copy is made.
   */
  summary(earlier: readonly AttemptReceipt[]): ReceiptSummary {
    return summarize([...earlier, this.#receipt]);
  }

  /** The receipt so far (a copy). */
  receipt(): AttemptReceipt {
    const r = this.#receipt;
    return {
      ...r,
      tool_calls: { ...r.tool_calls },
      files: r.files.map((f) => ({ ...f })),
      commands: r.commands.map((c) => ({ ...c })),
      denials: r.denials.map((d) => ({ ...d })),
    };
  }

  #calls(line: Line): boolean {
    const message = isRecord(line.message) ? line.message : {};
    if (!Array.isArray(message.content)) return false;
    let changed = false;
    for (const block of message.content) {
      if (!isRecord(block) || block.type !== 'tool_use' || typeof block.name !== 'string') continue;
      const id = typeof block.id === 'string' ? block.id : `#${this.#pending.size}`;
      if (this.#pending.has(id)) continue; // The same message printed again (partial updates share a message id).
      const input = isRecord(block.input) ? block.input : {};
      const kind = toolKind(block.name);
      this.#receipt.tool_calls[kind]++;
      changed = true;
      const file =
        typeof input.file_path === 'string' ? input.file_path : typeof input.notebook_path === 'string' ? input.notebook_path : null;
      if (kind === 'edit' && file !== null) {
        const lines = inputLines(block.name, input);
        const receipt: FileReceipt = {
          path: relativeToCwd(this.#cwd, file),
          tool: block.name,
          ok: null,
          lines_added: lines.added,
          lines_removed: lines.removed,
        };
        this.#receipt.files.push(receipt);
        this.#pending.set(id, { kind: 'file', receipt, name: block.name });
      } else if (kind === 'bash') {
        const command = typeof input.command === 'string' ? input.command.slice(0, COMMAND_CHARS) : '';
        const receipt: CommandReceipt = { command, exit: null, denied: false, interrupted: false };
        this.#receipt.commands.push(receipt);
        this.#pending.set(id, { kind: 'command', receipt });
      } else {
        this.#pending.set(id, { kind: 'other' });
      }
    }
    return changed;
  }

  #results(line: Line): boolean {
    const message = isRecord(line.message) ? line.message : {};
    if (!Array.isArray(message.content)) return false;
    const results = message.content.filter((block): block is Line => isRecord(block) && block.type === 'tool_result');
    // `tool_use_result` and `tool_result_meta` describe the line's one result; with several, only the meta is per id.
    const detail = results.length === 1 && isRecord(line.tool_use_result) ? line.tool_use_result : null;
    const meta = Array.isArray(line.tool_result_meta) ? line.tool_result_meta.filter(isRecord) : [];
    let changed = false;
    for (const result of results) {
      const id = typeof result.tool_use_id === 'string' ? result.tool_use_id : '';
      const pending = this.#pending.get(id);
      if (!pending) continue;
      const own = meta.find((m) => m.id === id);
      const decision = own && isRecord(own.permission_decision) ? own.permission_decision.decision : undefined;
      const rejected = own?.non_execution_kind === 'user-rejected' || decision === 'reject';
      const failed = result.is_error === true;
      if (rejected) changed = this.#deny(id, undefined) || changed;
      if (pending.kind === 'file') {
        pending.receipt.ok = !failed && !rejected;
        const exact = detail
          ? (patchLines(detail.structuredPatch) ??
            (detail.type === 'create' ? { added: lineCount(text(detail.content)), removed: 0 } : null))
          : null;
        if (exact) {
          pending.receipt.lines_added = exact.added;
          pending.receipt.lines_removed = exact.removed;
        }
      } else if (pending.kind === 'command' && !pending.receipt.denied) {
        const exitCode = /^(?:Error: )?Exit code (\d+)/.exec(text(result.content).trimStart());
        pending.receipt.exit = rejected ? null : failed ? (exitCode ? Number(exitCode[1]) : null) : 0;
        pending.receipt.interrupted = detail?.interrupted === true;
        if (pending.receipt.interrupted && !failed) pending.receipt.exit = null;
      }
      changed = true;
    }
    return changed;
  }

  #deny(id: string | null, toolName: unknown): boolean {
    if (id !== null && this.#denied.has(id)) return false;
    if (id !== null) this.#denied.add(id);
    const pending = id === null ? undefined : this.#pending.get(id);
    let target: string | null = null;
    let tool = typeof toolName === 'string' && toolName !== '' ? toolName : 'unknown';
    if (pending?.kind === 'file') {
      pending.receipt.ok = false;
      target = pending.receipt.path;
      tool = pending.name;
    } else if (pending?.kind === 'command') {
      pending.receipt.denied = true;
      pending.receipt.exit = null;
      target = pending.receipt.command;
      if (tool === 'unknown') tool = 'Bash';
    }
    this.#receipt.denials.push({ tool, target });
    return true;
  }
}
