/** `pincer keys create|list|revoke`: API keys for the REST API. */
import { ROLES } from '../repositories/keys.ts';
import { connect } from './client.ts';
import { type Command, UUID, writeList } from './command.ts';

interface ApiKey {
  id: string;
  name: string;
  role: string;
  created_at: string;
  last_used_at: string | null;
  revoked_at: string | null;
}

export const keyCommands: Command[] = [
  {
    path: ['keys', 'create'],
    args: '<name> --role ROLE [--json]',
    summary: 'Create an API key (shown once: Pincer keeps only its hash)',
    details: `Roles: ${ROLES.join(', ')}.
  admin: everything; operator: chat, conversations, users, pairing, knowledge;
  auditor: conversations and the audit log; user: chat and its own conversations.
The key alone is printed on the last line of output (with --json: the "key" field).`,
    options: { role: { type: 'string' }, json: { type: 'boolean' } },
    async run(ctx) {
      const [name, ...extra] = ctx.positionals;
      if (!name || extra.length) return ctx.usage('give the key one name (quote it if it has spaces)');
      const role = ctx.values.role as string | undefined;
      if (!role) return ctx.usage(`--role is required (${ROLES.join(', ')})`);
      if (!(ROLES as readonly string[]).includes(role))
        ctx.usage(`--role must be one of ${ROLES.join(', ')}`);
      const k = await connect(ctx).request<ApiKey & { key: string }>('POST', '/api/v1/keys', {
        body: { name, role },
      });
      if (ctx.values.json) ctx.stdout.write(`${JSON.stringify(k)}\n`);
      else
        ctx.stdout.write(
          `created ${k.role} key "${k.name}" (id ${k.id}); copy it now, it is not shown again:\n${k.key}\n`,
        );
    },
  },
  {
    path: ['keys', 'list'],
    args: '[--json]',
    summary: 'List API keys, revoked ones included (never the keys themselves)',
    options: { json: { type: 'boolean' } },
    async run(ctx) {
      if (ctx.positionals.length) return ctx.usage(`unexpected argument "${ctx.positionals[0]}"`);
      const { data } = await connect(ctx).request<{ data: ApiKey[] }>('GET', '/api/v1/keys');
      writeList(ctx, data, 'no API keys', ['ID', 'NAME', 'ROLE', 'CREATED', 'LAST USED', 'REVOKED'], (k) => [
        k.id,
        k.name,
        k.role,
        k.created_at,
        k.last_used_at ?? '-',
        k.revoked_at ?? '-',
      ]);
    },
  },
  {
    path: ['keys', 'revoke'],
    args: '<id>',
    summary: 'Revoke an API key: refused from the next request on',
    details: 'The id is the first column of "pincer keys list". Revoking a revoked key changes nothing.',
    async run(ctx) {
      const [id, ...extra] = ctx.positionals;
      if (!id || extra.length) return ctx.usage('give one key id');
      if (!UUID.test(id)) return ctx.usage(`"${id}" is not a key id (see pincer keys list)`);
      await connect(ctx).request('DELETE', `/api/v1/keys/${id}`);
      ctx.stdout.write(`revoked key ${id}\n`);
    },
  },
];
