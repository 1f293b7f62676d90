// Hash routing (`#/chat/<id>`): the server only ever serves index.html and hashed assets.
import { useEffect, useState } from 'preact/hooks';
import type { Role } from './types.ts';

export type PageId =
  | 'chat'
  | 'conversations'
  | 'tasks'
  | 'models'
  | 'pairing'
  | 'approvals'
  | 'keys'
  | 'knowledge'
  | 'workflows'
  | 'audit'
  | 'config';

export interface PageInfo {
  id: PageId;
  title: string;
  /** Who may open it (the API refuses the others anyway; this only keeps the menu honest). */
  roles: readonly Role[];
}

export const PAGES: readonly PageInfo[] = [
  { id: 'chat', title: 'Chat', roles: ['admin', 'operator', 'user'] },
  { id: 'conversations', title: 'Conversations', roles: ['admin', 'operator', 'auditor', 'user'] },
  { id: 'tasks', title: 'Tasks', roles: ['admin', 'operator', 'user'] },
  { id: 'models', title: 'Models', roles: ['admin', 'operator'] },
  { id: 'pairing', title: 'Pairing', roles: ['admin', 'operator'] },
  { id: 'approvals', title: 'Approvals', roles: ['admin', 'operator'] },
  { id: 'keys', title: 'Users & keys', roles: ['admin'] },
  { id: 'knowledge', title: 'Knowledge base', roles: ['admin', 'operator'] },
  { id: 'workflows', title: 'Workflows', roles: ['admin', 'operator'] },
  { id: 'audit', title: 'Audit log', roles: ['admin', 'auditor'] },
  { id: 'config', title: 'Configuration', roles: ['admin', 'operator'] },
];

export const pagesFor = (role: Role) => PAGES.filter((p) => p.roles.includes(role));

export interface Location {
  /** The first path segment (`chat`), '' for none. */
  page: string;
  /** The rest (`<conversation id>`), '' for none. */
  rest: string;
}

function current(): Location {
  const path = location.hash.replace(/^#\/?/, '');
  const i = path.indexOf('/');
  return i < 0
    ? { page: path, rest: '' }
    : { page: path.slice(0, i), rest: decodeURIComponent(path.slice(i + 1)) };
}

export function useLocation(): Location {
  const [loc, setLoc] = useState(current);
  useEffect(() => {
    const onChange = () => setLoc(current());
    addEventListener('hashchange', onChange);
    return () => removeEventListener('hashchange', onChange);
  }, []);
  return loc;
}

export const href = (page: PageId, rest?: string) => `#/${page}${rest ? `/${encodeURIComponent(rest)}` : ''}`;

/** Goes to a page; `replace` keeps the browser history from growing (redirects). */
export function navigate(page: PageId, rest?: string, replace = false): void {
  const target = href(page, rest);
  if (location.hash === target) return;
  if (replace) {
    history.replaceState(null, '', target);
    dispatchEvent(new HashChangeEvent('hashchange'));
  } else location.hash = target;
}
