/** `pincer pairing list|approve|deny`: people waiting to talk to the bot (access `direct: pairing`). */
import { type ApiClient, connect } from './client.ts';
import { CliError, type Command, type Context, UUID, writeList } from './command.ts';

interface PairingRequest {
  id: string;
  platform: string;
  external_id: string;
  display_name: string;
  code: string;
  status: string;
  created_at: string;
  expires_at: string;
  decided_at: string | null;
  decided_by: string | null;
}

const STATUSES = ['pending', 'approved', 'denied', 'expired', 'all'];

/** The request's id: given as is, or found by the code the person was told. */
async function requestId(api: ApiClient, idOrCode: string): Promise<string> {
  if (UUID.test(idOrCode)) return idOrCode;
  const { data } = await api.request<{ data: PairingRequest[] }>('GET', '/api/v1/pairing', {
    query: { limit: 500 },
  });
  const found = data.find((p) => p.code.toUpperCase() === idOrCode.toUpperCase());
  if (!found) throw new CliError(`no pairing request with the code ${idOrCode} (see pincer pairing list)`);
  return found.id;
}

function decideCommand(decision: 'approve' | 'deny'): Command {
  return {
    path: ['pairing', decision],
    args: '<id|code> [--json]',
    summary:
      decision === 'approve'
        ? 'Approve a pairing request: the person may talk to the bot from now on'
        : 'Deny a pairing request',
    details: 'Give the request id or the code the person was sent (see pincer pairing list).',
    options: { json: { type: 'boolean' } },
    async run(ctx: Context) {
      const [idOrCode, ...extra] = ctx.positionals;
      if (!idOrCode || extra.length) return ctx.usage('give one request id or code');
      const api = connect(ctx);
      const id = await requestId(api, idOrCode);
      const r = await api.request<PairingRequest>('POST', `/api/v1/pairing/${id}/${decision}`);
      if (ctx.values.json) ctx.stdout.write(`${JSON.stringify(r)}\n`);
      else
        ctx.stdout.write(`${r.status} ${r.display_name} (${r.platform} ${r.external_id}, code ${r.code})\n`);
    },
  };
}

export const pairingCommands: Command[] = [
  {
    path: ['pairing', 'list'],
    args: '[--status STATUS] [--json]',
    summary: 'List pairing requests, newest first',
    details: `--status: ${STATUSES.join(', ')} (default pending).`,
    options: { status: { type: 'string' }, json: { type: 'boolean' } },
    async run(ctx) {
      if (ctx.positionals.length) return ctx.usage(`unexpected argument "${ctx.positionals[0]}"`);
      const status = (ctx.values.status as string | undefined) ?? 'pending';
      if (!STATUSES.includes(status)) return ctx.usage(`--status must be one of ${STATUSES.join(', ')}`);
      const { data } = await connect(ctx).request<{ data: PairingRequest[] }>('GET', '/api/v1/pairing', {
        query: { status: status === 'all' ? undefined : status, limit: 500 },
      });
      writeList(
        ctx,
        data,
        `no ${status === 'all' ? '' : `${status} `}pairing requests`,
        ['ID', 'CODE', 'STATUS', 'PLATFORM', 'USER', 'NAME', 'EXPIRES'],
        (p) => [p.id, p.code, p.status, p.platform, p.external_id, p.display_name, p.expires_at],
      );
    },
  },
  decideCommand('approve'),
  decideCommand('deny'),
];
