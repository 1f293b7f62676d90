import { existsSync } from 'node:fs';
import path from 'node:path';
import { type Browser, chromium } from 'playwright-core';

// Debian's Chromium (scripts/lib/env.sh installs it): playwright-core drives it, downloads nothing
const CHROMIUM = '/usr/bin/chromium';
const CONSOLE_INDEX = path.resolve(import.meta.dirname, '../console/dist/index.html');

/** Headless Chromium for the console tests; says what to do when it or the built console is missing. */
export async function launchBrowser(): Promise<Browser> {
  if (!existsSync(CHROMIUM))
    throw new Error(`${CHROMIUM} is missing: apt-get install chromium (scripts/test.sh installs it)`);
  if (!existsSync(CONSOLE_INDEX))
    throw new Error(`the console is not built (${CONSOLE_INDEX} is missing): run npm run build first`);
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}
