// CLI: node src/main.ts --port 9100 --app-id cli_… --app-secret … [--encrypt-key K] [--webhook URL] [--no-limits]
// (FEISHU_EMULATOR_* env vars as fallback). Prints one JSON line with what a client needs, then serves.
import { parseArgs } from 'node:util';
import { startFeishuEmulator } from './server.ts';
import type { FeishuEmulatorOptions } from './types.ts';

const { values } = parseArgs({
  options: {
    port: { type: 'string' },
    host: { type: 'string' },
    'app-id': { type: 'string' },
    'app-secret': { type: 'string' },
    'verification-token': { type: 'string' },
    'encrypt-key': { type: 'string' },
    'bot-open-id': { type: 'string' },
    'bot-name': { type: 'string' },
    webhook: { type: 'string' },
    'no-limits': { type: 'boolean' },
    'ack-timeout-ms': { type: 'string' },
    'token-ttl-sec': { type: 'string' },
    'group-messages': { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  },
  strict: true,
});

if (values.help) {
  process.stdout.write(
    'usage: node src/main.ts [--port N] [--host H] [--app-id cli_…] [--app-secret S] [--verification-token T]\n' +
      '  [--encrypt-key K] [--bot-open-id ou_…] [--bot-name NAME] [--webhook URL] [--no-limits]\n' +
      '  [--ack-timeout-ms N] [--token-ttl-sec N] [--group-messages all|mentions]\n' +
      'env fallbacks: FEISHU_EMULATOR_PORT _HOST _APP_ID _APP_SECRET _VERIFICATION_TOKEN _ENCRYPT_KEY _BOT_OPEN_ID\n' +
      '  _BOT_NAME _WEBHOOK _NO_LIMITS _ACK_TIMEOUT_MS _TOKEN_TTL_SEC _GROUP_MESSAGES\n',
  );
  process.exit(0);
}

function pick(flag: string | undefined, name: string): string | undefined {
  const v = flag ?? process.env[`FEISHU_EMULATOR_${name}`];
  return v === undefined || v === '' ? undefined : v;
}

function fail(message: string): never {
  process.stderr.write(`feishu-emulator: ${message}\n`);
  process.exit(2);
}

function numberOpt(flag: string | undefined, name: string): number | undefined {
  const v = pick(flag, name);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) fail(`invalid number for FEISHU_EMULATOR_${name}: ${v}`);
  return n;
}

const noLimitsEnv = process.env['FEISHU_EMULATOR_NO_LIMITS'];
const groupMessages = pick(values['group-messages'], 'GROUP_MESSAGES');
if (groupMessages !== undefined && groupMessages !== 'all' && groupMessages !== 'mentions')
  fail(`--group-messages must be all or mentions, not ${groupMessages}`);
const webhook = pick(values.webhook, 'WEBHOOK');
if (webhook !== undefined && !URL.canParse(webhook)) fail(`--webhook is not a URL: ${webhook}`);

const opts: FeishuEmulatorOptions = {
  host: pick(values.host, 'HOST') ?? '127.0.0.1',
  port: numberOpt(values.port, 'PORT') ?? 0,
};
const set = <K extends keyof FeishuEmulatorOptions>(key: K, value: FeishuEmulatorOptions[K] | undefined) => {
  if (value !== undefined) opts[key] = value;
};
set('appId', pick(values['app-id'], 'APP_ID'));
set('appSecret', pick(values['app-secret'], 'APP_SECRET'));
set('verificationToken', pick(values['verification-token'], 'VERIFICATION_TOKEN'));
set('encryptKey', pick(values['encrypt-key'], 'ENCRYPT_KEY'));
set('ackTimeoutMs', numberOpt(values['ack-timeout-ms'], 'ACK_TIMEOUT_MS'));
set('tokenTtlSec', numberOpt(values['token-ttl-sec'], 'TOKEN_TTL_SEC'));
set('groupMessages', groupMessages as 'all' | 'mentions' | undefined);
const botOpenId = pick(values['bot-open-id'], 'BOT_OPEN_ID');
const botName = pick(values['bot-name'], 'BOT_NAME');
if (botOpenId || botName)
  opts.bot = { ...(botOpenId ? { open_id: botOpenId } : {}), ...(botName ? { app_name: botName } : {}) };
if (values['no-limits'] || noLimitsEnv === '1' || noLimitsEnv === 'true') opts.limits = false;

const emu = await startFeishuEmulator(opts);
if (webhook) emu.setEventTarget({ webhook });
process.stdout.write(
  JSON.stringify({
    url: emu.url,
    appId: emu.appId,
    appSecret: emu.appSecret,
    verificationToken: emu.verificationToken,
    encryptKey: emu.encryptKey ?? null,
    bot: emu.bot,
    eventTarget: webhook ? { webhook } : { ws: true },
  }) + '\n',
);

let stopping = false;
function stop(): void {
  if (stopping) return;
  stopping = true;
  emu.close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
