/**
 * An example Pincer tool plugin: counts the words, characters and lines of a text.
 * Copy it into the plugins folder (tools.plugins_dir, default config/plugins) to offer it to the model.
 * Words are found with Intl.Segmenter, so Chinese or Japanese text without spaces is counted too.
 */

interface Args {
  text: string;
  locale?: string;
}

export default {
  name: 'word_count',
  description:
    'Count the words, characters (as a reader sees them), lines and sentences of a text. Use it when asked how long a text is.',
  parameters: {
    type: 'object',
    properties: {
      text: { type: 'string', maxLength: 200_000, description: 'the text to count' },
      locale: { type: 'string', description: 'language of the text, e.g. en or zh (optional)' },
    },
    required: ['text'],
    additionalProperties: false,
  },
  role: 'user',
  confirm: 'none',
  describe: (args: Args) => `word_count of ${args.text.length} characters`,
  async run(args: Args) {
    const { text } = args;
    let locale = args.locale;
    try {
      if (locale) Intl.getCanonicalLocales(locale);
    } catch {
      locale = undefined; // an unknown language tag: count with the default rules
    }
    const segments = (granularity: 'grapheme' | 'word' | 'sentence') => [
      ...new Intl.Segmenter(locale, { granularity }).segment(text),
    ];
    const characters = segments('grapheme');
    return {
      words: segments('word').filter((s) => s.isWordLike).length,
      characters: characters.length,
      characters_without_spaces: characters.filter((s) => !/^\s+$/u.test(s.segment)).length,
      lines: text === '' ? 0 : text.split(/\r\n|\r|\n/).length,
      sentences: segments('sentence').filter((s) => s.segment.trim()).length,
    };
  },
};
