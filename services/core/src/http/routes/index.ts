import { z } from 'zod';
import { openApiDocument } from '../openapi.ts';
import { publicRoute, type Route } from '../route.ts';
import { approvalRoutes } from './approvals.ts';
import { auditRoutes } from './audit.ts';
import { automationRoutes } from './automations.ts';
import { chatRoutes } from './chat.ts';
import { consoleRoutes } from './console.ts';
import { conversationRoutes } from './conversations.ts';
import { keyRoutes } from './keys.ts';
import { knowledgeRoutes } from './knowledge.ts';
import { memoryRoutes } from './memories.ts';
import { pairingRoutes } from './pairing.ts';
import { systemRoutes } from './system.ts';
import { userRoutes } from './users.ts';

let document: unknown;

const apiDescription = publicRoute({
  method: 'get',
  path: '/api/openapi.json',
  operationId: 'openapi',
  tag: 'system',
  summary: 'This API described in OpenAPI 3.1',
  response: { description: 'The OpenAPI document.', schema: z.looseObject({ openapi: z.string() }) },
  async handler() {
    return (document ??= openApiDocument(routes));
  },
});

/** The route table: express routes and the OpenAPI document are both built from it, and nothing else. */
export const routes: readonly Route[] = [
  ...systemRoutes,
  apiDescription,
  ...chatRoutes,
  ...conversationRoutes,
  ...pairingRoutes,
  ...auditRoutes,
  ...userRoutes,
  ...keyRoutes,
  ...knowledgeRoutes,
  ...memoryRoutes,
  ...automationRoutes,
  ...consoleRoutes,
  ...approvalRoutes,
];
