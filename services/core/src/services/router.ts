import type { Route } from '../config.ts';

export interface RoutingInput {
  platform: string;
  chatType: 'direct' | 'group';
  text: string;
  command: string | undefined;
  event: 'message' | 'bot_added';
}

/** `/name args` → name (lowercase, without a `@bot` suffix) and args. */
export function parseCommand(text: string): { name: string; args: string } | undefined {
  const m = /^\/([A-Za-z0-9_]{1,64})(?:@\S+)?(?:\s+([\s\S]*))?$/.exec(text.trim());
  return m ? { name: m[1]!.toLowerCase(), args: (m[2] ?? '').trim() } : undefined;
}

/** The first rule of routing.yaml that fits the message (the last rule is the default). */
export function chooseRoute(routes: readonly Route[], m: RoutingInput): Route {
  for (const r of routes) {
    const match = r.match;
    if (!match) return r;
    if (match.event ? match.event !== m.event : m.event !== 'message') continue;
    if (match.platforms && !match.platforms.includes(m.platform)) continue;
    if (match.chatType && match.chatType !== m.chatType) continue;
    if (match.commands && (!m.command || !match.commands.includes(m.command))) continue;
    if (match.content && !match.content.test(m.text)) continue;
    return r;
  }
  return routes[routes.length - 1]!;
}
