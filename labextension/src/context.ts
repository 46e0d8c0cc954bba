/** What the views share: the settings, the platforms and the commands that open other views. */
import { Signal } from '@lumino/signaling';

import { requestAPI } from './request';
import type { DataList_PlatformInfo_, PlatformInfo } from './schema';

export interface Sampling {
  temperature: number;
  top_p: number;
  max_tokens: number;
}

export interface Preferences {
  defaultPlatform: string; // '' = the server's default
  pollInterval: number; // seconds
  sampling: Sampling;
}

export const DEFAULT_PREFERENCES: Preferences = {
  defaultPlatform: '',
  pollInterval: 5,
  sampling: { temperature: 0.7, top_p: 1, max_tokens: 256 }
};

export const COMMANDS = {
  plan: 'aqua-lab:plan',
  deployments: 'aqua-lab:open-deployments',
  chat: 'aqua-lab:chat',
  evaluations: 'aqua-lab:evaluations'
} as const;

export class AquaContext {
  readonly changed = new Signal<this, void>(this);
  /** A platform's deployments changed (created, deactivated, deleted …): plans of it are asked again. */
  readonly deploymentsChanged = new Signal<this, string>(this);
  preferences: Preferences = DEFAULT_PREFERENCES;
  private platformsPromise: Promise<PlatformInfo[]> | null = null;

  constructor(readonly execute: (command: string, args?: Record<string, any>) => Promise<unknown>) {}

  setPreferences(value: Preferences): void {
    this.preferences = value;
    this.changed.emit();
  }

  /** The platforms, asked once; a failed ask is retried next time. */
  platforms(): Promise<PlatformInfo[]> {
    if (!this.platformsPromise) {
      this.platformsPromise = requestAPI<DataList_PlatformInfo_>('platforms').then(
        r => r.data,
        error => {
          this.platformsPromise = null;
          throw error;
        }
      );
    }
    return this.platformsPromise;
  }

  async defaultPlatform(): Promise<string> {
    const platforms = await this.platforms();
    const wanted = this.preferences.defaultPlatform;
    if (wanted && platforms.some(p => p.name === wanted)) {
      return wanted;
    }
    return (platforms.find(p => p.default) ?? platforms[0]).name;
  }
}
