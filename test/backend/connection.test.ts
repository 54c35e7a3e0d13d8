import { describe, expect, it } from 'vitest';
import { connectionFrom, parseConnection, redactConnection, scrubSecrets } from '../../scripts/lib/backend/connection.ts';
import { OrchestratorError } from '../../scripts/lib/core/errors.ts';
import { childArgv } from '../../scripts/orchestrate.ts';

describe('BullMQ connection strings', () => {
  it.each([
    ['postgres://dto:s3cret@db.local:5432/jobs', 'postgres://dto:***@db.local:5432/jobs'],
    ['postgresql://dto:s3cret@db.local/jobs?sslmode=require&password=x', 'postgresql://dto:***@db.local/jobs?***'],
    ['redis://:tok3n@127.0.0.1:6379/2', 'redis://:***@127.0.0.1:6379/2'],
    ['rediss://default:tok3n@cache.example:6380', 'rediss://default:***@cache.example:6380'],
    ['postgres://dto@127.0.0.1:5432/postgres', 'postgres://dto@127.0.0.1:5432/postgres'],
    ['not a url s3cret', '<unparsable connection string>'],
  ])('shows %s only as %s', (raw, shown) => {
    expect(redactConnection(raw)).toBe(shown);
  });

  it('selects the engine from the scheme and keeps the password only for scrubbing', () => {
    const pg = parseConnection('postgresql://dto:p%40ss@10.0.0.1:5433/db');
    expect(pg).toMatchObject({ engine: 'postgres', secret: 'p@ss', redacted: 'postgresql://dto:***@10.0.0.1:5433/db' });
    expect(parseConnection('redis://127.0.0.1:6379').engine).toBe('redis');
  });

  it.each([
    ['', /got ""/],
    ['mysql://root:hunter2@db/x', /postgres:\/\/, postgresql:\/\/, redis:\/\/ or rediss:\/\/.*got mysql:\/\/root:\*\*\*@db\/x/],
    ['hunter2', /to be a URL.*<unparsable connection string>/],
  ])('refuses %j with a usage error that never echoes the password', (raw, message) => {
    let error: unknown;
    try {
      parseConnection(raw);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(OrchestratorError);
    expect((error as OrchestratorError).exitCode).toBe(2);
    expect((error as Error).message).toMatch(message);
    expect((error as Error).message).not.toContain('hunter2');
  });

  it('reads the environment variable when the flag is absent, the flag first otherwise', () => {
    expect(connectionFrom(undefined, {})).toBeNull();
    expect(connectionFrom(undefined, { DTO_BULLMQ_CONNECTION: 'redis://h:1' })?.engine).toBe('redis');
    expect(connectionFrom('postgres://a@h/db', { DTO_BULLMQ_CONNECTION: 'redis://h:1' })?.engine).toBe('postgres');
  });

  it('scrubs the URL and the password, raw and encoded, from a driver message', () => {
    const connection = parseConnection('postgres://dto:p%40ss@h:5432/db');
    const text = scrubSecrets('failed postgres://dto:p%40ss@h:5432/db with p@ss and p%40ss', connection);
    expect(text).toBe('failed postgres://dto:***@h:5432/db with *** and ***');
  });

  it('is never passed to a detached run in its arguments (ps shows them to every user): both --connection forms are dropped', () => {
    const url = 'postgres://dto:hunter2@db:5432/jobs';
    for (const given of [
      ['plan.yaml', '--agent', 'mock', '--backend', 'bullmq', '--connection', url, '--detach'],
      ['plan.yaml', '--agent', 'mock', '--backend', 'bullmq', `--connection=${url}`, '--detach'],
    ]) {
      const args = childArgv(given, 'S1');
      expect(args.join(' ')).not.toContain('hunter2');
      expect(args).toEqual(['plan.yaml', '--agent', 'mock', '--backend', 'bullmq', '--session_id', 'S1']);
    }
  });
});
