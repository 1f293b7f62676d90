// Error codes and messages as the open platform documents them (open.feishu.cn / open.larksuite.com
// server API pages: "Error code" tables of im/v1 message, message-reaction, cardkit/v1 card and card-element,
// plus the gateway's general codes). Every failure answers {code, msg, error:{log_id, troubleshooter}}.

export const ERR = {
  // gateway / auth
  missingToken: {
    status: 400,
    code: 99991661,
    msg: 'Missing access token for authorization. Please make a request with token attached.',
  },
  invalidToken: {
    status: 400,
    code: 99991663,
    msg: 'Invalid access token for authorization. Please make a request with token attached.',
  },
  rateLimited: { status: 429, code: 99991400, msg: 'request trigger frequency limit' },
  noPermission: {
    status: 400,
    code: 99991672,
    msg: 'Access denied. One of the following scopes is required: [cardkit:card:write].',
  },
  fieldValidation: { status: 400, code: 99992402, msg: 'field validation failed' },
  badRequest: { status: 400, code: 9499, msg: 'Bad Request' },
  internal: { status: 500, code: 1000, msg: 'Internal Server Error' },
  // auth/v3 (HTTP 200 with a non-zero code, as the token endpoint answers)
  tokenInvalidParam: { status: 200, code: 10003, msg: 'invalid param' },
  tokenBadSecret: { status: 200, code: 10014, msg: 'app secret invalid' },
  // long connection endpoint
  wsBadCredentials: { status: 200, code: 1000040345, msg: 'app_id or app_secret is invalid' },
  wsSystemBusy: { status: 200, code: 1000040343, msg: 'system busy' },
  wsTooManyConnections: { status: 200, code: 1000040350, msg: 'exceed connection limit' },
  // im/v1
  imInvalidParam: { status: 400, code: 230001, msg: 'Your request contains an invalid request parameter.' },
  imBotNotInChat: { status: 400, code: 230002, msg: 'The bot can not be outside the group.' },
  imRecalled: { status: 400, code: 230011, msg: 'The message is recalled.' },
  imNoAvailability: { status: 400, code: 230013, msg: 'Bot has NO availability to this user.' },
  imNotOwner: { status: 400, code: 230017, msg: 'Bot is NOT the owner of the resource.' },
  imFrequency: { status: 400, code: 230020, msg: 'This operation triggers the frequency limit.' },
  imTooLong: { status: 400, code: 230025, msg: 'The length of the message content reaches its limit.' },
  imTooOld: { status: 400, code: 230031, msg: 'Message can only be modified within 14 days after sending.' },
  imUnsupportedType: {
    status: 400,
    code: 230054,
    msg: 'This operation is not supported for this message type.',
  },
  imNotSender: { status: 400, code: 230071, msg: 'The operator is not the sender of the message.' },
  imEditLimit: {
    status: 400,
    code: 230072,
    msg: 'The message has reached the number of times it can be edited.',
  },
  imCardFailed: { status: 400, code: 230099, msg: 'Failed to create card content.' },
  imDeleted: { status: 400, code: 230110, msg: 'Action unavailable as the message has been deleted.' },
  // im/v1 reactions
  reactionInvalidType: { status: 400, code: 231001, msg: 'reaction type is invalid.' },
  reactionNoPermission: {
    status: 400,
    code: 231002,
    msg: 'The operator has no permission to react on the specific message.',
  },
  reactionMessageGone: {
    status: 400,
    code: 231003,
    msg: 'The message is not found, maybe not exist or deleted.',
  },
  reactionNotOwner: {
    status: 400,
    code: 231007,
    msg: 'The operator has no permission to delete this reaction.',
  },
  reactionWrongMessage: { status: 400, code: 231010, msg: 'The reaction does not belong to the message.' },
  reactionInvalidId: { status: 400, code: 231011, msg: 'The request has an invalid reaction_id.' },
  // cardkit/v1
  cardInvalidParam: { status: 400, code: 10002, msg: 'Your request contains an invalid request parameter.' },
  cardGenerateFailed: { status: 400, code: 200220, msg: 'Failed to generate card content' },
  cardNotFound: { status: 400, code: 200740, msg: 'The card entity does not exist' },
  cardExpired: { status: 400, code: 200750, msg: 'The card entity has expired' },
  cardUuidConflict: { status: 400, code: 200770, msg: 'UUID conflict' },
  cardStreamingTimeout: { status: 400, code: 200850, msg: 'Card streaming timeout' },
  cardTooLarge: { status: 400, code: 200860, msg: 'Card content exceeds limit.' },
  cardDuplicateElementId: { status: 400, code: 300301, msg: 'Duplicate element_id in card component.' },
  cardNotShared: { status: 400, code: 300302, msg: 'update_multi property is false' },
  cardSchemaNot2: { status: 400, code: 300303, msg: 'Only schema 2.0 is supported' },
  cardTooManyElements: { status: 400, code: 300305, msg: 'The number of card components exceeds 200' },
  cardDslEmpty: { status: 400, code: 300307, msg: 'The card DSL is empty' },
  cardStreamingClosed: { status: 400, code: 300309, msg: 'Card streaming closed' },
  cardOnlyText: { status: 400, code: 300310, msg: 'Only update text' },
  cardElementFailed: { status: 400, code: 300313, msg: 'Failed to update element properties' },
  cardSequence: {
    status: 400,
    code: 300317,
    msg: 'The sequence number for operating on the card did not increment consecutively',
  },
} as const;

export type ErrorSpec = { status: number; code: number; msg: string };

/** A failure answered to the caller in the platform's shape. */
export class ApiError extends Error {
  readonly status: number;
  readonly code: number;
  readonly extra: Record<string, unknown> | undefined;
  readonly headers: Record<string, string> | undefined;

  constructor(
    spec: ErrorSpec,
    detail?: string,
    extra?: Record<string, unknown>,
    headers?: Record<string, string>,
  ) {
    super(detail ? `${spec.msg} ext=${detail}` : spec.msg);
    this.status = spec.status;
    this.code = spec.code;
    this.extra = extra;
    this.headers = headers;
  }
}

/** 99992402 with the offending field, the way the gateway reports schema violations. */
export function fieldError(field: string, description: string): ApiError {
  return new ApiError(ERR.fieldValidation, undefined, { field_violations: [{ field, description }] });
}
