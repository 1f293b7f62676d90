#!/usr/bin/env node
/**
 * `pincer`, the operator CLI (`docker compose exec core pincer …`): admin commands through core's
 * REST API, and `doctor` / `test-model` run against core's own environment.
 */
import { backupCommands } from './backup.ts';
import { type Command, CliError, type Context, EXIT, select, shortUsage, UsageError } from './command.ts';
import { conversationCommands } from './conversations.ts';
import { doctorCommands } from './doctor.ts';
import { kbCommands } from './kb.ts';
import { keyCommands } from './keys.ts';
import { pairingCommands } from './pairing.ts';
import { testModelCommands } from './test-model.ts';

const commands: Command[] = [
  ...doctorCommands,
  ...testModelCommands,
  ...keyCommands,
  ...pairingCommands,
  ...kbCommands,
  ...conversationCommands,
  ...backupCommands,
];

async function main(argv: string[]): Promise<number> {
  try {
    const chosen = select(commands, argv);
    if ('help' in chosen) {
      if (chosen.error) process.stderr.write(`pincer: ${chosen.error}\n\n${chosen.help}`);
      else process.stdout.write(chosen.help);
      return chosen.exitCode;
    }
    const { command, values, positionals } = chosen;
    const ctx: Context = {
      values,
      positionals,
      env: process.env,
      stdout: process.stdout,
      stderr: process.stderr,
      usage(message) {
        throw new UsageError(message, shortUsage(command));
      },
    };
    return (await command.run(ctx)) ?? EXIT.ok;
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`pincer: ${err.message}\n\n${err.usage}`);
      return err.exitCode;
    }
    if (err instanceof CliError) {
      process.stderr.write(`pincer: ${err.message}\n`);
      return err.exitCode;
    }
    process.stderr.write(`pincer: unexpected error: ${(err as Error).stack ?? String(err)}\n`);
    return EXIT.failed;
  }
}

process.exitCode = await main(process.argv.slice(2));
