// CLI: node src/main.ts --port 8443 --token 123:ABC --bot-username my_bot [--no-flood] [--no-privacy]
// (TG_EMULATOR_* env vars as fallback). Prints one JSON line with url and token once listening.
import { parseArgs } from 'node:util';
import { startTelegramEmulator } from './server.ts';
import type { TelegramEmulatorOptions } from './types.ts';

const { values } = parseArgs({
  options: {
    port: { type: 'string' },
    host: { type: 'string' },
    token: { type: 'string' },
    'bot-username': { type: 'string' },
    'bot-name': { type: 'string' },
    'no-flood': { type: 'boolean' },
    'no-privacy': { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  },
  strict: true,
});

if (values.help) {
  process.stdout.write(
    'usage: node src/main.ts [--port N] [--host H] [--token T] [--bot-username U] [--bot-name N] [--no-flood] [--no-privacy]\n' +
      'env fallbacks: TG_EMULATOR_PORT TG_EMULATOR_HOST TG_EMULATOR_TOKEN TG_EMULATOR_BOT_USERNAME TG_EMULATOR_BOT_NAME\n' +
      '  TG_EMULATOR_NO_FLOOD=1 TG_EMULATOR_NO_PRIVACY=1\n' +
      'control API: /_emulator/messages, /edits, /block, /migrate, /groups, /callbacks, /chats/:id, /calls?since=N, /faults, /state\n',
  );
  process.exit(0);
}

function pick(flag: string | undefined, env: string): string | undefined {
  const v = flag ?? process.env[env];
  return v === undefined || v === '' ? undefined : v;
}

const truthy = (env: string): boolean => /^(1|true|yes)$/i.test(process.env[env] ?? '');

const portText = pick(values.port, 'TG_EMULATOR_PORT') ?? '0';
const port = Number(portText);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  process.stderr.write(`telegram-emulator: invalid port ${portText}\n`);
  process.exit(2);
}

const opts: TelegramEmulatorOptions = {
  port,
  host: pick(values.host, 'TG_EMULATOR_HOST') ?? '127.0.0.1',
  privacyMode: !(values['no-privacy'] ?? truthy('TG_EMULATOR_NO_PRIVACY')),
};
const token = pick(values.token, 'TG_EMULATOR_TOKEN');
if (token) opts.token = token;
const username = pick(values['bot-username'], 'TG_EMULATOR_BOT_USERNAME');
const name = pick(values['bot-name'], 'TG_EMULATOR_BOT_NAME');
if (username || name) opts.bot = { ...(username ? { username } : {}), ...(name ? { first_name: name } : {}) };
if (values['no-flood'] ?? truthy('TG_EMULATOR_NO_FLOOD')) opts.flood = false;

const emulator = await startTelegramEmulator(opts);
process.stdout.write(`${JSON.stringify({ url: emulator.url, token: emulator.token, bot: emulator.bot })}\n`);

let stopping = false;
function stop(): void {
  if (stopping) return;
  stopping = true;
  emulator.close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
