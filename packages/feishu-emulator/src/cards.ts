// Card JSON (message cards and CardKit card entities): walking the component tree, validating
// what the platform validates, and the CardKit entity lifecycle (streaming mode, sequence, uuid).
import { ApiError, ERR } from './errors.ts';
import { newCardId } from './ids.ts';

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

const CARD_MAX_BYTES = 30 * 1024;
const MAX_COMPONENTS = 200;
const CARD_TTL_MS = 14 * 24 * 3600 * 1000;
// Card JSON 2.0: letters, digits and underscores, starting with a letter, at most 20 characters.
const ELEMENT_ID = /^[A-Za-z][A-Za-z0-9_]{0,19}$/;
// Components schema 1.0 had and 2.0 dropped.
const V1_ONLY_TAGS = new Set(['note', 'action']);

/** Every tagged object (component or text object) in document order, header first. */
export function walkTagged(card: Json, visit: (node: Json, inHeader: boolean) => void): void {
  const walk = (value: unknown, inHeader: boolean): void => {
    if (Array.isArray(value)) {
      for (const v of value) walk(v, inHeader);
      return;
    }
    if (!isObject(value)) return;
    if (typeof value.tag === 'string') visit(value, inHeader);
    for (const [k, v] of Object.entries(value))
      if (typeof v === 'object' && v !== null) walk(v, inHeader || k === 'header');
  };
  walk(card, false);
}

/** The body text a reader sees: markdown and text objects outside the header, in order. */
export function cardText(card: Json): string {
  const parts: string[] = [];
  walkTagged(card, (node, inHeader) => {
    if (inHeader) return;
    if (
      (node.tag === 'markdown' || node.tag === 'plain_text' || node.tag === 'lark_md') &&
      typeof node.content === 'string'
    )
      parts.push(node.content);
  });
  return parts.join('\n');
}

/** element_id → content of the markdown / plain_text elements that carry an id. */
export function cardElementTexts(card: Json): Record<string, string> {
  const out: Record<string, string> = {};
  walkTagged(card, (node) => {
    if (typeof node.element_id !== 'string') return;
    if ((node.tag === 'markdown' || node.tag === 'plain_text') && typeof node.content === 'string')
      out[node.element_id] = node.content;
  });
  return out;
}

function findElement(card: Json, elementId: string): Json | undefined {
  let found: Json | undefined;
  walkTagged(card, (node) => {
    if (!found && node.element_id === elementId) found = node;
  });
  return found;
}

const bytes = (s: string): number => Buffer.byteLength(s, 'utf8');

/** A card sent as an `interactive` message (schema 1.0 or 2.0). Throws 230099 like the IM API. */
export function validateMessageCard(card: Json): void {
  const fail = (sub: number, what: string) =>
    new ApiError(ERR.imCardFailed, `ErrCode: ${sub}; ErrMsg: ${what}; ErrorValue: ;`);
  if (card.schema === '2.0') {
    const body = card.body;
    if (!isObject(body) || !Array.isArray(body.elements))
      throw fail(200621, 'parse card json err, please check whether the card json is correct');
    const config = card.config;
    if (isObject(config) && config.update_multi === false)
      throw fail(200621, 'cards of schema V2 only support update_multi true');
  } else if (!Array.isArray(card.elements) && !isObject(card.i18n_elements)) {
    throw fail(200621, 'parse card json err, please check whether the card json is correct');
  }
  walkTagged(card, (node) => {
    if (card.schema === '2.0' && V1_ONLY_TAGS.has(node.tag as string))
      throw fail(
        200861,
        `cards of schema V2 no longer support this capability; ErrorValue: unsupported tag ${String(node.tag)}`,
      );
  });
}

/** Whether PATCH may update the card for everyone: shared (update_multi) cards, which every 2.0 card is. */
export function isSharedCard(card: Json): boolean {
  if (card.schema === '2.0') return true;
  return isObject(card.config) && card.config.update_multi === true;
}

export interface CardEntity {
  card_id: string;
  json: Json;
  streaming: boolean;
  streamingSince: number;
  timedOut: boolean;
  sequence: number;
  createdAt: number;
  summary: string | undefined;
  sentAs: string | undefined;
  contentUpdates: number;
  uuids: Map<string, string>;
}

/** Parse and check a card JSON 2.0 string for the CardKit API. */
function parseEntityCard(data: unknown): Json {
  if (typeof data !== 'string') throw new ApiError(ERR.cardInvalidParam, 'data is required');
  if (data.trim() === '') throw new ApiError(ERR.cardDslEmpty);
  let card: unknown;
  try {
    card = JSON.parse(data);
  } catch {
    throw new ApiError(ERR.cardGenerateFailed, 'card json is not valid json');
  }
  if (!isObject(card) || Object.keys(card).length === 0) throw new ApiError(ERR.cardDslEmpty);
  if (card.schema !== '2.0') throw new ApiError(ERR.cardSchemaNot2);
  if (isObject(card.config) && card.config.update_multi === false) throw new ApiError(ERR.cardNotShared);
  if (!isObject(card.body) || !Array.isArray(card.body.elements))
    throw new ApiError(ERR.cardGenerateFailed, 'body.elements is required');
  if (bytes(data) > CARD_MAX_BYTES) throw new ApiError(ERR.cardTooLarge);
  const ids = new Set<string>();
  let components = 0;
  walkTagged(card, (node) => {
    components++;
    if (V1_ONLY_TAGS.has(node.tag as string))
      throw new ApiError(
        ERR.cardGenerateFailed,
        `cards of schema V2 no longer support this capability; unsupported tag ${String(node.tag)}`,
      );
    const id = node.element_id;
    if (id === undefined) return;
    if (typeof id !== 'string' || !ELEMENT_ID.test(id))
      throw new ApiError(
        ERR.cardInvalidParam,
        `invalid element_id ${JSON.stringify(id)}: letters, digits and underscores, starting with a letter, at most 20 characters`,
      );
    if (ids.has(id)) throw new ApiError(ERR.cardDuplicateElementId, id);
    ids.add(id);
  });
  if (components > MAX_COMPONENTS) throw new ApiError(ERR.cardTooManyElements);
  return card;
}

function checkSequence(value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > 2147483647)
    throw new ApiError(ERR.cardInvalidParam, 'sequence must be an integer in 1..2147483647');
  return value;
}

function checkUuid(value: unknown): string | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value !== 'string' || value.length > 64)
    throw new ApiError(ERR.cardInvalidParam, 'uuid must be 1..64 characters');
  return value;
}

function configOf(card: Json): Json {
  return isObject(card.config) ? card.config : {};
}

function summaryOf(config: Json): string | undefined {
  const s = config.summary;
  return isObject(s) && typeof s.content === 'string' ? s.content : undefined;
}

/** The card entities of one app. */
export class CardStore {
  private readonly cards = new Map<string, CardEntity>();
  private readonly streamingTimeoutMs: number;

  constructor(streamingTimeoutMs: number) {
    this.streamingTimeoutMs = streamingTimeoutMs;
  }

  get(cardId: string): CardEntity | undefined {
    const card = this.cards.get(cardId);
    if (card) this.expireStreaming(card);
    return card;
  }

  create(body: Json): string {
    if (body.type !== 'card_json') {
      if (body.type === 'template')
        throw new ApiError(ERR.cardInvalidParam, 'template cards are not available to this app');
      throw new ApiError(ERR.cardInvalidParam, 'type must be card_json');
    }
    const json = parseEntityCard(body.data);
    const config = configOf(json);
    const now = Date.now();
    const card: CardEntity = {
      card_id: newCardId(),
      json,
      streaming: config.streaming_mode === true,
      streamingSince: now,
      timedOut: false,
      sequence: 0,
      createdAt: now,
      summary: summaryOf(config),
      sentAs: undefined,
      contentUpdates: 0,
      uuids: new Map(),
    };
    this.cards.set(card.card_id, card);
    return card.card_id;
  }

  /** Look a card up for an operation: it must exist and be under 14 days old. */
  private live(cardId: string): CardEntity {
    const card = this.get(cardId);
    if (!card) throw new ApiError(ERR.cardNotFound);
    if (Date.now() - card.createdAt > CARD_TTL_MS) throw new ApiError(ERR.cardExpired);
    return card;
  }

  /** A retried request with the same uuid succeeds without being applied twice; a different one conflicts. */
  private replayed(card: CardEntity, uuid: string | undefined, fingerprint: string): boolean {
    if (!uuid) return false;
    const seen = card.uuids.get(uuid);
    if (seen === undefined) return false;
    if (seen !== fingerprint) throw new ApiError(ERR.cardUuidConflict);
    return true;
  }

  private advance(card: CardEntity, sequence: number, uuid: string | undefined, fingerprint: string): void {
    if (sequence <= card.sequence)
      throw new ApiError(ERR.cardSequence, `sequence ${sequence} <= last ${card.sequence}`);
    card.sequence = sequence;
    if (uuid) card.uuids.set(uuid, fingerprint);
  }

  private expireStreaming(card: CardEntity): void {
    if (card.streaming && Date.now() - card.streamingSince >= this.streamingTimeoutMs) {
      card.streaming = false;
      card.timedOut = true;
      this.setConfig(card, { streaming_mode: false });
    }
  }

  private setConfig(card: CardEntity, patch: Json): void {
    card.json.config = { ...configOf(card.json), ...patch };
  }

  content(cardId: string, elementId: string, body: Json): void {
    const card = this.live(cardId);
    const content = body.content;
    if (typeof content !== 'string' || content.length === 0 || content.length > 100000)
      throw new ApiError(ERR.cardInvalidParam, 'content must be 1..100000 characters');
    const sequence = checkSequence(body.sequence);
    const uuid = checkUuid(body.uuid);
    const fingerprint = `content:${elementId}:${content}`;
    if (this.replayed(card, uuid, fingerprint)) return;
    const element = findElement(card.json, elementId);
    if (!element) throw new ApiError(ERR.cardElementFailed, `ErrMsg: not find elementID: ${elementId}`);
    if (element.tag !== 'markdown' && element.tag !== 'plain_text') throw new ApiError(ERR.cardOnlyText);
    if (!card.streaming)
      throw new ApiError(card.timedOut ? ERR.cardStreamingTimeout : ERR.cardStreamingClosed);
    const before = element.content;
    element.content = content;
    if (bytes(JSON.stringify(card.json)) > CARD_MAX_BYTES) {
      element.content = before;
      throw new ApiError(ERR.cardTooLarge);
    }
    try {
      this.advance(card, sequence, uuid, fingerprint);
    } catch (e) {
      element.content = before;
      throw e;
    }
    card.contentUpdates++;
  }

  settings(cardId: string, body: Json): void {
    const card = this.live(cardId);
    if (typeof body.settings !== 'string' || body.settings.length === 0)
      throw new ApiError(ERR.cardInvalidParam, 'settings is required');
    let settings: unknown;
    try {
      settings = JSON.parse(body.settings);
    } catch {
      throw new ApiError(ERR.cardInvalidParam, 'settings is not valid json');
    }
    if (!isObject(settings)) throw new ApiError(ERR.cardInvalidParam, 'settings must be a JSON object');
    const sequence = checkSequence(body.sequence);
    const uuid = checkUuid(body.uuid);
    const fingerprint = `settings:${body.settings}`;
    if (this.replayed(card, uuid, fingerprint)) return;
    // Both shapes are in use: {"config":{"streaming_mode":false}} and a top-level "streaming_mode".
    const config: Json = { ...(isObject(settings.config) ? settings.config : {}) };
    if (typeof settings.streaming_mode === 'boolean' && config.streaming_mode === undefined)
      config.streaming_mode = settings.streaming_mode;
    if (isObject(settings.summary) && config.summary === undefined) config.summary = settings.summary;
    if (config.update_multi === false) throw new ApiError(ERR.cardNotShared);
    this.advance(card, sequence, uuid, fingerprint);
    this.setConfig(card, config);
    if (isObject(settings.card_link)) card.json.card_link = settings.card_link;
    if (typeof config.streaming_mode === 'boolean') {
      if (config.streaming_mode && !card.streaming) card.streamingSince = Date.now();
      card.streaming = config.streaming_mode;
      card.timedOut = false;
    }
    const summary = summaryOf(config);
    if (summary !== undefined) card.summary = summary;
  }

  update(cardId: string, body: Json): void {
    const card = this.live(cardId);
    const wrapper = body.card;
    if (!isObject(wrapper) || wrapper.type !== 'card_json')
      throw new ApiError(ERR.cardInvalidParam, 'card.type must be card_json');
    const sequence = checkSequence(body.sequence);
    const uuid = checkUuid(body.uuid);
    const fingerprint = `update:${String(wrapper.data)}`;
    if (this.replayed(card, uuid, fingerprint)) return;
    const json = parseEntityCard(wrapper.data);
    this.advance(card, sequence, uuid, fingerprint);
    const config = configOf(json);
    const streaming = config.streaming_mode === true;
    if (streaming && !card.streaming) card.streamingSince = Date.now();
    card.json = json;
    card.streaming = streaming;
    card.timedOut = false;
    card.summary = summaryOf(config);
  }

  /** Bind a card to the message that sends it: a card entity can be sent once. */
  attach(cardId: unknown, messageId: string): CardEntity {
    const fail = (sub: number, what: string) =>
      new ApiError(ERR.imCardFailed, `ErrCode: ${sub}; ErrMsg: ${what};`);
    if (typeof cardId !== 'string' || cardId === '') throw fail(200740, 'card_id is required');
    const card = this.get(cardId);
    if (!card) throw fail(200740, `card entity not found, card_id: ${cardId}`);
    if (Date.now() - card.createdAt > CARD_TTL_MS) throw fail(200750, 'card entity has expired');
    if (card.sentAs)
      throw fail(300311, 'the card entity has already been sent, a card entity can only be sent once');
    card.sentAs = messageId;
    return card;
  }
}
