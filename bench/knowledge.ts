/**
 * Knowledge-base benchmark: ingestion chunks/s, and search() latency at 10k and 100k chunks with the
 * query embedding excluded (the issue's target: p99 ≤ 50 ms at 100k chunks).
 *
 *   - A synthetic corpus (seeded, so every run sees the same text): Markdown documents of about 100
 *     chunks, about 60% English and 40% Chinese paragraphs, words drawn with a Zipf-like frequency from
 *     a vocabulary of real function words and common terms followed by thousands of rarer ones. Chunks
 *     are cut by the real `prepareDocument` at core's default chunk size (350 tokens, 60 overlap).
 *   - Bulk ingestion writes straight into a fresh database with the repository functions the ingestion
 *     job uses (insertDocument, setProgress, insertChunks in batches of `embedding_batch`,
 *     activateVersion), so the rows are exactly what ingestion stores. Timed: prepare + database
 *     writes. Not timed: the 768-dim mock embeddings (`embedText`, computed in-process).
 *   - End to end: a smaller sample through `KnowledgeBase.add` → the queued job → llm-proxy → the mock
 *     model's /v1/embeddings (in-process, like the core tests' stack), on a second fresh database.
 *   - Queries: a KnowledgeBase whose LlmClient's `embed` answers from precomputed vectors, so only the
 *     search itself is timed: 300 queries per mode (hybrid, text, vector) after a warm-up, one at a time.
 *
 *   npm run bench:knowledge        BENCH_QUICK=1: 10k chunks only.  BENCH_KB_KEEP=1: keep the database.
 * Prints Markdown tables and writes bench/results/knowledge.json.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { ftsQuery, ftsQueryTerms, type PreparedChunk, prepareDocument } from '@pincer/knowledge';
import { embedText } from '@pincer/mock-inference';
import { createLogger } from '@pincer/shared';
import { Redis } from 'ioredis';
import { type CoreConfig, loadConfig } from '../services/core/src/config.ts';
import type { Db, Queryable } from '../services/core/src/repositories/db.ts';
import {
  activateVersion,
  insertChunks,
  insertDocument,
  setProgress,
  textCandidates,
} from '../services/core/src/repositories/knowledge.ts';
import { LlmClient } from '../services/core/src/repositories/llm.ts';
import { KnowledgeBase, type SearchMode } from '../services/core/src/services/knowledge.ts';
import { PreparePool } from '../services/core/src/services/prepare-pool.ts';
import { createTestDatabase, writeConfigDir } from '../services/core/test/db-harness.ts';
import { startEmbeddingBackend } from './embedding-backend.ts';
import { deleteRedisKeys, fmt, pct, REDIS_URL, root } from './lib.ts';

const quick = process.env.BENCH_QUICK === '1';
const keep = process.env.BENCH_KB_KEEP === '1';
const SIZES = quick ? [10_000] : [10_000, 100_000];
const DIMS = 768;
const QUERIES = 300;
const WARMUP = 30;
const E2E_CHUNKS = 2_000;
/** Estimated tokens of a document of about CHUNKS_PER_DOC chunks (chunks end early at section ends). */
const docTokens = (cfg: { chunk_tokens: number; overlap_tokens: number }) =>
  Math.round(CHUNKS_PER_DOC * (cfg.chunk_tokens - cfg.overlap_tokens) * 0.75);
const CHUNKS_PER_DOC = 100;
/** The embedding model's registry id in embeddingModels (services/core/test/stack.ts). */
const MODEL = 'embed';
const PROXY_KEY = 'bench-kb-proxy-key-0123456789abcdef';
const MODES: SearchMode[] = ['hybrid', 'text', 'vector'];

// ------------------------------------------------------------------------------------------ corpus

/** mulberry32: a small seeded generator, so every run builds the same corpus and queries. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Ranks 0..n-1 with P(r) ∝ 1/(r+1)^s. */
class Zipf {
  private readonly cdf: Float64Array;
  constructor(n: number, s: number) {
    this.cdf = new Float64Array(n);
    let sum = 0;
    for (let r = 0; r < n; r++) this.cdf[r] = sum += 1 / Math.pow(r + 1, s);
    for (let r = 0; r < n; r++) this.cdf[r] = this.cdf[r]! / sum;
  }
  sample(rand: () => number): number {
    const u = rand();
    let lo = 0;
    let hi = this.cdf.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.cdf[mid]! < u) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

const EN_FUNCTION =
  `the of and to a in is that for it as with was on be by this are or from at which an have not but
can all will has their if more one when also you they been other there would each only its may new these into
should must any after than before such some per our we your them then so no up out about most between both over
under within without during through where how what who does do did`.split(/\s+/);

const EN_TERMS =
  `system data user service time team file server network account access policy request report support
process project document customer management security update version device application backup storage password
email message meeting office employee manager approval expense travel invoice payment contract budget schedule
release feature issue error log database cluster node instance container image deployment configuration setting
option parameter value key token certificate domain address port connection session client interface module
component package library function method class object field record table query index cache queue job task worker
thread memory disk drive volume snapshot restore recovery failure alert monitor metric dashboard threshold limit
quota usage cost price plan tier license vendor partner product order shipment warehouse inventory supplier
quality review audit compliance risk incident response escalation ticket priority owner role permission group
member admin operator guest visitor building floor room door lock badge card phone laptop printer screen keyboard
cable power battery charger light button switch reset install configure enable disable create delete remove add
change check verify confirm submit approve reject send receive open close start stop run build test deploy
migrate upgrade download upload share sync export import encrypt replicate daily weekly monthly annual quarterly
first last next previous old current default custom manual automatic remote local public private internal
external main secondary primary standard premium maximum minimum average total number amount rate level status
state result reason rule step stage phase period date day week month year hour minute second morning evening
holiday leave salary bonus benefit insurance training course guide handbook section chapter page note example
question answer problem solution approach strategy goal target requirement condition exception case scenario
history city merchant trade ship harbor river recipe kitchen sauce sugar ginger heat`.split(/\s+/);

const ZH_FUNCTION =
  `的 是 在 了 和 有 我们 这个 一个 可以 不 也 就 都 对 中 为 上 将 会 要 等 或 但 并 被 从 到 把 让 用 以 及 与
所以 因为 如果 需要 进行 通过 使用 之后 之前 时候 已经 没有 他们 自己 这些 那些 每个 其他 所有 以及 可能 应该 必须`.split(
    /\s+/,
  );

const ZH_TERMS =
  `问题 情况 时间 工作 系统 数据 用户 服务 管理 公司 员工 部门 文件 网络 设备 安全 政策 费用 报销 申请 审批 流程 规定
要求 标准 方法 信息 内容 客户 产品 项目 计划 经理 办公室 会议 密码 账号 备份 恢复 配置 更新 版本 功能 错误 日志 服务器
数据库 存储 权限 密钥 证书 网关 接口 模块 组件 任务 队列 缓存 索引 查询 记录 报告 预算 合同 发票 付款 差旅 住宿 交通 餐饮
培训 考勤 假期 加班 绩效 招聘 入职 离职 保险 福利 门锁 电池 指纹 房间 楼层 钥匙 红烧肉 五花肉 冰糖 酱油 火候 汉萨同盟
商人 城市 贸易 港口`.split(/\s+/);

// roughly the most frequent Chinese characters: rare words are built from them (common ones more often)
const ZH_CHARS = [
  ...new Set(
    `的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面而方后多定行学法所
民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体制机当使点从业本去把性好应开它合还因由其些然前外天政四日那社义事
平形相全表间样与关各重新线内数正心反你明看原又么利比或但质气第向道命此变条只没结解问意建月公无系军很情者最立代想已通并提直题党程
展五果料象员革位入常文总次品式活设及管特件长求老头基资边流路级少图山统接知较将组见计别她手角期根论运农指几九区强放决西被干做必战
先回则任取据处队南给色光门即保治北造百规热领七海口东导器压志世金增争济阶油思术极交受联什认六共权收证改清己美再采转更单风切打白教
速花带安场身车例真务具万每目至达走积示议声报斗完类八离华名确才科张信马节话米整空元况今集温传土许步群广石记需段研界拉林律叫且究观
越织装影算低持音众书布复容儿须际商非验连断深难近矿千周委素技备半办青省列习响约支般史感劳便团往酸历市克何除消构府称太准精值号率族
维划选标写存候毛亲快效斯院查江型眼王按格养易置派层片始却专状育厂京识适属圆包火住调满县局照参红细引听该铁价严首底液官德随病苏失尔
死讲配女黄推显谈罪神艺呢席含企望密批营项防举球英氧势告李台落木帮轮破亚师围注远字材排供河态封另施减树溶怎止案言士均武固叶鱼波视仅
费紧爱左章早朝害续轻服试食充兵源判护司足某练差致板田降黑犯负击范继兴似余坚曲输修故城夫够送笔船占右财吃富春职觉汉画功巴跟虽杂飞检
吸助升阳互初创抗考投坏策古径换未跑留钢曾端责站简述钱副尽帝射草冲承独令限阿宣环双请超微让控州良轴找否纪益依优顶础载倒房突坐粉敌略
客袁冷胜绝析块剂测丝协诉念陈仍罗盐友洋错苦夜刑移频逐靠混母短皮终聚汽村云哪既距卫停烈央察烧迅境若印洲刻括激孔搞甚室待核校散侵吧甲
游久菜味旧模湖货损预阻毫普稳乙妈植息扩银语挥酒守拿序纸医缺雨吗针刘啊急唱误训愿审附获茶鲜粮斤孩脱硫肥善龙演父渐血欢械掌歌沙刚攻谓
盾讨晚粒乱燃矛乎杀药宁鲁贵钟煤读班伯香介迫句丰培握兰担弦蛋沉假穿执答乐谁顺烟缩征脸喜松脚困异免背星福买染井概慢怕磁倍祖皇促静补评
翻肉践尼衣宽扬棉希伤操垂秋宜氢套督振架亮末宪庆编牛触映雷销诗座居抓裂胞呼娘景威绿晶厚盟衡鸡孙延危胶屋乡临陆顾掉呀灯岁措束耐剧玉赵
跳哥季课凯胡额款绍卷齐伟蒸殖永宗苗川炉岩弱零杨奏沿露杆探滑镇饭浓航怀赶库夺伊灵税途灭赛归召鼓播盘裁险康唯录菌纯借糖盖横符私努堂域
枪润幅哈竟熟虫泽脑壤碳欧遍侧寨敢彻虑斜薄庭纳弹饲伸折麦湿暗荷瓦塞床筑恶户访塔奇透梁刀旋迹卡氯遇份毒泥退洗摆灰彩卖耗夏择忙铜献硬予
繁圈雪函亦抽篇阵阴丁尺追堆雄迎泛爸楼避谋吨野猪旗累偏典馆索秦脂潮爷豆忽托惊塑遗愈朱替纤粗倾尚痛楚谢奋购磨君池旁碎骨监捕弟暴割贯殊
释词亡壁顿宝午尘闻揭炮残冬桥妇警综招吴付浮遭徐您摇谷赞箱隔订男吹园纷唐败宋玻巨耕坦荣闭湾键凡驻锅救恩剥凝碱齿截炼麻纺禁废盛版缓净
睛昌婚涉筒嘴插岸朗庄街藏姑贸腐奴啦惯乘伙恢匀纱扎辩耳彪臣亿璃抵脉秀萨俄网舞店喷纵寸汗挂洪贺闪柬爆烯津稻墙软勇像滚厘蒙芳肯坡柱荡腿
仪旅尾轧冰贡登黎削钻勒逃障氨郭峰币港伏轨亩毕擦莫刺浪秘援株健售股岛甘泡睡童铸汤阀休汇舍牧绕炸哲磷绩朋淡尖启陷柴呈徒颜泪稍忘泵蓝拖`.replace(
      /\s+/g,
      '',
    ),
  ),
];

interface Vocabulary {
  words: string[];
  zipf: Zipf;
  /** Where the words that are not function words start (queries mostly use those). */
  termsFrom: number;
}

const SYLLABLE_ON = [
  'b',
  'c',
  'd',
  'f',
  'g',
  'h',
  'k',
  'l',
  'm',
  'n',
  'p',
  'r',
  's',
  't',
  'v',
  'st',
  'tr',
  'pl',
  'gr',
];
const SYLLABLE_NU = ['a', 'e', 'i', 'o', 'u', 'ai', 'ea', 'ou', 'io'];
const SYLLABLE_CO = ['', '', 'n', 'r', 's', 'l', 't', 'm', 'nd', 'ck', 'x'];

function englishVocabulary(size: number, rand: () => number): Vocabulary {
  const words = [...new Set([...EN_FUNCTION, ...EN_TERMS])];
  const termsFrom = EN_FUNCTION.length;
  const seen = new Set(words);
  const pick = <T>(a: readonly T[]) => a[Math.floor(rand() * a.length)]!;
  while (words.length < size) {
    let w = '';
    const syllables = 2 + Math.floor(rand() * 3);
    for (let i = 0; i < syllables; i++) w += pick(SYLLABLE_ON) + pick(SYLLABLE_NU) + pick(SYLLABLE_CO);
    if (w.length < 4 || w.length > 14 || seen.has(w)) continue;
    seen.add(w);
    words.push(w);
  }
  return { words, zipf: new Zipf(words.length, 1.05), termsFrom };
}

function chineseVocabulary(size: number, rand: () => number): Vocabulary {
  const words = [...new Set([...ZH_FUNCTION, ...ZH_TERMS])];
  const termsFrom = ZH_FUNCTION.length;
  const seen = new Set(words);
  const chars = new Zipf(ZH_CHARS.length, 0.9);
  while (words.length < size) {
    const u = rand();
    const len = u < 0.05 ? 1 : u < 0.7 ? 2 : u < 0.9 ? 3 : 4;
    let w = '';
    for (let i = 0; i < len; i++) w += ZH_CHARS[chars.sample(rand)];
    // particles are words of their own, not parts of others
    if (seen.has(w) || (len > 1 && /[的了]/.test(w))) continue;
    seen.add(w);
    words.push(w);
  }
  return { words, zipf: new Zipf(words.length, 1.05), termsFrom };
}

/** One vocabulary for the documents and the queries. */
const VOCABULARY = { en: englishVocabulary(30_000, rng(1)), zh: chineseVocabulary(25_000, rng(2)) };

/** Documents and queries from the vocabulary, each generator with its own seed. */
class Corpus {
  readonly en = VOCABULARY.en;
  readonly zh = VOCABULARY.zh;
  private readonly rand: () => number;

  constructor(seed: number) {
    this.rand = rng(seed);
  }

  private int(lo: number, hi: number): number {
    return lo + Math.floor(this.rand() * (hi - lo + 1));
  }

  private word(v: Vocabulary): string {
    return v.words[v.zipf.sample(this.rand)]!;
  }

  private englishSentence(): string {
    const n = this.int(6, 22);
    const out: string[] = [];
    for (let i = 0; i < n; i++) {
      const r = this.rand();
      out.push(r < 0.03 ? String(this.int(1, 500)) : this.word(this.en));
      if (i > 2 && i < n - 2 && this.rand() < 0.06) out[out.length - 1] += ',';
    }
    const s = out.join(' ');
    return s[0]!.toUpperCase() + s.slice(1) + '.';
  }

  private chineseSentence(): string {
    const n = this.int(5, 18);
    let s = '';
    for (let i = 0; i < n; i++) {
      const r = this.rand();
      // product names, versions and numbers appear in Chinese text as they are
      if (r < 0.03) s += ` ${this.word(this.en).toUpperCase()} `;
      else if (r < 0.05) s += String(this.int(1, 500));
      else s += this.word(this.zh);
      if (i > 2 && i < n - 2 && this.rand() < 0.12) s += '，';
    }
    return s.trim() + (this.rand() < 0.9 ? '。' : '！');
  }

  private paragraph(chinese: boolean): string {
    const n = this.int(2, 6);
    const parts: string[] = [];
    for (let i = 0; i < n; i++) parts.push(chinese ? this.chineseSentence() : this.englishSentence());
    return parts.join(chinese ? '' : ' ');
  }

  private heading(chinese: boolean): string {
    const n = this.int(2, chinese ? 4 : 5);
    const v = chinese ? this.zh : this.en;
    const w: string[] = [];
    for (let i = 0; i < n; i++)
      w.push(v.words[v.termsFrom + (v.zipf.sample(this.rand) % (v.words.length - v.termsFrom))]!);
    return chinese ? w.join('') : w.map((x) => x[0]!.toUpperCase() + x.slice(1)).join(' ');
  }

  /** A Markdown document of about `tokens` estimated tokens: ~60% of documents English, ~10% of paragraphs in the other language. */
  document(tokens: number): string {
    const chinese = this.rand() < 0.4;
    const parts = [`# ${this.heading(chinese)}`];
    let size = 0;
    while (size < tokens) {
      parts.push(`## ${this.heading(chinese)}`);
      const paragraphs = this.int(1, 9);
      for (let i = 0; i < paragraphs; i++) {
        const p = this.paragraph(this.rand() < 0.1 ? !chinese : chinese);
        parts.push(p);
        size += estimate(p);
      }
    }
    return parts.join('\n\n') + '\n';
  }

  /** A realistic query: 2–6 English words or a Chinese question, some with a rare word. */
  query(): { text: string; kind: string } {
    const rare = this.rand() < 0.35;
    const chinese = this.rand() < 0.4;
    const v = chinese ? this.zh : this.en;
    // words as frequent in queries as in the documents, function words aside ("common" queries);
    // "rare" ones also have a word of rank 5,000 or lower, found in a few dozen chunks or fewer
    const term = () => {
      for (;;) {
        const r = v.zipf.sample(this.rand);
        if (r >= v.termsFrom) return v.words[r]!;
      }
    };
    const rareTerm = () => v.words[this.int(5_000, v.words.length - 1)]!;
    const kind = `${chinese ? 'zh' : 'en'}-${rare ? 'rare' : 'common'}`;
    if (chinese) {
      const words: string[] = [];
      const n = this.int(1, 3);
      for (let i = 0; i < n; i++) words.push(term());
      if (rare) words.splice(this.int(0, words.length), 0, rareTerm());
      const body = words.join('');
      const templates = [
        `${body}是什么？`,
        `如何${body}？`,
        `${body}怎么办？`,
        `请问${body}有哪些要求？`,
        `为什么${body}？`,
        `${body}需要多少时间？`,
      ];
      return { text: templates[this.int(0, templates.length - 1)]!, kind };
    }
    const words: string[] = [];
    const n = this.int(2, rare ? 5 : 6);
    for (let i = 0; i < n; i++) words.push(term());
    if (rare) words.splice(this.int(0, words.length), 0, rareTerm());
    const r = this.rand();
    const text =
      r < 0.15
        ? `how do I ${words.join(' ')}`
        : r < 0.25
          ? `what is the ${words.join(' ')}`
          : r < 0.3
            ? `why does ${words.join(' ')} fail?`
            : words.join(' ');
    return { text, kind };
  }
}

/** Core's token estimate (CJK characters one each, the rest ~3.5 characters per token). */
function estimate(text: string): number {
  const wide =
    text.match(/[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Hangul}]/gu)?.length ?? 0;
  return wide + Math.ceil((text.length - wide) / 3.5);
}

// ---------------------------------------------------------------------------------------- helpers

function coreConfig(
  prefix: string,
  databaseUrl: string,
  proxyUrl: string,
  knowledge: Record<string, unknown> = {},
): CoreConfig {
  const dir = writeConfigDir({
    system: { redis_prefix: prefix },
    knowledge: { embedding_model: MODEL, ...knowledge },
  });
  try {
    return loadConfig({
      DATABASE_URL: databaseUrl,
      REDIS_URL,
      LLM_PROXY_URL: proxyUrl,
      LLM_PROXY_API_KEY: PROXY_KEY,
      PINCER_CONFIG_DIR: dir,
    });
  } finally {
    // read once, at load
    rmSync(dir, { recursive: true, force: true });
  }
}

const quietLog = () => createLogger({ service: 'bench-knowledge', level: 'error' });
const mb = (bytes: number) => Math.round(bytes / 1048576);

/** A forced collection, for memory figures (v8 lets a running process turn --expose-gc on). */
function collect(): void {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
}

// -------------------------------------------------------------------------------------- ingestion

interface LoadStats {
  documents: number;
  chunks: number;
  prepareMs: number;
  writeMs: number;
  /** Part of writeMs: activateVersion (which also counts the version's lexemes). */
  activateMs: number;
  embedMs: number;
  tokens: number[];
}

const newStats = (): LoadStats => ({
  documents: 0,
  chunks: 0,
  prepareMs: 0,
  writeMs: 0,
  activateMs: 0,
  embedMs: 0,
  tokens: [],
});

/**
 * Writes documents until the table holds `target` chunks, as the ingestion job would: prepare (timed),
 * embed (not timed), then the job's writes (timed). Documents are written one after another, like one
 * core process with the default ingest_concurrency of 1.
 */
async function loadCorpus(
  db: Db,
  corpus: Corpus,
  cfg: CoreConfig['knowledge'],
  have: number,
  target: number,
  stats: LoadStats,
): Promise<void> {
  const batch = cfg.embedding_batch;
  let total = have;
  let lastPrint = performance.now();
  while (total < target) {
    const text = corpus.document(docTokens(cfg));
    const data = Buffer.from(text, 'utf8');

    let t = performance.now();
    const prepared = await prepareDocument({
      name: 'document.md',
      data: new Uint8Array(data),
      maxBytes: cfg.max_document_bytes,
      chunking: { maxTokens: cfg.chunk_tokens, overlapTokens: cfg.overlap_tokens },
    });
    stats.prepareMs += performance.now() - t;
    const chunks: PreparedChunk[] = prepared.chunks.slice(0, target - total);

    t = performance.now();
    const vectors = chunks.map((c) => embedText(c.indexable, DIMS));
    stats.embedMs += performance.now() - t;

    t = performance.now();
    const doc = await insertDocument(db, {
      title: `Document ${stats.documents + 1}`,
      source: 'text',
      filename: null,
      mime: null,
      format: 'md',
      metadata: {},
      original: data,
      sha256: randomBytes(32).toString('hex'),
      createdBy: 'bench',
    });
    await setProgress(db, doc.id, doc.version, { status: 'extracting' });
    await setProgress(db, doc.id, doc.version, {
      status: 'embedding',
      chunksTotal: chunks.length,
      chunksDone: 0,
    });
    for (let i = 0; i < chunks.length; i += batch) {
      const part = chunks.slice(i, i + batch);
      await insertChunks(
        db,
        doc.id,
        doc.version,
        MODEL,
        part.map((chunk, j) => ({ chunk, embedding: vectors[i + j]! })),
        false,
      );
      await setProgress(db, doc.id, doc.version, {
        status: 'embedding',
        chunksDone: Math.min(chunks.length, i + batch),
      });
    }
    const activating = performance.now();
    await activateVersion(db, doc.id, doc.version, {
      chunkCount: chunks.length,
      characters: prepared.characters,
      model: MODEL,
      format: prepared.format,
    });
    stats.activateMs += performance.now() - activating;
    stats.writeMs += performance.now() - t;

    stats.documents++;
    stats.chunks += chunks.length;
    for (const c of chunks) stats.tokens.push(c.tokens);
    total += chunks.length;
    if (performance.now() - lastPrint > 10_000) {
      lastPrint = performance.now();
      console.error(`  … ${total} chunks`);
    }
  }
}

/** End-to-end ingestion: KnowledgeBase.add → queued job → llm-proxy → mock /v1/embeddings, on its own database. */
interface EndToEnd {
  documents: number;
  chunks: number;
  ms: number;
  chunksPerSec: number;
  mockEmbedMs: number;
  ingestConcurrency: number;
  embeddingBatch: number;
}

async function endToEnd(corpus: Corpus, redis: Redis): Promise<EndToEnd> {
  const backend = await startEmbeddingBackend({ dims: DIMS, apiKey: PROXY_KEY });
  const t = await createTestDatabase({ prefix: 'pincer_bench_e2e', poolMax: 4 });
  const prefix = `pincer-bench-kb-${randomBytes(4).toString('hex')}`;
  const config = coreConfig(prefix, t.url, `${backend.url}/v1`);
  const prepare = new PreparePool();
  const kb = new KnowledgeBase({
    db: t.db,
    llm: new LlmClient(config.llmProxyUrl, config.llmProxyKey),
    config,
    log: quietLog(),
    redis,
    prepare,
  });
  try {
    const cfg = config.knowledge;
    // the documents are generated before the clock starts
    const texts: string[] = [];
    let estimated = 0;
    while (estimated < E2E_CHUNKS) {
      texts.push(corpus.document(docTokens(cfg)));
      estimated += CHUNKS_PER_DOC;
    }
    kb.startWorker();
    const started = performance.now();
    for (const [i, content] of texts.entries())
      await kb.add({ title: `E2E ${i + 1}`, content, createdBy: 'bench' });
    let row: { pending: number; failed: number; chunks: number };
    for (;;) {
      const { rows } = await t.db.query<typeof row>(
        `SELECT count(*) FILTER (WHERE status NOT IN ('ready', 'failed'))::int AS pending,
           count(*) FILTER (WHERE status = 'failed')::int AS failed, COALESCE(sum(chunk_count), 0)::int AS chunks
         FROM kb_documents`,
      );
      row = rows[0]!;
      if (row.pending === 0) break;
      if (performance.now() - started > 600_000)
        throw new Error('end-to-end ingestion did not finish in 10 minutes');
      await sleep(20);
    }
    const ms = performance.now() - started;
    if (row.failed) throw new Error(`${row.failed} documents failed to ingest`);
    // what the mock spent computing the same embeddings (it runs in this process)
    const { rows } = await t.db.query<{ content: string; heading: string }>(
      'SELECT content, heading FROM kb_chunks',
    );
    let embedMs = performance.now();
    for (const r of rows) embedText(r.heading ? `${r.heading}\n\n${r.content}` : r.content, DIMS);
    embedMs = performance.now() - embedMs;
    return {
      documents: texts.length,
      chunks: row.chunks,
      ms,
      chunksPerSec: row.chunks / (ms / 1000),
      mockEmbedMs: embedMs,
      ingestConcurrency: cfg.ingest_concurrency,
      embeddingBatch: cfg.embedding_batch,
    };
  } finally {
    await kb.close();
    await prepare.close();
    await backend.close();
    await deleteRedisKeys(redis, prefix);
    await t.drop();
  }
}

// ---------------------------------------------------------------------------------------- queries

interface Latency {
  p50: number;
  p95: number;
  p99: number;
  max: number;
  mean: number;
}

function summary(ms: number[]): Latency {
  const s = [...ms].sort((a, b) => a - b);
  return {
    p50: pct(s, 50),
    p95: pct(s, 95),
    p99: pct(s, 99),
    max: s.at(-1)!,
    mean: s.reduce((a, b) => a + b, 0) / s.length,
  };
}

/**
 * The SQL and parameters core's text half sends for a query: the repository's own textCandidates run
 * against a connection that notes its 'core.kb.text' statement (so this follows whatever core does).
 */
async function coreTextQuery(
  db: Db,
  query: string,
  limit: number,
): Promise<{ sql: string; tsquery: string; values: unknown[] } | undefined> {
  let seen: { sql: string; tsquery: string; values: unknown[] } | undefined;
  const spy = {
    query: (q: unknown, values?: unknown) => {
      const c = q as { name?: string; text: string; values: unknown[] };
      if (c && typeof c === 'object' && c.name === 'core.kb.text')
        seen = { sql: c.text, tsquery: String(c.values[0]), values: c.values };
      return (db.query as (a: unknown, b?: unknown) => Promise<unknown>)(q, values);
    },
  } as unknown as Queryable;
  await textCandidates(spy, ftsQueryTerms(query), limit);
  return seen;
}

/**
 * EXPLAIN ANALYZE of the text half as core runs it: textCandidates is a named statement, so each
 * connection prepares it once and Postgres settles on a generic plan after five executions; a one-off
 * query with the literal gets a custom plan, which may differ. Both are shown.
 */
async function explainText(
  db: Db,
  sql: string,
  values: unknown[],
): Promise<{ generic: string; custom: string }> {
  const client = await db.connect();
  const plan = (rows: Array<Record<string, string>>) => rows.map((r) => r['QUERY PLAN']).join('\n');
  try {
    await client.query(`PREPARE bench_text AS ${sql}`);
    const args = values.map((v) => (typeof v === 'number' ? String(v) : client.escapeLiteral(String(v))));
    const exec = `EXECUTE bench_text(${args.join(', ')})`;
    for (let i = 0; i < 6; i++) await client.query(exec);
    const generic = plan((await client.query(`EXPLAIN (ANALYZE, BUFFERS) ${exec}`)).rows);
    await client.query('SET plan_cache_mode = force_custom_plan');
    const custom = plan((await client.query(`EXPLAIN (ANALYZE, BUFFERS) ${exec}`)).rows);
    return { generic, custom };
  } finally {
    await client.query('DEALLOCATE bench_text').catch(() => {});
    await client.query('RESET plan_cache_mode').catch(() => {});
    client.release();
  }
}

interface SizeResult {
  chunks: number;
  documents: number;
  /** KnowledgeBase.warm(): the vectors loaded into the in-process index (core does it at start). */
  loadMs: number;
  firstSearchMs: number;
  rss: { beforeMB: number; afterLoadMB: number; deltaMB: number; arrayBuffersMB: number; heapUsedMB: number };
  modes: Record<string, Latency>;
  textByKind: Record<string, Latency & { n: number; medianRanked: number; medianMatches: number }>;
  /** The text half by how many chunks Postgres ranks for the query (the work grows with them). */
  textByRanked: Array<Latency & { ranked: string; n: number }>;
  slowestText: Array<{ query: string; tsquery: string; ms: number; ranked: number; matches: number }>;
  explain: { generic: string; custom: string } | undefined;
  tableMB: number;
}

async function measure(
  db: Db,
  dbUrl: string,
  redis: Redis,
  queries: Array<{ text: string; kind: string }>,
  warmup: Array<{ text: string; kind: string }>,
  chunks: number,
  documents: number,
): Promise<SizeResult> {
  console.error(`  vacuum analyze…`);
  await db.query('VACUUM (ANALYZE) kb_chunks');
  await db.query('VACUUM (ANALYZE) kb_documents');
  const prefix = `pincer-bench-kb-${randomBytes(4).toString('hex')}`;
  const config = coreConfig(prefix, dbUrl, 'http://127.0.0.1:9/v1');
  const llm = new LlmClient(config.llmProxyUrl, config.llmProxyKey);
  // the query embedding is excluded: computed before the clock starts and handed over at once
  const vectors = new Map<string, Float32Array>();
  for (const q of [...queries, ...warmup]) vectors.set(q.text, embedText(q.text, DIMS));
  llm.embed = async (_model: string, texts: string[]) =>
    texts.map((t) => vectors.get(t) ?? embedText(t, DIMS));
  const prepare = new PreparePool();
  const kb = new KnowledgeBase({ db, llm, config, log: quietLog(), redis, prepare });
  try {
    collect();
    const before = process.memoryUsage();
    let t = performance.now();
    await kb.warm();
    const loadMs = performance.now() - t;
    t = performance.now();
    await kb.search(warmup[0]!.text, { mode: 'vector' });
    const firstSearchMs = performance.now() - t;
    collect();
    const after = process.memoryUsage();
    for (const mode of MODES) for (const q of warmup) await kb.search(q.text, { mode });

    // each query in every mode, the order of the modes rotating, so drift (other load on the machine,
    // caches) falls on all three alike
    const times: Record<string, number[]> = Object.fromEntries(MODES.map((m) => [m, []]));
    for (const [i, q] of queries.entries())
      for (let j = 0; j < MODES.length; j++) {
        const mode = MODES[(i + j) % MODES.length]!;
        t = performance.now();
        await kb.search(q.text, { mode });
        times[mode]!.push(performance.now() - t);
      }
    const modes: Record<string, Latency> = {};
    for (const mode of MODES) {
      modes[mode] = summary(times[mode]!);
      console.error(`  ${mode}: p50 ${fmt(modes[mode].p50)} ms, p99 ${fmt(modes[mode].p99)} ms`);
    }
    const textMs = times.text!;

    // per query: the chunks core's text query ranks (its tsquery, as textCandidates builds it) and the
    // chunks the whole query (every lexeme ORed) would match
    const depth = Math.max(config.knowledge.candidates, config.knowledge.top_k);
    const count = async (tsquery: string) =>
      tsquery
        ? (
            await db.query<{ n: number }>(
              `SELECT count(*)::int AS n FROM kb_chunks c
               JOIN kb_documents d ON d.id = c.document_id AND d.active_version = c.version
               WHERE c.fts @@ to_tsquery('simple', $1)`,
              [tsquery],
            )
          ).rows[0]!.n
        : 0;
    const sent: Array<{ sql: string; tsquery: string; values: unknown[] } | undefined> = [];
    const ranked: number[] = [];
    const matches: number[] = [];
    for (const q of queries) {
      const c = await coreTextQuery(db, q.text, depth);
      sent.push(c);
      ranked.push(c ? await count(c.tsquery) : 0);
      matches.push(await count(ftsQuery(q.text)));
    }
    const median = (a: number[]) =>
      pct(
        [...a].sort((x, y) => x - y),
        50,
      );
    const textByKind: SizeResult['textByKind'] = {};
    for (const kind of [...new Set(queries.map((q) => q.kind))].sort()) {
      const idx = queries.flatMap((q, i) => (q.kind === kind ? [i] : []));
      textByKind[kind] = {
        n: idx.length,
        ...summary(idx.map((i) => textMs[i]!)),
        medianRanked: median(idx.map((i) => ranked[i]!)),
        medianMatches: median(idx.map((i) => matches[i]!)),
      };
    }
    const textByRanked: SizeResult['textByRanked'] = [];
    const bounds = [0, 1_000, 5_000, 20_000, 50_000, Infinity];
    for (let b = 0; b + 1 < bounds.length; b++) {
      const ms = textMs.filter((_, i) => ranked[i]! >= bounds[b]! && ranked[i]! < bounds[b + 1]!);
      if (ms.length)
        textByRanked.push({
          ranked: `${bounds[b]}–${Number.isFinite(bounds[b + 1]) ? bounds[b + 1]! - 1 : '…'}`,
          n: ms.length,
          ...summary(ms),
        });
    }
    const order = textMs.map((ms, i) => [ms, i] as const).sort((a, b) => b[0] - a[0]);
    const slowestText = order.slice(0, 5).map(([ms, i]) => ({
      query: queries[i]!.text,
      tsquery: sent[i]?.tsquery ?? '',
      ms,
      ranked: ranked[i]!,
      matches: matches[i]!,
    }));
    const slowest = sent[order[0]?.[1] ?? -1];
    const explain = slowest ? await explainText(db, slowest.sql, slowest.values) : undefined;
    const { rows: size } = await db.query<{ bytes: string }>(
      `SELECT pg_total_relation_size('kb_chunks') AS bytes`,
    );
    return {
      chunks,
      documents,
      loadMs,
      firstSearchMs,
      rss: {
        beforeMB: mb(before.rss),
        afterLoadMB: mb(after.rss),
        deltaMB: mb(after.rss - before.rss),
        arrayBuffersMB: mb(after.arrayBuffers),
        heapUsedMB: mb(after.heapUsed),
      },
      modes,
      textByKind,
      textByRanked,
      slowestText,
      explain,
      tableMB: mb(Number(size[0]!.bytes)),
    };
  } finally {
    await kb.close();
    await prepare.close();
    await deleteRedisKeys(redis, prefix);
  }
}

// ------------------------------------------------------------------------------------------- main

async function main() {
  const corpus = new Corpus(20240611);
  const queryGen = new Corpus(7);
  const queries = Array.from({ length: QUERIES }, () => queryGen.query());
  const warmup = Array.from({ length: WARMUP }, () => queryGen.query());
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });

  console.error('end-to-end ingestion (KnowledgeBase.add → job → llm-proxy → mock embeddings)…');
  const e2e = await endToEnd(new Corpus(99), redis);

  const t = await createTestDatabase({ prefix: 'pincer_bench_kb', poolMax: 4, keep });
  const config = coreConfig('pincer-bench-kb-unused', t.url, 'http://127.0.0.1:9/v1');
  const stats = newStats();
  const results: SizeResult[] = [];
  const loads: Array<{
    upTo: number;
    chunks: number;
    prepareMs: number;
    writeMs: number;
    activateMs: number;
    embedMs: number;
  }> = [];
  try {
    for (const size of SIZES) {
      console.error(`loading up to ${size} chunks…`);
      const before = { ...stats };
      await loadCorpus(t.db, corpus, config.knowledge, stats.chunks, size, stats);
      loads.push({
        upTo: size,
        chunks: stats.chunks - before.chunks,
        prepareMs: stats.prepareMs - before.prepareMs,
        writeMs: stats.writeMs - before.writeMs,
        activateMs: stats.activateMs - before.activateMs,
        embedMs: stats.embedMs - before.embedMs,
      });
      console.error(`measuring ${size} chunks…`);
      results.push(await measure(t.db, t.url, redis, queries, warmup, stats.chunks, stats.documents));
    }
  } finally {
    await t.drop();
    await redis.quit();
  }

  const sortedTokens = [...stats.tokens].sort((a, b) => a - b);
  const ingestion = {
    chunks: stats.chunks,
    documents: stats.documents,
    chunkTokens: {
      p10: pct(sortedTokens, 10),
      p50: pct(sortedTokens, 50),
      p90: pct(sortedTokens, 90),
      mean: sortedTokens.reduce((a, b) => a + b, 0) / sortedTokens.length,
    },
    phases: loads.map((l) => ({
      ...l,
      chunksPerSec: l.chunks / ((l.prepareMs + l.writeMs) / 1000),
      writeChunksPerSec: l.chunks / (l.writeMs / 1000),
      prepareChunksPerSec: l.chunks / (l.prepareMs / 1000),
    })),
  };
  const last = results.at(-1)!;
  const slowHalf =
    last.modes.hybrid!.p99 <= 50
      ? undefined
      : last.modes.text!.p99 >= last.modes.vector!.p99
        ? 'text'
        : 'vector';

  // ------------------------------------------------------------------------------------ report
  const out: string[] = [];
  out.push(
    `\n## Knowledge base (${new Date().toISOString().slice(0, 10)}, ${cpus().length} CPUs, Node ${process.versions.node}, no pgvector: in-process int8 scan)\n`,
  );
  out.push(
    `Corpus: ${stats.documents} documents, ${stats.chunks} chunks of ${fmt(ingestion.chunkTokens.p10, 0)}/${fmt(ingestion.chunkTokens.p50, 0)}/${fmt(ingestion.chunkTokens.p90, 0)} tokens (p10/p50/p90), ${DIMS}-dim vectors.\n`,
  );
  out.push('| ingestion | chunks | chunks/s | of which |');
  out.push('|---|---:|---:|---|');
  for (const l of ingestion.phases)
    out.push(
      `| prepare + DB writes, up to ${l.upTo / 1000}k | ${l.chunks} | ${fmt(l.chunksPerSec, 0)} | prepare ${fmt(l.prepareChunksPerSec, 0)}/s, writes ${fmt(l.writeChunksPerSec, 0)}/s (activation with lexeme counts ${fmt((l.activateMs / l.writeMs) * 100, 0)}% of write time); embedding (excluded) ${fmt(l.embedMs / 1000)} s |`,
    );
  out.push(
    `| end to end (add → job → llm-proxy → mock embeddings) | ${e2e.chunks} | ${fmt(e2e.chunksPerSec, 0)} | includes the mock's embedding time (≈ ${fmt(e2e.mockEmbedMs / 1000)} s of ${fmt(e2e.ms / 1000)} s); ingest_concurrency ${e2e.ingestConcurrency}, batch ${e2e.embeddingBatch} |`,
  );
  out.push('\n| chunks | mode | p50 ms | p95 ms | p99 ms | max ms | mean ms |');
  out.push('|---:|---|---:|---:|---:|---:|---:|');
  for (const r of results)
    for (const mode of MODES) {
      const l = r.modes[mode]!;
      out.push(
        `| ${r.chunks} | ${mode} | ${fmt(l.p50)} | ${fmt(l.p95)} | ${fmt(l.p99)} | ${fmt(l.max)} | ${fmt(l.mean)} |`,
      );
    }
  out.push(
    '\n| chunks | text half by query kind | n | p50 ms | p99 ms | median chunks ranked | median chunks the whole query matches |',
  );
  out.push('|---:|---|---:|---:|---:|---:|---:|');
  for (const r of results)
    for (const [kind, l] of Object.entries(r.textByKind))
      out.push(
        `| ${r.chunks} | ${kind} | ${l.n} | ${fmt(l.p50)} | ${fmt(l.p99)} | ${l.medianRanked} | ${l.medianMatches} |`,
      );
  out.push('\n| chunks | text half by chunks ranked | n | p50 ms | p99 ms | max ms |');
  out.push('|---:|---|---:|---:|---:|---:|');
  for (const r of results)
    for (const l of r.textByRanked)
      out.push(`| ${r.chunks} | ${l.ranked} | ${l.n} | ${fmt(l.p50)} | ${fmt(l.p99)} | ${fmt(l.max)} |`);
  out.push(
    '\n| chunks | vectors loaded (warm) | first search after | RSS before → after loading | kb_chunks on disk |',
  );
  out.push('|---:|---:|---:|---|---:|');
  for (const r of results)
    out.push(
      `| ${r.chunks} | ${fmt(r.loadMs, 0)} ms | ${fmt(r.firstSearchMs)} ms | ${r.rss.beforeMB} → ${r.rss.afterLoadMB} MB (+${r.rss.deltaMB}; arrayBuffers ${r.rss.arrayBuffersMB} MB, heap ${r.rss.heapUsedMB} MB) | ${r.tableMB} MB |`,
    );
  out.push(
    `\nTarget p99 ≤ 50 ms at ${last.chunks} chunks: hybrid p99 ${fmt(last.modes.hybrid!.p99)} ms — ${slowHalf ? `MISSED (slow half: ${slowHalf})` : 'met'}.`,
  );
  out.push(`\nSlowest text queries at ${last.chunks} chunks:`);
  for (const s of last.slowestText)
    out.push(
      `- ${fmt(s.ms)} ms, ${s.ranked} chunks ranked (the whole query matches ${s.matches}): ${JSON.stringify(s.query)} → ${s.tsquery}`,
    );
  if (last.explain) {
    out.push(
      "\nEXPLAIN ANALYZE of the slowest, with the generic plan core's prepared statement settles on:\n```\n" +
        last.explain.generic +
        '\n```',
    );
    const scan = /(Parallel Seq Scan|Seq Scan|Bitmap Heap Scan|Index Scan)[^\n]*/.exec(
      last.explain.custom,
    )?.[1];
    const time = /Execution Time: ([\d.]+ ms)/.exec(last.explain.custom)?.[1];
    out.push(`The custom plan for the same query (a one-off EXPLAIN with the literal): ${scan}, ${time}.`);
  }
  console.log(out.join('\n'));

  const dir = path.join(root, 'bench/results');
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    path.join(dir, 'knowledge.json'),
    JSON.stringify(
      {
        date: new Date().toISOString(),
        quick,
        cpus: cpus().length,
        node: process.versions.node,
        dims: DIMS,
        queries: QUERIES,
        ingestion,
        e2e,
        results,
        slowHalf,
      },
      null,
      2,
    ) + '\n',
  );
}

await main();
