import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Api } from 'node-telegram-bot-api';
import { TelegramApiError } from 'node-telegram-bot-api';
import type { TelegramEmulator } from '../src/index.ts';
import { parseFormatted } from '../src/index.ts';
import { ann, sdk, withEmulator } from './support.ts';

async function withChat(fn: (api: Api, emu: TelegramEmulator) => Promise<void>): Promise<void> {
  await withEmulator({}, async (emu) => {
    emu.userSend({ chat: { id: ann.id, type: 'private' }, from: ann, text: 'hi' });
    await fn(sdk(emu), emu);
  });
}

async function refusal(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof TelegramApiError, String(err));
    assert.equal(err.errorCode, 400);
    return err.description;
  }
  return assert.fail('expected a 400');
}

describe('HTML parse mode', () => {
  it('turns tags into entities with UTF-16 offsets', async () => {
    await withChat(async (api, emu) => {
      const html =
        '😀 <b>bold <i>both</i></b> <u>u</u> <s>s</s> <tg-spoiler>sp</tg-spoiler> <span class="tg-spoiler">sp2</span> ' +
        '<a href="https://example.com">link</a> <code>x &lt; y &amp;&amp; z</code>\n' +
        '<pre><code class="language-python">print("hi")</code></pre>\n<blockquote expandable>quoted</blockquote>';
      const m = await api.sendMessage({ chat_id: ann.id, text: html, parse_mode: 'HTML' });
      assert.equal(m.text, '😀 bold both u s sp sp2 link x < y && z\nprint("hi")\nquoted');
      assert.deepEqual(m.entities, [
        { offset: 3, length: 9, type: 'bold' },
        { offset: 8, length: 4, type: 'italic' },
        { offset: 13, length: 1, type: 'underline' },
        { offset: 15, length: 1, type: 'strikethrough' },
        { offset: 17, length: 2, type: 'spoiler' },
        { offset: 20, length: 3, type: 'spoiler' },
        { offset: 24, length: 4, type: 'text_link', url: 'https://example.com/' },
        { offset: 29, length: 10, type: 'code' },
        { offset: 40, length: 11, type: 'pre', language: 'python' },
        { offset: 52, length: 6, type: 'expandable_blockquote' },
      ]);
      const shown = emu.chat(ann.id).botMessages[0];
      assert.equal(shown?.raw, html);
      assert.equal(shown?.parse_mode, 'HTML');
      assert.equal(shown?.text, m.text);
    });
  });

  it('keeps unknown character references literal and decodes numeric ones', () => {
    assert.deepEqual(parseFormatted('a &nbsp; b &#128512; &#x41; &quot;q&quot; & c', 'HTML'), {
      text: 'a &nbsp; b 😀 A "q" & c',
      entities: [],
    });
  });

  it('refuses what the real parser refuses, with its words', async () => {
    await withChat(async (api) => {
      const cases: [string, string][] = [
        ['Price <foo> now', 'Unsupported start tag "foo" at byte offset 6'],
        ['€€€€ <foo>', 'Unsupported start tag "foo" at byte offset 13'],
        ['a < b', 'Unsupported start tag "" at byte offset 2'],
        ['<b>never closed', 'Can\'t find end tag corresponding to start tag "b"'],
        ['<b><i>x</b></i>', 'Unmatched end tag at byte offset 7, expected "</i>", found "</b>"'],
        ['x</b>', 'Unexpected end tag at byte offset 1'],
        ['<b', 'Unclosed start tag at byte offset 0'],
        ['<span>s</span>', 'Tag "span" must have class "tg-spoiler" at byte offset 0'],
        ['<a href=x?y>l</a>', 'Unexpected end of name token at byte offset 8'],
        ['<b =1>x</b>', 'Empty attribute name in the tag "b" at byte offset 0'],
      ];
      for (const [text, detail] of cases) {
        assert.equal(
          await refusal(api.sendMessage({ chat_id: ann.id, text, parse_mode: 'HTML' })),
          `Bad Request: can't parse entities: ${detail}`,
          text,
        );
      }
    });
  });
});

describe('MarkdownV2 parse mode', () => {
  it('parses every entity kind', async () => {
    await withChat(async (api) => {
      const md =
        '*bold* _italic_ __under__ ~strike~ ||spoiler|| `co\\`de` [link](https://example.com/a\\)b) ' +
        '*bold _nested_ bold* escaped \\. \\! \\- \\#\n```js\nlet a = 1;\n```\n>quoted line\n>second';
      const m = await api.sendMessage({ chat_id: ann.id, text: md, parse_mode: 'MarkdownV2' });
      assert.equal(
        m.text,
        'bold italic under strike spoiler co`de link bold nested bold escaped . ! - #\nlet a = 1;\n\nquoted line\nsecond',
      );
      assert.deepEqual(m.entities, [
        { offset: 0, length: 4, type: 'bold' },
        { offset: 5, length: 6, type: 'italic' },
        { offset: 12, length: 5, type: 'underline' },
        { offset: 18, length: 6, type: 'strikethrough' },
        { offset: 25, length: 7, type: 'spoiler' },
        { offset: 33, length: 5, type: 'code' },
        { offset: 39, length: 4, type: 'text_link', url: 'https://example.com/a)b' },
        { offset: 44, length: 16, type: 'bold' },
        { offset: 49, length: 6, type: 'italic' },
        { offset: 77, length: 11, type: 'pre', language: 'js' },
        { offset: 89, length: 18, type: 'blockquote' },
      ]);
    });
  });

  it('marks a quote expandable with || at its end', () => {
    const out = parseFormatted('**>first\n>second||\nafter', 'MarkdownV2');
    assert.deepEqual(out, {
      text: 'first\nsecond\nafter',
      entities: [{ offset: 0, length: 13, type: 'expandable_blockquote' }],
    });
  });

  it('refuses unescaped reserved characters and unclosed entities', async () => {
    await withChat(async (api) => {
      const cases: [string, string][] = [
        ['Done.', "Character '.' is reserved and must be escaped with the preceding '\\'"],
        ['1+1=2', "Character '+' is reserved and must be escaped with the preceding '\\'"],
        ['a (b)', "Character '(' is reserved and must be escaped with the preceding '\\'"],
        ['x > y', "Character '>' is reserved and must be escaped with the preceding '\\'"],
        ['*bold', "Can't find end of Bold entity at byte offset 0"],
        ['😀 _it', "Can't find end of Italic entity at byte offset 5"],
        ['*bold _italic*', "Can't find end of Bold entity at byte offset 13"],
        ['```\ncode', "Can't find end of Pre entity at byte offset 0"],
        ['[link](https://x.com', "Can't find end of a URL at byte offset 7"],
      ];
      for (const [text, detail] of cases) {
        assert.equal(
          await refusal(api.sendMessage({ chat_id: ann.id, text, parse_mode: 'MarkdownV2' })),
          `Bad Request: can't parse entities: ${detail}`,
          text,
        );
      }
    });
  });

  it('legacy Markdown has its own rules', () => {
    assert.deepEqual(parseFormatted('*b* _i_ `c` [l](http://e.com)', 'Markdown'), {
      text: 'b i c l',
      entities: [
        { offset: 0, length: 1, type: 'bold' },
        { offset: 2, length: 1, type: 'italic' },
        { offset: 4, length: 1, type: 'code' },
        { offset: 6, length: 1, type: 'text_link', url: 'http://e.com/' },
      ],
    });
    assert.throws(
      () => parseFormatted('a *b', 'Markdown'),
      /^Error: Bad Request: can't parse entities: Can't find end of the entity starting at byte offset 2$/,
    );
  });
});

describe('texts and entities', () => {
  it('limits the visible text to 4096 UTF-16 units, after parsing', async () => {
    await withChat(async (api) => {
      const visible4096 = `<b>${'a'.repeat(4096)}</b>`;
      const ok = await api.sendMessage({ chat_id: ann.id, text: visible4096, parse_mode: 'HTML' });
      assert.equal(ok.text?.length, 4096, 'markup does not count');
      assert.equal(
        await refusal(api.sendMessage({ chat_id: ann.id, text: 'a'.repeat(4097) })),
        'Bad Request: message is too long',
      );
      assert.equal(
        await refusal(api.sendMessage({ chat_id: ann.id, text: '😀'.repeat(2049) })),
        'Bad Request: message is too long',
        '2049 emoji are 4098 UTF-16 units',
      );
    });
  });

  it('trims whitespace and refuses empty texts', async () => {
    await withChat(async (api) => {
      const m = await api.sendMessage({ chat_id: ann.id, text: '\n  <b>hi</b>  \n', parse_mode: 'HTML' });
      assert.equal(m.text, 'hi');
      assert.deepEqual(m.entities, [{ offset: 0, length: 2, type: 'bold' }]);
      assert.equal(
        await refusal(api.sendMessage({ chat_id: ann.id, text: '' })),
        'Bad Request: message text is empty',
      );
      assert.equal(
        await refusal(api.sendMessage({ chat_id: ann.id, text: '<b> </b>', parse_mode: 'HTML' })),
        'Bad Request: message text is empty',
      );
      assert.equal(
        await refusal(api.sendMessage({ chat_id: ann.id, text: 'x', parse_mode: 'Html5' as 'HTML' })),
        'Bad Request: unsupported parse_mode',
      );
    });
  });

  it('counts entity offsets in UTF-16 units around emoji, both ways', async () => {
    await withChat(async (api, emu) => {
      const sent = emu.userSend({
        chat: { id: ann.id, type: 'private' },
        from: ann,
        text: '👩‍💻 hi @pincer_test_bot see https://example.com 🎉 #tag /help',
      });
      assert.deepEqual(sent.message.entities, [
        { offset: 9, length: 16, type: 'mention' },
        { offset: 30, length: 19, type: 'url' },
        { offset: 53, length: 4, type: 'hashtag' },
        { offset: 58, length: 5, type: 'bot_command' },
      ]);
      const text: string = sent.message.text;
      assert.equal(text.substr(9, 16), '@pincer_test_bot');
      assert.equal(text.substr(58, 5), '/help');

      const m = await api.sendMessage({
        chat_id: ann.id,
        text: '🎉🎉 party',
        entities: [{ type: 'bold', offset: 4, length: 6 }],
      });
      assert.deepEqual(m.entities, [{ offset: 4, length: 6, type: 'bold' }]);
      assert.equal(
        await refusal(
          api.sendMessage({
            chat_id: ann.id,
            text: '🎉 x',
            entities: [{ type: 'bold', offset: 1, length: 2 }],
          }),
        ),
        'Bad Request: entity begins in a middle of a UTF-16 symbol at byte offset 4',
      );
      assert.equal(
        await refusal(
          api.sendMessage({
            chat_id: ann.id,
            text: 'abc',
            entities: [{ type: 'bold', offset: 1, length: 5 }],
          }),
        ),
        'Bad Request: entity beginning at UTF-16 offset 1 ends after the end of the text at UTF-16 offset 6',
      );
    });
  });

  it('answers "message is not modified" for an identical edit, content or markup aside', async () => {
    await withChat(async (api, emu) => {
      const m = await api.sendMessage({ chat_id: ann.id, text: '<b>Done</b>', parse_mode: 'HTML' });
      const notModified =
        'Bad Request: message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message';
      assert.equal(
        await refusal(
          api.editMessageText({
            chat_id: ann.id,
            message_id: m.message_id,
            text: '*Done*',
            parse_mode: 'MarkdownV2',
          }),
        ),
        notModified,
        'different source, same visible text and entities',
      );
      const edited: any = await api.editMessageText({
        chat_id: ann.id,
        message_id: m.message_id,
        text: 'Done',
      });
      assert.equal(edited.entities, undefined);
      const withKeyboard: any = await api.editMessageText({
        chat_id: ann.id,
        message_id: m.message_id,
        text: 'Done',
        reply_markup: { inline_keyboard: [[{ text: 'Stop', callback_data: 'stop' }]] },
      });
      assert.deepEqual(withKeyboard.reply_markup, {
        inline_keyboard: [[{ text: 'Stop', callback_data: 'stop' }]],
      });
      assert.equal(emu.chat(ann.id).botMessages[0]?.edits, 2);
    });
  });
});
