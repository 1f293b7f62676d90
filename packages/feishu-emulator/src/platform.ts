// The tenant the emulator plays: users, chats, messages, reactions and card entities, with the
// rules the IM and CardKit APIs enforce. HTTP plumbing lives in server.ts; this file never sees a request.
import { CardStore, cardElementTexts, isSharedCard } from './cards.ts';
import type { CardEntity } from './cards.ts';
import { checkContent, flattenContent } from './content.ts';
import { ApiError, ERR, fieldError } from './errors.ts';
import { derivedHex, newEventId, newMessageId, newReactionId, newThreadId } from './ids.ts';
import type { Limits } from './limits.ts';
import type { ChatView, EventEnvelope, ShownMessage, UserMessageInput } from './types.ts';

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

const UUID_TTL_MS = 3600 * 1000;
const EDIT_LIMIT = 20;
const PATCH_WINDOW_MS = 14 * 24 * 3600 * 1000;
const RECEIVE_ID_TYPES = ['open_id', 'union_id', 'user_id', 'email', 'chat_id'];

// emoji_type values of the reaction API (the "Emoji Text Instructions" list); case matters.
const EMOJI_TYPES = new Set(
  (
    'OK THUMBSUP THANKS MUSCLE FINGERHEART APPLAUSE FISTBUMP JIAYI DONE SMILE BLUSH LAUGH SMIRK LOL FACEPALM LOVE ' +
    'WINK PROUD WITTY SMART SCOWL THINKING SOB CRY ERROR NOSEPICK HAUGHTY SLAP SPITBLOOD TOASTED GLANCE DULL ' +
    'INNOCENTSMILE JOYFUL WOW TRICK YEAH ENOUGH TEARS EMBARRASSED KISS SMOOCH DROOL OBSESSED MONEY TEASE SHOWOFF ' +
    'COMFORT CLAP PRAISE STRIVE XBLUSH SILENT WAVE WHAT FROWN SHY DIZZY LOOKDOWN CHUCKLE WAIL CRAZY WHIMPER HUG ' +
    'BLUBBER WRONGED HUSKY SHHH SMUG ANGRY HAMMER SHOCKED TERROR PETRIFIED SKULL SWEAT SPEECHLESS SLEEP DROWSY YAWN ' +
    'SICK PUKE BETRAYED HEADSET EatingFood MeMeMe Sigh Typing Lemon Get LGTM OnIt OneSecond VRHeadset YouAreTheBest ' +
    'SALUTE SHAKE HIGHFIVE UPPERLEFT ThumbsDown SLIGHT TONGUE EYESCLOSED RoarForYou CALF BEAR BULL RAINBOWPUKE ROSE ' +
    'HEART PARTY LIPS BEER CAKE GIFT CUCUMBER Drumstick Pepper CANDIEDHAWS BubbleTea Coffee Yes No OKR CheckMark ' +
    'CrossMark MinusOne Hundred AWESOMEN Pin Alarm Loudspeaker Trophy Fire BOMB Music XmasTree Snowman XmasHat ' +
    'FIREWORKS REDPACKET FORTUNE LUCK FIRECRACKER HEARTBROKEN POOP StatusFlashOfInspiration CLEAVER Soccer Basketball ' +
    'GeneralDoNotDisturb GeneralInMeetingBusy StatusReading GeneralBusinessTrip GeneralWorkFromHome StatusEnjoyLife ' +
    'GeneralSun GeneralMoonRest Pumpkin BeamingFace Delighted ColdSweat FullMoonFace Partying GoGoGo ThanksFace ' +
    'SaluteFace Shrug ClownFace HappyDragon'
  ).split(' '),
);

interface User {
  open_id: string;
  union_id: string;
  user_id: string;
  name: string;
}

interface Chat {
  id: string;
  type: 'p2p' | 'group';
  name: string;
  botMember: boolean;
  messageIds: string[];
  reactionIds: string[];
}

interface Mention {
  key: string;
  id: { open_id: string; union_id: string; user_id: string };
  name: string;
  tenant_key: string;
}

interface StoredMessage {
  message_id: string;
  chat_id: string;
  msg_type: string;
  content: string;
  value: Json;
  fromBot: boolean;
  sender: string;
  root_id?: string;
  parent_id?: string;
  thread_id?: string;
  reply_in_thread?: boolean;
  uuid?: string;
  create_time: number;
  update_time: number;
  updates: number;
  edits: number;
  deleted: boolean;
  recalled: boolean;
  card_id?: string;
  mentions?: Mention[];
}

interface Reaction {
  reaction_id: string;
  message_id: string;
  emoji_type: string;
  operator_id: string;
  operator_type: 'app' | 'user';
  action_time: number;
  deleted: boolean;
}

export interface PlatformOptions {
  appId: string;
  tenantKey: string;
  verificationToken: string;
  botOpenId: string;
  limits: Limits | undefined;
  streamingTimeoutMs: number;
  groupMessages: 'all' | 'mentions';
}

export class Platform {
  readonly cards: CardStore;
  private readonly opts: PlatformOptions;
  private readonly users = new Map<string, User>();
  private readonly chats = new Map<string, Chat>();
  private readonly messages = new Map<string, StoredMessage>();
  private readonly reactions = new Map<string, Reaction>();
  private readonly uuids = new Map<string, { message_id: string; at: number }>();
  /** Every event pushed, by event_id, so it can be pushed again. */
  readonly events = new Map<string, EventEnvelope>();

  constructor(opts: PlatformOptions) {
    this.opts = opts;
    this.cards = new CardStore(opts.streamingTimeoutMs);
  }

  // ---- users and chats -------------------------------------------------------------------------

  private user(input: { open_id: string; union_id?: string; user_id?: string; name?: string }): User {
    let user = this.users.get(input.open_id);
    if (!user) {
      user = {
        open_id: input.open_id,
        union_id: input.union_id ?? `on_${derivedHex(`union:${input.open_id}`, 32)}`,
        user_id: input.user_id ?? derivedHex(`user:${input.open_id}`, 8),
        name: input.name ?? input.open_id,
      };
      this.users.set(user.open_id, user);
    } else {
      if (input.union_id) user.union_id = input.union_id;
      if (input.user_id) user.user_id = input.user_id;
      if (input.name) user.name = input.name;
    }
    return user;
  }

  /** The p2p chat between a user and the bot: one per user, always with the bot in it. */
  p2pChat(openId: string): Chat {
    const id = `oc_${derivedHex(`p2p:${this.opts.appId}:${openId}`, 32)}`;
    let chat = this.chats.get(id);
    if (!chat) {
      chat = { id, type: 'p2p', name: '', botMember: true, messageIds: [], reactionIds: [] };
      this.chats.set(id, chat);
    }
    return chat;
  }

  private groupChat(id: string, name?: string): Chat {
    let chat = this.chats.get(id);
    if (!chat) {
      chat = { id, type: 'group', name: name ?? id, botMember: true, messageIds: [], reactionIds: [] };
      this.chats.set(id, chat);
    } else if (name) {
      chat.name = name;
    }
    return chat;
  }

  chatIds(): string[] {
    return [...this.chats.keys()];
  }

  // ---- scripted users --------------------------------------------------------------------------

  private header(eventType: string, eventId = newEventId()): EventEnvelope['header'] {
    return {
      event_id: eventId,
      event_type: eventType,
      create_time: String(Date.now()),
      token: this.opts.verificationToken,
      app_id: this.opts.appId,
      tenant_key: this.opts.tenantKey,
    };
  }

  private mention(user: User, key: string): Mention {
    return {
      key,
      id: { open_id: user.open_id, union_id: user.union_id, user_id: user.user_id },
      name: user.name,
      tenant_key: this.opts.tenantKey,
    };
  }

  /** Build the stored message and the im.message.receive_v1 envelope for a user's message. */
  private userMessage(input: UserMessageInput): { msg: StoredMessage; chat: Chat; envelope: EventEnvelope } {
    if (!input.sender?.open_id) throw new Error('userSend: sender.open_id is required');
    const kinds = [
      input.text !== undefined,
      input.post !== undefined,
      input.image === true,
      input.file !== undefined,
    ];
    if (kinds.filter(Boolean).length !== 1)
      throw new Error('userSend: give exactly one of text, post, image, file');
    const sender = this.user(input.sender);
    let chat: Chat;
    if (input.chat.type === 'group') {
      if (!input.chat.id) throw new Error('userSend: a group message needs chat.id');
      chat = this.groupChat(input.chat.id, input.chat.name);
    } else {
      chat = input.chat.id
        ? (this.chats.get(input.chat.id) ?? this.p2pChat(sender.open_id))
        : this.p2pChat(sender.open_id);
    }

    const mentions: Mention[] = [];
    let msgType: string;
    let value: Json;
    if (input.text !== undefined) {
      msgType = 'text';
      let text = input.text;
      for (const m of input.mentions ?? []) {
        const key = `@_user_${mentions.length + 1}`;
        mentions.push(this.mention(this.user(m), key));
        const written = `@${m.name}`;
        text = text.includes(written) ? text.replace(written, key) : `${key} ${text}`;
      }
      if (input.mentionAll) {
        const written = ['@all', '@所有人'].find((w) => text.includes(w));
        text = written ? text.replace(written, '@_all') : `@_all ${text}`;
        mentions.push({
          key: '@_all',
          id: { open_id: '', union_id: '', user_id: '' },
          name: '所有人',
          tenant_key: this.opts.tenantKey,
        });
      }
      value = { text };
    } else if (input.post !== undefined) {
      msgType = 'post';
      // A received post has no locale wrapper; at elements keep the user's open_id and add a mention.
      const content = input.post.content.map((paragraph) =>
        paragraph.map((el) => {
          if (isObject(el) && el.tag === 'at' && typeof el.user_id === 'string' && el.user_id !== 'all') {
            const user = this.user({
              open_id: el.user_id,
              ...(typeof el.user_name === 'string' ? { name: el.user_name } : {}),
            });
            mentions.push(this.mention(user, `@_user_${mentions.length + 1}`));
            return { ...el, user_name: user.name };
          }
          return el;
        }),
      );
      value = { title: input.post.title ?? '', content };
    } else if (input.image) {
      msgType = 'image';
      value = { image_key: `img_v3_${derivedHex(newMessageId(), 24)}` };
    } else {
      msgType = 'file';
      value = {
        file_key: `file_v3_${derivedHex(newMessageId(), 24)}`,
        file_name: input.file?.file_name ?? 'file',
      };
    }

    const createTime = input.create_time ?? Date.now();
    const msg: StoredMessage = {
      message_id: newMessageId(),
      chat_id: chat.id,
      msg_type: msgType,
      content: JSON.stringify(value),
      value,
      fromBot: false,
      sender: sender.open_id,
      create_time: createTime,
      update_time: createTime,
      updates: 0,
      edits: 0,
      deleted: false,
      recalled: false,
    };
    if (input.root_id) msg.root_id = input.root_id;
    if (input.parent_id) msg.parent_id = input.parent_id;
    if (input.thread_id) msg.thread_id = input.thread_id;
    if (mentions.length > 0) msg.mentions = mentions;

    const message: Json = {
      message_id: msg.message_id,
      create_time: String(createTime),
      update_time: String(createTime),
      chat_id: chat.id,
      chat_type: chat.type,
      message_type: msgType,
      content: msg.content,
    };
    if (msg.root_id) message.root_id = msg.root_id;
    if (msg.parent_id) message.parent_id = msg.parent_id;
    if (msg.thread_id) message.thread_id = msg.thread_id;
    if (mentions.length > 0) message.mentions = mentions;
    const envelope: EventEnvelope = {
      schema: '2.0',
      header: this.header('im.message.receive_v1'),
      event: {
        sender: {
          sender_id: { open_id: sender.open_id, union_id: sender.union_id, user_id: sender.user_id },
          sender_type: 'user',
          tenant_key: this.opts.tenantKey,
        },
        message,
      },
    };
    return { msg, chat, envelope };
  }

  messageEnvelope(input: UserMessageInput): EventEnvelope {
    return this.userMessage(input).envelope;
  }

  /** Store a user's message; returns the envelope to push, or undefined when the app would not receive it. */
  userSend(input: UserMessageInput): {
    envelope: EventEnvelope;
    message_id: string;
    chat_id: string;
    push: boolean;
  } {
    const { msg, chat, envelope } = this.userMessage(input);
    this.messages.set(msg.message_id, msg);
    chat.messageIds.push(msg.message_id);
    this.events.set(envelope.header.event_id, envelope);
    const mentionsBot = (msg.mentions ?? []).some((m) => m.id.open_id === this.opts.botOpenId);
    const push = chat.type === 'p2p' || this.opts.groupMessages === 'all' || mentionsBot;
    return { envelope, message_id: msg.message_id, chat_id: chat.id, push };
  }

  botAddedToGroup(chatInput: { id: string; name?: string }, operator: { open_id: string }): EventEnvelope {
    const chat = this.groupChat(chatInput.id, chatInput.name);
    chat.botMember = true;
    const op = this.user(operator);
    const envelope: EventEnvelope = {
      schema: '2.0',
      header: this.header('im.chat.member.bot.added_v1'),
      event: {
        chat_id: chat.id,
        operator_id: { open_id: op.open_id, union_id: op.union_id, user_id: op.user_id },
        external: false,
        operator_tenant_key: this.opts.tenantKey,
        name: chat.name,
        i18n_names: { zh_cn: chat.name, en_us: chat.name, ja_jp: chat.name },
      },
    };
    this.events.set(envelope.header.event_id, envelope);
    return envelope;
  }

  /** The envelope to push again: the same one, or the same payload under a fresh event_id. */
  duplicate(eventId: string, newEventId_: boolean): EventEnvelope {
    const original = this.events.get(eventId);
    if (!original) throw new Error(`duplicate: no event ${eventId}`);
    if (!newEventId_) return original;
    const copy: EventEnvelope = { ...original, header: this.header(original.header.event_type) };
    this.events.set(copy.header.event_id, copy);
    return copy;
  }

  setRecalled(messageId: string): void {
    const msg = this.messages.get(messageId);
    if (!msg) throw new Error(`recall: no message ${messageId}`);
    msg.recalled = true;
  }

  setDeleted(messageId: string): void {
    const msg = this.messages.get(messageId);
    if (!msg) throw new Error(`delete: no message ${messageId}`);
    msg.deleted = true;
  }

  // ---- IM API ----------------------------------------------------------------------------------

  private messageData(msg: StoredMessage): Json {
    const data: Json = {
      message_id: msg.message_id,
      msg_type: msg.msg_type,
      create_time: String(msg.create_time),
      update_time: String(msg.update_time),
      deleted: msg.deleted || msg.recalled,
      updated: msg.updates > 0,
      chat_id: msg.chat_id,
      sender: msg.fromBot
        ? { id: this.opts.appId, id_type: 'app_id', sender_type: 'app', tenant_key: this.opts.tenantKey }
        : { id: msg.sender, id_type: 'open_id', sender_type: 'user', tenant_key: this.opts.tenantKey },
      body: { content: msg.content },
    };
    if (msg.root_id) data.root_id = msg.root_id;
    if (msg.parent_id) data.parent_id = msg.parent_id;
    if (msg.thread_id) data.thread_id = msg.thread_id;
    if (msg.mentions)
      data.mentions = msg.mentions.map((m) => ({
        key: m.key,
        id: m.id.open_id,
        id_type: 'open_id',
        name: m.name,
        tenant_key: m.tenant_key,
      }));
    return data;
  }

  private checkUuid(uuid: unknown): string | undefined {
    if (uuid === undefined || uuid === null || uuid === '') return undefined;
    if (typeof uuid !== 'string' || uuid.length > 50)
      throw new ApiError(ERR.imInvalidParam, 'uuid must be at most 50 characters');
    return uuid;
  }

  /** Same uuid within an hour: the message already sent, nothing new shown. */
  private replayed(uuid: string | undefined): Json | undefined {
    if (!uuid) return undefined;
    const seen = this.uuids.get(uuid);
    if (!seen || Date.now() - seen.at > UUID_TTL_MS) return undefined;
    const msg = this.messages.get(seen.message_id);
    return msg ? this.messageData(msg) : undefined;
  }

  private takeChatSlot(chatId: string): void {
    if (this.opts.limits && !this.opts.limits.chat.take(chatId).ok) throw new ApiError(ERR.imFrequency);
  }

  private resolveReceiver(receiveIdType: unknown, receiveId: unknown): Chat {
    if (receiveIdType === undefined || receiveIdType === '')
      throw fieldError('receive_id_type', 'receive_id_type is required');
    if (typeof receiveIdType !== 'string' || !RECEIVE_ID_TYPES.includes(receiveIdType))
      throw fieldError(
        'receive_id_type',
        `receive_id_type is invalid, one of ${RECEIVE_ID_TYPES.join(', ')}`,
      );
    if (typeof receiveId !== 'string' || receiveId === '')
      throw fieldError('receive_id', 'receive_id is required');
    const badId = () =>
      new ApiError(
        ERR.imInvalidParam,
        `invalid receive_id ${receiveId} for receive_id_type ${receiveIdType}`,
      );
    switch (receiveIdType) {
      case 'chat_id': {
        if (!receiveId.startsWith('oc_')) throw badId();
        const chat = this.chats.get(receiveId);
        if (!chat || !chat.botMember) throw new ApiError(ERR.imBotNotInChat);
        return chat;
      }
      case 'open_id':
        if (!receiveId.startsWith('ou_')) throw badId();
        if (receiveId === this.opts.botOpenId) throw badId();
        this.user({ open_id: receiveId });
        return this.p2pChat(receiveId);
      case 'union_id':
      case 'user_id':
      case 'email': {
        if (receiveIdType === 'union_id' && !receiveId.startsWith('on_')) throw badId();
        if (receiveIdType === 'email' && !receiveId.includes('@')) throw badId();
        const user = [...this.users.values()].find((u) =>
          receiveIdType === 'union_id'
            ? u.union_id === receiveId
            : receiveIdType === 'user_id'
              ? u.user_id === receiveId
              : false,
        );
        if (!user) throw new ApiError(ERR.imNoAvailability);
        return this.p2pChat(user.open_id);
      }
    }
    throw badId();
  }

  private storeBotMessage(chat: Chat, body: Json, extra: Partial<StoredMessage>): Json {
    const checked = checkContent(body.msg_type, body.content);
    const uuid = this.checkUuid(body.uuid);
    const replay = this.replayed(uuid);
    if (replay) return replay;
    this.takeChatSlot(chat.id);
    const now = Date.now();
    const msg: StoredMessage = {
      message_id: newMessageId(),
      chat_id: chat.id,
      msg_type: body.msg_type as string,
      content: body.content as string,
      value: checked.value,
      fromBot: true,
      sender: this.opts.appId,
      create_time: now,
      update_time: now,
      updates: 0,
      edits: 0,
      deleted: false,
      recalled: false,
      ...extra,
    };
    if (checked.cardId !== undefined) msg.card_id = this.cards.attach(checked.cardId, msg.message_id).card_id;
    if (uuid) {
      msg.uuid = uuid;
      this.uuids.set(uuid, { message_id: msg.message_id, at: now });
    }
    this.messages.set(msg.message_id, msg);
    chat.messageIds.push(msg.message_id);
    return this.messageData(msg);
  }

  createMessage(query: Record<string, string>, body: Json): Json {
    const chat = this.resolveReceiver(query.receive_id_type, body.receive_id);
    return this.storeBotMessage(chat, body, {});
  }

  /** A message the caller may act on: it exists, is not deleted, not recalled. */
  private target(messageId: string): StoredMessage {
    const msg = this.messages.get(messageId);
    if (!msg) throw new ApiError(ERR.imInvalidParam, `invalid message_id ${messageId}`);
    if (msg.deleted) throw new ApiError(ERR.imDeleted);
    if (msg.recalled) throw new ApiError(ERR.imRecalled);
    return msg;
  }

  private chatOf(msg: StoredMessage): Chat {
    const chat = this.chats.get(msg.chat_id);
    if (!chat || !chat.botMember) throw new ApiError(ERR.imBotNotInChat);
    return chat;
  }

  replyMessage(messageId: string, body: Json): Json {
    const parent = this.target(messageId);
    const chat = this.chatOf(parent);
    if (body.reply_in_thread !== undefined && typeof body.reply_in_thread !== 'boolean')
      throw fieldError('reply_in_thread', 'reply_in_thread must be a boolean');
    const extra: Partial<StoredMessage> = {
      root_id: parent.root_id ?? parent.message_id,
      parent_id: parent.message_id,
    };
    // Replying inside a topic stays in it; reply_in_thread opens one on the parent.
    const threadId = parent.thread_id ?? (body.reply_in_thread === true ? newThreadId() : undefined);
    if (threadId) {
      extra.thread_id = threadId;
      extra.reply_in_thread = true;
    }
    const data = this.storeBotMessage(chat, body, extra);
    if (threadId && !parent.thread_id) parent.thread_id = threadId;
    return data;
  }

  patchMessage(messageId: string, body: Json): void {
    const msg = this.target(messageId);
    if (!msg.fromBot) throw new ApiError(ERR.imNotOwner);
    if (msg.msg_type !== 'interactive') throw new ApiError(ERR.imUnsupportedType);
    if (Date.now() - msg.create_time > PATCH_WINDOW_MS) throw new ApiError(ERR.imTooOld);
    const checked = checkContent('interactive', body.content);
    if (checked.cardId !== undefined) throw new ApiError(ERR.imInvalidParam, 'content must be a card JSON');
    const current = msg.card_id ? this.cards.get(msg.card_id)?.json : msg.value;
    if (!current || !isSharedCard(current) || !isSharedCard(checked.value))
      throw new ApiError(
        ERR.imInvalidParam,
        'only shared cards (config.update_multi: true) can be updated for everyone',
      );
    if (this.opts.limits && !this.opts.limits.messagePatch.take(messageId).ok)
      throw new ApiError(ERR.imFrequency);
    msg.content = body.content as string;
    msg.value = checked.value;
    delete msg.card_id;
    msg.updates++;
    msg.update_time = Date.now();
  }

  updateMessage(messageId: string, body: Json): Json {
    const msg = this.target(messageId);
    this.chatOf(msg);
    if (!msg.fromBot) throw new ApiError(ERR.imNotSender);
    if (body.msg_type !== 'text' && body.msg_type !== 'post')
      throw new ApiError(ERR.imInvalidParam, 'msg_type must be text or post');
    if (msg.msg_type !== 'text' && msg.msg_type !== 'post') throw new ApiError(ERR.imUnsupportedType);
    if (msg.edits >= EDIT_LIMIT) throw new ApiError(ERR.imEditLimit);
    const checked = checkContent(body.msg_type, body.content);
    msg.msg_type = body.msg_type;
    msg.content = body.content as string;
    msg.value = checked.value;
    msg.edits++;
    msg.updates++;
    msg.update_time = Date.now();
    return this.messageData(msg);
  }

  /** DELETE /messages/:id: the bot recalls its own message. */
  recallMessage(messageId: string): void {
    const msg = this.target(messageId);
    if (!msg.fromBot) throw new ApiError(ERR.imNotOwner);
    msg.recalled = true;
  }

  getMessage(messageId: string): Json {
    const msg = this.messages.get(messageId);
    if (!msg) throw new ApiError(ERR.imInvalidParam, `invalid message_id ${messageId}`);
    if (msg.deleted) throw new ApiError(ERR.imDeleted);
    this.chatOf(msg);
    return { items: [this.messageData(msg)] };
  }

  // ---- reactions -------------------------------------------------------------------------------

  private reactionData(r: Reaction): Json {
    return {
      reaction_id: r.reaction_id,
      operator: { operator_id: r.operator_id, operator_type: r.operator_type },
      action_time: String(r.action_time),
      reaction_type: { emoji_type: r.emoji_type },
    };
  }

  private reactable(messageId: string): { msg: StoredMessage; chat: Chat } {
    const msg = this.messages.get(messageId);
    if (!msg || msg.deleted || msg.recalled) throw new ApiError(ERR.reactionMessageGone);
    const chat = this.chats.get(msg.chat_id);
    if (!chat || !chat.botMember) throw new ApiError(ERR.reactionNoPermission);
    return { msg, chat };
  }

  createReaction(messageId: string, body: Json): Json {
    const { chat } = this.reactable(messageId);
    const type = isObject(body.reaction_type) ? body.reaction_type.emoji_type : undefined;
    if (typeof type !== 'string' || !EMOJI_TYPES.has(type)) throw new ApiError(ERR.reactionInvalidType);
    const reaction: Reaction = {
      reaction_id: newReactionId(),
      message_id: messageId,
      emoji_type: type,
      operator_id: this.opts.appId,
      operator_type: 'app',
      action_time: Date.now(),
      deleted: false,
    };
    this.reactions.set(reaction.reaction_id, reaction);
    chat.reactionIds.push(reaction.reaction_id);
    return this.reactionData(reaction);
  }

  deleteReaction(messageId: string, reactionId: string): Json {
    this.reactable(messageId);
    const reaction = this.reactions.get(reactionId);
    if (!reaction || reaction.deleted) throw new ApiError(ERR.reactionInvalidId);
    if (reaction.message_id !== messageId) throw new ApiError(ERR.reactionWrongMessage);
    if (reaction.operator_type !== 'app') throw new ApiError(ERR.reactionNotOwner);
    reaction.deleted = true;
    return this.reactionData(reaction);
  }

  // ---- what users see --------------------------------------------------------------------------

  private shown(msg: StoredMessage): ShownMessage {
    const card: CardEntity | undefined = msg.card_id ? this.cards.get(msg.card_id) : undefined;
    const content = card ? card.json : msg.value;
    const view: ShownMessage = {
      message_id: msg.message_id,
      msg_type: msg.msg_type,
      content,
      from_bot: msg.fromBot,
      sender: msg.sender,
      updates: msg.updates,
      deleted: msg.deleted,
      recalled: msg.recalled,
      create_time: msg.create_time,
      text: flattenContent(msg.msg_type, content),
    };
    if (msg.root_id) view.root_id = msg.root_id;
    if (msg.parent_id) view.parent_id = msg.parent_id;
    if (msg.thread_id) view.thread_id = msg.thread_id;
    if (msg.reply_in_thread) view.reply_in_thread = true;
    if (msg.uuid) view.uuid = msg.uuid;
    if (card) {
      view.card = {
        card_id: card.card_id,
        streaming_mode: card.streaming,
        elements: cardElementTexts(card.json),
        sequence: card.sequence,
        contentUpdates: card.contentUpdates,
      };
      if (card.summary !== undefined) view.card.summary = card.summary;
    }
    return view;
  }

  chatView(chatId: string): ChatView {
    const chat = this.chats.get(chatId);
    if (!chat) return { id: chatId, type: 'group', messages: [], botMessages: [], reactions: [] };
    const messages = chat.messageIds.map((id) => this.shown(this.messages.get(id) as StoredMessage));
    return {
      id: chat.id,
      type: chat.type,
      messages,
      botMessages: messages.filter((m) => m.from_bot),
      reactions: chat.reactionIds.map((id) => {
        const r = this.reactions.get(id) as Reaction;
        return {
          message_id: r.message_id,
          reaction_id: r.reaction_id,
          emoji_type: r.emoji_type,
          deleted: r.deleted,
        };
      }),
    };
  }

  summary(): Array<{ id: string; type: string; name: string; messages: number; botMember: boolean }> {
    return [...this.chats.values()].map((c) => ({
      id: c.id,
      type: c.type,
      name: c.name,
      messages: c.messageIds.length,
      botMember: c.botMember,
    }));
  }
}
