// Leader election on a coordination.k8s.io Lease: only the holder reconciles. A leader that cannot renew within
// the renew deadline steps down (the process exits, as controller-runtime does), so two never act at once.
import { hostname } from "node:os";
import { setTimeout as sleep } from "node:timers/promises";
import { httpStatusOf, type KubeClient } from "../kube/client.ts";

export interface LeaderElectionOptions {
  readonly namespace: string;
  readonly name: string;
  readonly identity?: string;
  readonly leaseDurationMs: number;
  readonly renewDeadlineMs: number;
  readonly retryPeriodMs: number;
  readonly log: (message: string, fields?: Record<string, unknown>) => void;
}

interface LeaseSpec {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  renewTime?: Date | string;
  acquireTime?: Date | string;
  leaseTransitions?: number;
}

function microTime(date: Date): string {
  return date.toISOString().replace("Z", "000Z");
}

export class LeaderElector {
  readonly identity: string;
  readonly #kube: KubeClient;
  readonly #options: LeaderElectionOptions;
  #stopped = false;

  constructor(kube: KubeClient, options: LeaderElectionOptions) {
    this.#kube = kube;
    this.#options = options;
    this.identity = options.identity ?? `${hostname()}_${process.pid}`;
  }

  async #tryAcquireOrRenew(): Promise<boolean> {
    const { namespace, name } = this.#options;
    const now = new Date();
    const spec = {
      holderIdentity: this.identity,
      leaseDurationSeconds: Math.ceil(this.#options.leaseDurationMs / 1000),
      renewTime: microTime(now),
    };
    const lease = await this.#kube.getLease(namespace, name);
    if (!lease) {
      try {
        await this.#kube.createLease(namespace, name, { ...spec, acquireTime: microTime(now), leaseTransitions: 0 });
        return true;
      } catch (error) {
        if (httpStatusOf(error) === 409) return false;
        throw error;
      }
    }
    const current = (lease.spec ?? {}) as LeaseSpec;
    const renewed = current.renewTime ? new Date(current.renewTime).getTime() : 0;
    const expired = renewed + (current.leaseDurationSeconds ?? 0) * 1000 < now.getTime();
    const mine = current.holderIdentity === this.identity;
    if (!mine && !expired && current.holderIdentity) return false;
    try {
      await this.#kube.replaceLease(namespace, name, lease.metadata?.resourceVersion ?? "", {
        ...spec,
        acquireTime: mine && current.acquireTime ? new Date(current.acquireTime).toISOString().replace("Z", "000Z") : microTime(now),
        leaseTransitions: (current.leaseTransitions ?? 0) + (mine ? 0 : 1),
      });
      return true;
    } catch (error) {
      if (httpStatusOf(error) === 409) return false;
      throw error;
    }
  }

  /** Resolves once this process holds the lease; keeps renewing it and calls `onLost` if renewal fails. */
  async acquire(onLost: () => void): Promise<void> {
    this.#options.log("waiting for leadership", { lease: `${this.#options.namespace}/${this.#options.name}`, identity: this.identity });
    while (!this.#stopped) {
      const acquired = await this.#tryAcquireOrRenew().catch((error: unknown) => {
        this.#options.log("leader election failed; retrying", { error: (error as Error).message });
        return false;
      });
      if (acquired) break;
      await sleep(this.#options.retryPeriodMs);
    }
    this.#options.log("became leader", { identity: this.identity });
    void this.#renewLoop(onLost);
  }

  async #renewLoop(onLost: () => void): Promise<void> {
    let lastRenew = Date.now();
    while (!this.#stopped) {
      await sleep(this.#options.retryPeriodMs);
      if (this.#stopped) return;
      const renewed = await this.#tryAcquireOrRenew().catch(() => false);
      if (renewed) lastRenew = Date.now();
      else if (Date.now() - lastRenew > this.#options.renewDeadlineMs) {
        this.#options.log("lost leadership", { identity: this.identity });
        onLost();
        return;
      }
    }
  }

  /** Stops renewing and releases the lease so another replica can take over at once. */
  async release(): Promise<void> {
    this.#stopped = true;
    const { namespace, name } = this.#options;
    const lease = await this.#kube.getLease(namespace, name).catch(() => undefined);
    if (lease?.spec?.holderIdentity !== this.identity) return;
    await this.#kube
      .replaceLease(namespace, name, lease.metadata?.resourceVersion ?? "", { ...lease.spec, holderIdentity: "", leaseDurationSeconds: 1, renewTime: microTime(new Date()) })
      .catch(() => undefined);
  }
}
