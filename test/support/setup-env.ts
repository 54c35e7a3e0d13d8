// Set up before every test file: the launch key (execution/launch-signature.ts) is kept in the temporary folder, so
// tests never create one in the user's data folder; child processes inherit it.
import os from 'node:os';
import path from 'node:path';
import { LAUNCH_KEY_ENV } from '../../scripts/lib/execution/launch-signature.ts';

process.env[LAUNCH_KEY_ENV] ??= path.join(os.tmpdir(), 'dto-test-launch.key');
