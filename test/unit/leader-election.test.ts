// Leader election against an in-memory Lease: expiry judged by when the record last changed (not by the holder's
// clock), bounded renewals, stepping down before the lease can expire, and the timing rules client-go enforces.
import assert from "node:assert/strict";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { describe, test } from "node:test";
import {
  heldByAnother,
  LeaderElectionConfigError,
  LeaderElector,
  type LeaderElectionOptions,
  observeLease,
  validateLeaderElectionTiming,
} from "../../src/controller/leader.ts";
import type { KubeClient } from "../../src/kube/client.ts";

interface StoredLease {
  metadata: { resourceVersion: string };
  spec: Record<string, unknown>;
}

/** A Lease as the apiserver keeps it: optimistic concurrency on resourceVersion, and calls that can be made to hang. */
class FakeLeases {
  lease: StoredLease | undefined;
  hang = false;
  #version = 0;

  async #maybeHang(): Promise<void> {
    if (this.hang) await new Promise(() => {});
  }

  write(spec: Record<string, unknown>): void {
    this.lease = { metadata: { resourceVersion: String(++this.#version) }, spec: structuredClone(spec) };
  }

  async getLease() {
    await this.#maybeHang();
    return this.lease && structuredClone(this.lease);
  }

  async createLease(_namespace: string, _name: string, spec: Record<string, unknown>) {
    await this.#maybeHang();
    if (this.lease) throw Object.assign(new Error("exists"), { code: 409 });
    this.write(spec);
  }

  async replaceLease(_namespace: string, _name: string, resourceVersion: string, spec: Record<string, unknown>) {
    await this.#maybeHang();
    if (this.lease?.metadata.resourceVersion !== resourceVersion) throw Object.assign(new Error("conflict"), { code: 409 });
    this.write(spec);
  }
}

const FAST = { leaseDurationMs: 1000, renewDeadlineMs: 600, retryPeriodMs: 100 };

function elector(leases: FakeLeases, identity: string, timing: Partial<LeaderElectionOptions> = {}): LeaderElector {
  return new LeaderElector(leases as unknown as KubeClient, { namespace: "ns", name: "lease", identity, log: () => {}, ...FAST, ...timing });
}

function holderSpec(holder: string, renewTime: Date): Record<string, unknown> {
  const time = renewTime.toISOString();
  return { holderIdentity: holder, leaseDurationSeconds: 1, renewTime: time, acquireTime: time, leaseTransitions: 0 };
}

/** Resolves with how long `acquire` took, or rejects after `limitMs`. */
async function timeToAcquire(candidate: LeaderElector, limitMs: number): Promise<number> {
  const started = performance.now();
  await Promise.race([
    candidate.acquire(() => {}),
    sleep(limitMs).then(() => {
      throw new Error(`not leader after ${limitMs} ms`);
    }),
  ]);
  return performance.now() - started;
}

describe("leader election timing", () => {
  test("refuses timings that could let a leader act after its lease expired, as client-go does", () => {
    const invalid = [
      { leaseDurationMs: 10_000, renewDeadlineMs: 10_000, retryPeriodMs: 2000 },
      { leaseDurationMs: 10_000, renewDeadlineMs: 15_000, retryPeriodMs: 2000 },
      { leaseDurationMs: 15_000, renewDeadlineMs: 2400, retryPeriodMs: 2000 },
      { leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 0 },
      { leaseDurationMs: 15_000, renewDeadlineMs: -1, retryPeriodMs: 2000 },
      { leaseDurationMs: Number.NaN, renewDeadlineMs: 10_000, retryPeriodMs: 2000 },
    ];
    for (const timing of invalid) {
      assert.throws(() => validateLeaderElectionTiming(timing), LeaderElectionConfigError, JSON.stringify(timing));
      assert.throws(() => elector(new FakeLeases(), "a", timing), LeaderElectionConfigError, JSON.stringify(timing));
    }
    validateLeaderElectionTiming({ leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2000 });
    validateLeaderElectionTiming({ leaseDurationMs: 4000, renewDeadlineMs: 3000, retryPeriodMs: 500 });
  });

  test("a lease is judged by when its record last changed here, not by the renewTime in it", () => {
    const spec = holderSpec("other", new Date(Date.now() + 3_600_000));
    const first = observeLease(undefined, "7", spec, 1000);
    assert.ok(heldByAnother(first, "me", 1999));
    assert.equal(observeLease(first, "7", spec, 1500), first, "an unchanged record keeps its first observation");
    assert.ok(!heldByAnother(observeLease(first, "7", spec, 2001), "me", 2001), "unchanged for its duration: expired");
    const renewed = observeLease(first, "8", { ...spec, renewTime: new Date(0).toISOString() }, 1900);
    assert.ok(heldByAnother(renewed, "me", 2800), "a renewal restarts the wait, whatever time it claims");
    assert.ok(!heldByAnother(observeLease(undefined, "9", { ...spec, holderIdentity: "" }, 0), "me", 0), "a released lease is free");
    assert.ok(!heldByAnother(first, "other", 1001), "our own lease is ours to renew");
  });
});

describe("leader elector", () => {
  test("takes over a lease whose holder's clock runs an hour fast once the record stops changing", async () => {
    const leases = new FakeLeases();
    leases.write(holderSpec("fast-clock", new Date(Date.now() + 3_600_000)));
    const candidate = elector(leases, "b");
    const tookMs = await timeToAcquire(candidate, 4000);
    assert.ok(tookMs >= 1000, `took over after ${tookMs} ms, before the lease duration`);
    assert.equal(leases.lease?.spec.holderIdentity, "b");
    assert.equal(leases.lease?.spec.leaseTransitions, 1);
    await candidate.release();
  });

  test("does not take over from a holder that keeps renewing, though its clock runs an hour slow", async () => {
    const leases = new FakeLeases();
    leases.write(holderSpec("slow-clock", new Date(Date.now() - 3_600_000)));
    const renewing = setInterval(() => leases.write(holderSpec("slow-clock", new Date(Date.now() - 3_600_000))), 150);
    try {
      const candidate = elector(leases, "b");
      await assert.rejects(timeToAcquire(candidate, 2500), /not leader/);
      assert.equal(leases.lease?.spec.holderIdentity, "slow-clock");
      await candidate.release();
    } finally {
      clearInterval(renewing);
    }
  });

  test("a leader whose renewals hang steps down within the renew deadline, before its lease can expire", async () => {
    const leases = new FakeLeases();
    const leader = elector(leases, "a");
    let lostAt: number | undefined;
    await leader.acquire(() => {
      lostAt = performance.now();
    });
    const acquiredAt = performance.now();
    leases.hang = true;
    await sleep(FAST.leaseDurationMs + 200);
    assert.ok(lostAt !== undefined, "still leading a lease that can have expired");
    assert.ok(lostAt - acquiredAt <= FAST.renewDeadlineMs + 50, `stepped down ${Math.round(lostAt - acquiredAt)} ms after the last renewal started`);
    assert.equal(leader.leading, false);
    leases.hang = false;
  });

  test("a leader that finds another holder in the lease steps down at once", async () => {
    const leases = new FakeLeases();
    const leader = elector(leases, "a");
    let lost = false;
    await leader.acquire(() => {
      lost = true;
    });
    leases.write(holderSpec("usurper", new Date()));
    await sleep(FAST.retryPeriodMs * 3);
    assert.ok(lost);
    assert.equal(leases.lease?.spec.holderIdentity, "usurper", "the old leader wrote over the new holder");
  });

  test("/healthz: a leader whose lease went unrenewed for the lease duration is unhealthy", async () => {
    const leases = new FakeLeases();
    const leader = elector(leases, "a", { leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2000 });
    await leader.acquire(() => {});
    assert.equal(leader.healthProblem(), undefined);
    assert.match(leader.healthProblem(performance.now() + 16_000) ?? "", /lease not renewed for 1[56]s/);
    await leader.release();
    assert.equal(leases.lease?.spec.holderIdentity, "", "release frees the lease for the next replica");
  });
});
