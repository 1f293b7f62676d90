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
  approval_ask_user: {
    en: '🔐 May I run this?\n{summary}\nReply yes to allow or no to refuse (within {time}).',
    zh: '🔐 是否允许执行以下操作？\n{summary}\n回复“是”允许，回复“否”拒绝（{time}内有效）。',
  },
  approval_ask_operator: {
    en: '🔐 This needs an operator to approve it:\n{summary}\nWaiting up to {time}.',
    zh: '🔐 以下操作需要管理员批准：\n{summary}\n最多等待 {time}。',
  },
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
  kb_usage: {
    en: 'Ask a question about the documents: /kb <question>',
    zh: '请这样提问：/kb <问题>',
  },
  kb_not_found: {
    en: "I couldn't find anything about this in the documents.",
    zh: '文档中没有找到与此相关的内容。',
  },
  remember_usage: {
    en: 'Tell me what to remember: /remember <fact>',
    zh: '请这样告诉我要记住什么：/remember <内容>',
  },
  remembered: { en: "Got it, I'll remember that.", zh: '好的，我记住了。' },
  remembered_again: { en: 'I already knew that.', zh: '这个我已经记得了。' },
  forget_usage: {
    en: 'Tell me what to forget: /forget <number or words>, or /forget all. /memories lists what I remember.',
    zh: '请告诉我要忘记什么：/forget <编号或关键词>，或 /forget all。/memories 可查看我记得的内容。',
  },
  forgot: { en: 'Forgotten:\n{list}', zh: '已忘记：\n{list}' },
  forgot_all: { en: 'I have forgotten everything I remembered about you.', zh: '我已忘记关于你的全部记忆。' },
  forgot_nothing: {
    en: 'I remember nothing matching "{what}". /memories lists what I remember.',
    zh: '没有找到与"{what}"相符的记忆。/memories 可查看我记得的内容。',
  },
  memories: {
    en: 'What I remember about you:\n{list}\n\n/forget <number> removes one, /forget all removes everything.',
    zh: '我记得关于你的这些：\n{list}\n\n/forget <编号> 删除一条，/forget all 全部删除。',
  },
  memories_none: { en: "I don't remember anything about you yet.", zh: '我还没有记住关于你的任何事。' },
  memories_private: {
    en: 'Your memories are private: ask me in a direct chat.',
    zh: '记忆属于个人隐私，请在私聊中查看。',
  },
  memory_off: { en: 'Long-term memory is turned off.', zh: '长期记忆功能已关闭。' },
  text_only: { en: 'I can only read text messages for now.', zh: '我目前只能阅读文字消息。' },
  tasks_list: {
    en: 'Your scheduled tasks:\n{list}\n\n/tasks cancel <number> cancels one.',
    zh: '你的定时任务：\n{list}\n\n发送 /tasks cancel <编号> 取消任务。',
  },
  tasks_none: {
    en: 'You have no scheduled tasks. Ask me, e.g. "remind me tomorrow at 9 to call Anna".',
    zh: '你没有定时任务。可以直接对我说，例如"明天早上9点提醒我给安娜打电话"。',
  },
  tasks_once: { en: 'once, {when}', zh: '一次，{when}' },
  tasks_cron: { en: '{cron}, next {when}', zh: '{cron}，下次 {when}' },
  tasks_cancelled: { en: 'Cancelled: {what}', zh: '已取消：{what}' },
  tasks_unknown: {
    en: 'You have no active task "{what}". /tasks lists them.',
    zh: '没有找到进行中的任务"{what}"。发送 /tasks 查看列表。',
  },
  tasks_usage: {
    en: '/tasks lists your scheduled tasks; /tasks cancel <number> cancels one.',
    zh: '/tasks 列出你的定时任务；/tasks cancel <编号> 取消一个任务。',
  },
  tasks_off: { en: 'Scheduled tasks are turned off.', zh: '定时任务功能已关闭。' },
  workflow_started: { en: 'Started {name}.', zh: '已开始执行 {name}。' },
  workflow_forbidden: {
    en: 'Sorry, {name} can only be started by someone with the role {role}.',
    zh: '抱歉，只有角色为 {role} 的用户才能启动 {name}。',
  },
  workflow_unavailable: {
    en: 'The workflow {name} is not available right now.',
    zh: '工作流 {name} 暂时不可用。',
  },
} as const;

export type TextKey = keyof typeof TEXTS;

export function say(key: TextKey, lang: Lang, vars: Record<string, string | number> = {}): string {
  return TEXTS[key][lang].replace(/\{(\w+)\}/g, (_m, k: string) => String(vars[k] ?? ''));
}
