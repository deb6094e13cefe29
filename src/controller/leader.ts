// Leader election on a coordination.k8s.io Lease, as client-go's leaderelection runs it: only the holder reconciles.
// A candidate judges the holder's lease expired when the record has not changed for leaseDuration by its own clock
// (from when it last saw the record change), never by the renewTime in it, which another machine's clock wrote.
// A leader that has not renewed within renewDeadline of the start of its last successful renewal steps down
// (onLost; the controller exits): that renewal was written after it started, and a candidate waits leaseDuration
// (> renewDeadline) after it saw the write, so the old leader has stopped before anyone else can take over.
import { hostname } from "node:os";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { withDeadline } from "../deadline.ts";
import { type Disposition, FerryError } from "../errors.ts";
import { httpStatusOf, type KubeClient } from "../kube/client.ts";
import type { Log } from "./log.ts";

/** The lease timings cannot keep two leaders apart; nothing works until the flags are fixed. */
export class LeaderElectionConfigError extends FerryError {
  readonly code = "LEADER_ELECTION_INVALID";
  readonly disposition: Disposition = "stall";
}

/** A lease request did not answer in time; the attempt counts as failed. */
export class LeaseRequestTimeoutError extends FerryError {
  readonly code = "LEASE_REQUEST_TIMEOUT";
  readonly disposition: Disposition = "retry";
}

export interface LeaderElectionTiming {
  /** How long a candidate waits, after it last saw the lease change, before it takes the lease over. */
  readonly leaseDurationMs: number;
  /** How long the leader keeps acting without a successful renewal. */
  readonly renewDeadlineMs: number;
  /** The pause between attempts to acquire or renew. */
  readonly retryPeriodMs: number;
}

export interface LeaderElectionOptions extends LeaderElectionTiming {
  readonly namespace: string;
  readonly name: string;
  readonly identity?: string;
  readonly log: Log;
}

/** client-go's JitterFactor: the renew deadline must leave room for more than one renewal attempt. */
export const RETRY_JITTER_FACTOR = 1.2;

/** The rules client-go's NewLeaderElector enforces, so that a leader always stops before its lease can expire. */
export function validateLeaderElectionTiming(timing: LeaderElectionTiming): void {
  const { leaseDurationMs, renewDeadlineMs, retryPeriodMs } = timing;
  const named = { "lease duration": leaseDurationMs, "renew deadline": renewDeadlineMs, "retry period": retryPeriodMs };
  for (const [name, value] of Object.entries(named)) {
    if (!Number.isFinite(value) || value <= 0) throw new LeaderElectionConfigError(`the ${name} must be positive, not ${value} ms`);
  }
  if (leaseDurationMs <= renewDeadlineMs) {
    throw new LeaderElectionConfigError(`the lease duration (${leaseDurationMs} ms) must be longer than the renew deadline (${renewDeadlineMs} ms)`);
  }
  if (renewDeadlineMs <= RETRY_JITTER_FACTOR * retryPeriodMs) {
    throw new LeaderElectionConfigError(`the renew deadline (${renewDeadlineMs} ms) must be longer than ${RETRY_JITTER_FACTOR} × the retry period (${retryPeriodMs} ms)`);
  }
}

interface LeaseSpec {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  renewTime?: Date | string;
  acquireTime?: Date | string;
  leaseTransitions?: number;
}

/** The lease record as this process last saw it, and when, by this process's monotonic clock. */
export interface LeaseObservation {
  /** The record's version and contents: any change, a renewal above all, is a sign of its holder's life. */
  readonly record: string;
  readonly holder: string;
  readonly leaseDurationMs: number;
  readonly observedAt: number;
}

/** The observation after reading the lease at `now`: unchanged (same observedAt) unless the record changed. */
export function observeLease(
  previous: LeaseObservation | undefined,
  resourceVersion: string | undefined,
  spec: LeaseSpec,
  now: number,
): LeaseObservation {
  const contents = [spec.holderIdentity, spec.leaseDurationSeconds, spec.renewTime, spec.acquireTime, spec.leaseTransitions];
  const record = `${resourceVersion ?? ""}|${JSON.stringify(contents)}`;
  if (previous?.record === record) return previous;
  return { record, holder: spec.holderIdentity ?? "", leaseDurationMs: (spec.leaseDurationSeconds ?? 0) * 1000, observedAt: now };
}

/** True while someone else holds the lease: it names a holder, not us, and has changed within its duration. */
export function heldByAnother(observation: LeaseObservation, identity: string, now: number): boolean {
  return observation.holder !== "" && observation.holder !== identity && now < observation.observedAt + observation.leaseDurationMs;
}

function microTime(date: Date): string {
  return date.toISOString().replace("Z", "000Z");
}

/** The Lease calls the elector makes; a KubeClient has them. */
export type LeaseClient = Pick<KubeClient, "getLease" | "createLease" | "replaceLease">;

/** Runs `work` with a deadline its Kubernetes requests honour, and gives up waiting on it at the same moment. */
async function bounded<T>(limitMs: number, what: string, work: () => Promise<T>): Promise<T> {
  const ms = Math.max(1, Math.floor(limitMs));
  const timeout = new AbortController();
  const timer = sleep(ms, undefined, { signal: timeout.signal }).then(() => {
    throw new LeaseRequestTimeoutError(`${what} did not answer within ${ms} ms`);
  }, () => undefined as never);
  try {
    return await Promise.race([withDeadline(ms, work), timer]);
  } finally {
    timeout.abort();
  }
}

export class LeaderElector {
  readonly identity: string;
  readonly #kube: LeaseClient;
  readonly #options: LeaderElectionOptions;
  #observed: LeaseObservation | undefined;
  #stopped = false;
  #leading = false;
  /** performance.now() at the start of the last successful acquire or renew, while leading. */
  #renewedAt = 0;
  /** performance.now() when the last attempt ended, while a candidate: the election loop is alive. */
  #attemptedAt: number | undefined;
  #stepDown: NodeJS.Timeout | undefined;

  constructor(kube: LeaseClient, options: LeaderElectionOptions) {
    validateLeaderElectionTiming(options);
    this.#kube = kube;
    this.#options = options;
    this.identity = options.identity ?? `${hostname()}_${process.pid}`;
  }

  get leading(): boolean {
    return this.#leading;
  }

  /** Reads the lease and, when it is free, expired or ours, writes it. True if this process holds it afterwards. */
  async #tryAcquireOrRenew(): Promise<boolean> {
    const { namespace, name } = this.#options;
    const now = performance.now();
    const written = new Date();
    const spec = {
      holderIdentity: this.identity,
      leaseDurationSeconds: Math.ceil(this.#options.leaseDurationMs / 1000),
      renewTime: microTime(written),
    };
    const lease = await this.#kube.getLease(namespace, name);
    if (!lease) {
      const created = { ...spec, acquireTime: microTime(written), leaseTransitions: 0 };
      return this.#unlessConflict(() => this.#kube.createLease(namespace, name, created));
    }
    const current = (lease.spec ?? {}) as LeaseSpec;
    this.#observed = observeLease(this.#observed, lease.metadata?.resourceVersion, current, now);
    if (heldByAnother(this.#observed, this.identity, now)) return false;
    const mine = current.holderIdentity === this.identity;
    return this.#unlessConflict(() => this.#kube.replaceLease(namespace, name, lease.metadata?.resourceVersion ?? "", {
      ...spec,
      acquireTime: mine && current.acquireTime ? microTime(new Date(current.acquireTime)) : microTime(written),
      leaseTransitions: (current.leaseTransitions ?? 0) + (mine ? 0 : 1),
    }));
  }

  /** A 409 means another replica wrote the lease first: not ours, this round. */
  async #unlessConflict(write: () => Promise<void>): Promise<boolean> {
    try {
      await write();
      return true;
    } catch (error) {
      if (httpStatusOf(error) === 409) return false;
      throw error;
    }
  }

  #attempt(timeoutMs: number): Promise<boolean> {
    return bounded(timeoutMs, "acquiring or renewing the lease", () => this.#tryAcquireOrRenew());
  }

  /** Resolves once this process holds the lease; keeps renewing it, and calls `onLost` once if it cannot. */
  async acquire(onLost: () => void): Promise<void> {
    const { namespace, name, retryPeriodMs, renewDeadlineMs } = this.#options;
    this.#options.log("waiting for leadership", { lease: `${namespace}/${name}`, identity: this.identity });
    while (!this.#stopped) {
      const started = performance.now();
      const acquired = await this.#attempt(renewDeadlineMs).catch((error: unknown) => {
        this.#options.log("leader election failed; retrying", { error: (error as Error).message }, "error");
        return false;
      });
      this.#attemptedAt = performance.now();
      if (acquired && !this.#stopped) {
        this.#lead(started, onLost);
        return;
      }
      await sleep(retryPeriodMs * (1 + Math.random() * (RETRY_JITTER_FACTOR - 1)));
    }
  }

  #lead(renewedAt: number, onLost: () => void): void {
    this.#leading = true;
    this.#renewed(renewedAt, onLost);
    this.#options.log("became leader", { identity: this.identity });
    void this.#renewLoop(onLost);
  }

  /** Records a renewal that started at `startedAt` and arms the step-down for renewDeadline after it. */
  #renewed(startedAt: number, onLost: () => void): void {
    this.#renewedAt = startedAt;
    clearTimeout(this.#stepDown);
    const remaining = startedAt + this.#options.renewDeadlineMs - performance.now();
    // A timer, not a check after each attempt: an attempt can hang, and the deadline must hold regardless.
    this.#stepDown = setTimeout(() => this.#lose(`not renewed within the renew deadline (${this.#options.renewDeadlineMs} ms)`, onLost), remaining);
  }

  async #renewLoop(onLost: () => void): Promise<void> {
    while (this.#leading && !this.#stopped) {
      await sleep(this.#options.retryPeriodMs);
      if (!this.#leading || this.#stopped) return;
      const started = performance.now();
      try {
        const renewed = await this.#attempt(this.#renewedAt + this.#options.renewDeadlineMs - started);
        if (!this.#leading || this.#stopped) return;
        if (renewed) this.#renewed(started, onLost);
        else if (this.#observed && heldByAnother(this.#observed, this.identity, performance.now())) {
          this.#lose(`the lease is held by ${this.#observed.holder}`, onLost);
        }
      } catch (error) {
        this.#options.log("renewing the lease failed; retrying until the renew deadline", { error: (error as Error).message });
      }
    }
  }

  #lose(reason: string, onLost: () => void): void {
    if (!this.#leading) return;
    this.#leading = false;
    this.#stopped = true;
    clearTimeout(this.#stepDown);
    this.#options.log("lost leadership", { identity: this.identity, reason }, "error");
    onLost();
  }

  /** Why /healthz should fail on the election's account: a lease not renewed, or an election loop that stalled. */
  healthProblem(now = performance.now()): string | undefined {
    const { leaseDurationMs, retryPeriodMs } = this.#options;
    if (this.#leading) {
      return now - this.#renewedAt > leaseDurationMs ? `lease not renewed for ${Math.round((now - this.#renewedAt) / 1000)}s (lease duration ${leaseDurationMs / 1000}s)` : undefined;
    }
    if (this.#stopped || this.#attemptedAt === undefined) return undefined;
    const limitMs = leaseDurationMs + retryPeriodMs * RETRY_JITTER_FACTOR;
    return now - this.#attemptedAt > limitMs ? `leader election has not attempted to acquire the lease for ${Math.round((now - this.#attemptedAt) / 1000)}s` : undefined;
  }

  /** Stops renewing and releases the lease so another replica can take over at once. */
  async release(): Promise<void> {
    this.#stopped = true;
    this.#leading = false;
    clearTimeout(this.#stepDown);
    // Even a candidate may hold it: an acquisition that timed out here can still have been written.
    const { namespace, name, renewDeadlineMs } = this.#options;
    await bounded(renewDeadlineMs, "releasing the lease", async () => {
      const lease = await this.#kube.getLease(namespace, name);
      if (lease?.spec?.holderIdentity !== this.identity) return;
      await this.#kube.replaceLease(namespace, name, lease.metadata?.resourceVersion ?? "", {
        ...lease.spec,
        holderIdentity: "",
        leaseDurationSeconds: 1,
        renewTime: microTime(new Date()),
      });
    }).catch((error: unknown) => this.#options.log("releasing the lease failed", { error: (error as Error).message }));
  }
}
