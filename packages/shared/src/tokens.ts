// CJK, kana, hangul: roughly one token per character; other scripts roughly one per 3.5 characters
const WIDE = /[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]/g;

/** A quick, deliberately generous token estimate for text (used where no tokenizer is at hand). */
export function estimateTokens(text: string): number {
  if (!text) return 0;
  const wide = text.match(WIDE)?.length ?? 0;
  return wide + Math.ceil((text.length - wide) / 3.5);
}

/** Whether text is mostly Chinese/Japanese/Korean (to answer system messages in the user's language). */
export function isMostlyCjk(text: string): boolean {
  const wide = text.match(WIDE)?.length ?? 0;
  const letters = text.replace(/[\s\d\p{P}\p{S}]/gu, '').length;
  return letters > 0 && wide / letters > 0.3;
}
