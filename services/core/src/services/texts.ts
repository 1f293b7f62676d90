import { isMostlyCjk } from '@pincer/shared';

export type Lang = 'en' | 'zh';

/** The user's language for our own short messages: from the platform hint, else from their text. */
export function languageOf(text: string, hint?: string): Lang {
  if (hint?.toLowerCase().startsWith('zh')) return 'zh';
  if (text && isMostlyCjk(text)) return 'zh';
  return 'en';
}

const TEXTS = {
  busy: {
    en: 'The model is busy right now. Please try again in a minute.',
    zh: '模型现在很忙，请稍后再试。',
  },
  unavailable: {
    en: 'The model is not available right now. Please try again later.',
    zh: '模型暂时不可用，请稍后再试。',
  },
  timeout: { en: 'The model took too long to answer. Please try again.', zh: '模型响应超时，请重试。' },
  failed: { en: 'Something went wrong while answering. Please try again.', zh: '回答时出错了，请重试。' },
  rejected: {
    en: 'The model could not take this message (it may be too long).',
    zh: '模型无法处理这条消息（可能太长了）。',
  },
  rate_limited: {
    en: "You're sending messages faster than I can answer. Please wait a moment.",
    zh: '你发送消息太快了，请稍等片刻。',
  },
  not_allowed: { en: 'Sorry, this assistant is private.', zh: '抱歉，这是一个私人助手。' },
  pairing: {
    en: 'Hi! To use this assistant, ask its administrator to approve this pairing code: {code} (valid for {minutes} minutes).',
    zh: '你好！请让管理员批准这个配对码：{code}（{minutes} 分钟内有效）。',
  },
  pairing_full: {
    en: 'Hi! This assistant is not taking new users right now. Please try again later.',
    zh: '你好！这个助手暂时不接受新用户，请稍后再试。',
  },
  stopped: { en: 'Stopped.', zh: '已停止。' },
  nothing_to_stop: { en: 'Nothing is being written right now.', zh: '当前没有正在生成的回答。' },
  new_conversation: { en: 'Started a new conversation.', zh: '已开始新的对话。' },
  models: {
    en: 'Models (current: {current}):\n{list}\n\nSwitch with /model <name>.',
    zh: '可用模型（当前：{current}）：\n{list}\n\n用 /model <名称> 切换。',
  },
  model_switched: { en: 'This conversation now uses {model}.', zh: '本对话现在使用 {model}。' },
  model_unknown: {
    en: 'There is no model called "{model}". /model lists them.',
    zh: '没有名为"{model}"的模型。发送 /model 查看列表。',
  },
  text_only: { en: 'I can only read text messages for now.', zh: '我目前只能阅读文字消息。' },
} as const;

export type TextKey = keyof typeof TEXTS;

export function say(key: TextKey, lang: Lang, vars: Record<string, string | number> = {}): string {
  return TEXTS[key][lang].replace(/\{(\w+)\}/g, (_m, k: string) => String(vars[k] ?? ''));
}
