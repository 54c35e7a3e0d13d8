// Names shared by the orchestrator and the workers of the BullMQ backend, in a module that loads no driver (orchestrate imports it on every run).

/** Queue used when `--queue` is not given. Orchestrators and workers must name the same one. */
export const DEFAULT_QUEUE = 'dto-tasks';

/** Allowed queue names: letters, digits, `.`, `_`, `-`, 1 to 64 (BullMQ keeps the name in its keys and rows). */
export const QUEUE_NAME_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;

/** How often a worker looks whether the orchestrator cancelled a job it runs (ms). */
export const CANCEL_POLL_MS = 2000;
