// A live agent starved of CPU keeps its task past its lease; a stopped one loses it (issue 21, item 19: 200 agents on
// 2 cores, 2 marked failed "heartbeat stale for 31 s (lease 30 s)" while alive). Real processes, the real /proc or ps.
import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { HOST, processRunState, processStartTime } from '../../scripts/lib/process/identity.ts';
import { deathReason } from '../../scripts/lib/scheduling/scheduling.ts';
import { session, t } from '../support/literal-session.ts';

describe('a lease past its time, judged with the process', () => {
  it('keeps a live owner that is only slow, fails it when stopped (SIGSTOP), and says so', async () => {
    const child = spawn('sleep', ['60'], { stdio: 'ignore' });
    const pid = child.pid!;
    try {
      expect(processRunState(pid)).toBe('running');
      const state = session(2, { slow: { status: 'running', pid, pid_start: processStartTime(pid), host: HOST, heartbeat_at: t(-40) } });
      const now = new Date(t(10));
      // 50 s without a renewal, lease 30 s: alive and not stopped, so only slow.
      expect(deathReason(state, state.tasks.slow!, now)).toBeNull();
      process.kill(pid, 'SIGSTOP');
      for (let i = 0; i < 100 && processRunState(pid) !== 'stopped'; i++) await new Promise((resolve) => setTimeout(resolve, 20));
      expect(processRunState(pid)).toBe('stopped');
      expect(deathReason(state, state.tasks.slow!, now)).toBe(
        `agent heartbeat stale for 50 s (lease 30 s): its process (pid ${pid}) is stopped`,
      );
      process.kill(pid, 'SIGCONT');
    } finally {
      child.kill('SIGKILL');
    }
    await new Promise((resolve) => child.once('exit', resolve));
    expect(processRunState(pid)).toBe('unknown');
  });

  it('keeps a launch claim whose started process is alive past its lease (a slow start), fails it at once when that process is gone', async () => {
    const child = spawn('sleep', ['60'], { stdio: 'ignore' });
    const pid = child.pid!;
    const launched = { pid, start: processStartTime(pid), host: HOST };
    const state = session(2, { late: { status: 'running', pid: null, adoption_token: 'x', heartbeat_at: t(-40), launched } });
    const now = new Date(t(10));
    try {
      expect(deathReason(state, state.tasks.late!, now)).toBeNull();
    } finally {
      child.kill('SIGKILL');
    }
    await new Promise((resolve) => child.once('exit', resolve));
    expect(deathReason(state, state.tasks.late!, now)).toBe(
      `launched agent (pid ${pid}) exited before taking the task over, after 50 s (lease 30 s)`,
    );
  });
});
