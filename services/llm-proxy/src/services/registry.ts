import type { ModelConfig, ModelsFile, ProviderConfig } from '../config.ts';

export interface RegistryModel extends ModelConfig {
  id: string;
  providerConfig: ProviderConfig;
}

/** The models operators declared, found by id or alias, with their fallback chains. */
export class Registry {
  readonly models: ReadonlyMap<string, RegistryModel>;
  readonly defaultModel: RegistryModel | undefined;
  private readonly byName = new Map<string, RegistryModel>();
  private readonly chains = new Map<string, RegistryModel[]>();

  constructor(file: ModelsFile) {
    const models = new Map<string, RegistryModel>();
    for (const [id, m] of Object.entries(file.models)) {
      const entry: RegistryModel = { ...m, id, providerConfig: file.providers[m.provider]! };
      models.set(id, entry);
      this.byName.set(id, entry);
    }
    for (const m of models.values()) for (const a of m.aliases) this.byName.set(a, m);
    this.models = models;
    this.defaultModel = file.routing.default_model ? this.byName.get(file.routing.default_model) : undefined;
    for (const m of models.values()) {
      const chain = [m];
      for (const name of file.routing.fallbacks[m.id] ??
        m.aliases.flatMap((a) => file.routing.fallbacks[a] ?? [])) {
        const fb = this.byName.get(name);
        if (fb && !chain.includes(fb)) chain.push(fb);
      }
      this.chains.set(m.id, chain);
    }
  }

  /** A model by registry id or alias; the default model when no name is given. */
  resolve(name: string | undefined): RegistryModel | undefined {
    return name === undefined || name === '' ? this.defaultModel : this.byName.get(name);
  }

  /** The model followed by its fallbacks, in the order they are tried. */
  chain(model: RegistryModel): readonly RegistryModel[] {
    return this.chains.get(model.id) ?? [model];
  }

  /** Models for `/v1/models`: highest priority first. */
  list(): RegistryModel[] {
    return [...this.models.values()].sort((a, b) => b.priority - a.priority || a.id.localeCompare(b.id));
  }
}
