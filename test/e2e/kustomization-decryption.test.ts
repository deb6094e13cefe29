// spec.decryption end to end: an artifact holding a Secret and a secretGenerator env file encrypted by the real sops
// for an age key (made by the real age-keygen) is applied decrypted by the controller; the plaintext reaches the
// cluster's Secrets and nothing else (not the controller's log, the Kustomization's status, nor its events). A wrong
// key, a PGP key in the key Secret and a tampered file each fail by name with nothing applied.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { binary, skipUnlessBuilt } from "../harness/binaries.ts";
import { condition, DeliveryBed, readyWith } from "../harness/delivery.ts";

const exec = promisify(execFile);
const PASSWORD = "pa55-hunter2-correct-horse";
const TOKEN = "tok-9f8e7d6c5b4a";

describe("Kustomization decryption (SOPS, age)", {
  skip: skipUnlessBuilt("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl", "kwok", "zot", "kustomize", "sops", "age-keygen"),
}, () => {
  let bed: DeliveryBed;
  let work: string;
  let key: string;
  let otherKey: string;
  let artifact: string;
  let digest: string;

  async function keygen(name: string): Promise<{ key: string; recipient: string }> {
    await exec(binary("age-keygen"), ["-o", join(work, name)]);
    const text = await readFile(join(work, name), "utf8");
    return { key: text, recipient: /public key: (age1\w+)/.exec(text)?.[1] ?? "" };
  }

  async function sopsEncrypt(dir: string, name: string, plain: string, recipient: string, args: readonly string[] = []): Promise<void> {
    await writeFile(join(dir, name), plain);
    const { stdout } = await exec(binary("sops"), ["encrypt", "--age", recipient, ...args, "--in-place", name], {
      cwd: dir, env: { PATH: process.env.PATH ?? "", HOME: work },
    });
    assert.equal(stdout, "");
  }

  async function tenant(ns: string, keyData: Record<string, string>): Promise<void> {
    await bed.cluster.kubectl(["create", "namespace", ns]);
    await bed.applyObjects([{ apiVersion: "v1", kind: "Secret", metadata: { namespace: ns, name: "sops-keys" }, stringData: keyData }]);
  }

  const decryption = { decryption: { provider: "sops", secretRef: { name: "sops-keys" } } };

  before(async () => {
    work = await mkdtemp(join(tmpdir(), "ferry-e2e-sops-"));
    const made = await keygen("key.txt");
    key = made.key;
    otherKey = (await keygen("other.txt")).key;
    artifact = join(work, "artifact");
    await mkdir(artifact);
    await writeFile(join(artifact, "kustomization.yaml"), [
      "resources: [db-secret.yaml]",
      "secretGenerator:",
      "  - name: app-env",
      "    envs: [app.env]",
      "generatorOptions: {disableNameSuffixHash: true}",
      "",
    ].join("\n"));
    const secret = `apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\nstringData:\n  password: ${PASSWORD}\n  port: "5432"\n`;
    await sopsEncrypt(artifact, "db-secret.yaml", secret, made.recipient, ["--encrypted-regex", "^(data|stringData)$"]);
    await sopsEncrypt(artifact, "app.env", `TOKEN=${TOKEN}\nMODE=prod\n`, made.recipient);
    assert.ok(!(await readFile(join(artifact, "db-secret.yaml"), "utf8")).includes(PASSWORD));
    bed = await DeliveryBed.start();
    bed.startController();
    digest = await bed.push(artifact, "sops/app");
  });
  after(async () => {
    await bed?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  async function events(ns: string): Promise<string> {
    return bed.cluster.kubectl(["get", "events", "-n", ns, "-o", "json"]);
  }

  test("the encrypted Secret and generated Secret are applied decrypted; no plaintext in log, status or events", async () => {
    await tenant("sops-ok", { "identity.agekey": key });
    await bed.deliver("sops-ok", "app", "sops/app", decryption);
    const ks = await bed.waitForKustomization("sops-ok", "app", "Ready", readyWith(digest));
    const db = await bed.getJson(["secret", "db", "-n", "sops-ok"]) as { data: Record<string, string> };
    assert.equal(Buffer.from(db.data.password ?? "", "base64").toString(), PASSWORD);
    assert.equal(Buffer.from(db.data.port ?? "", "base64").toString(), "5432");
    assert.ok(!("sops" in db), "the sops metadata is not applied");
    const env = await bed.getJson(["secret", "app-env", "-n", "sops-ok"]) as { data: Record<string, string> };
    assert.equal(Buffer.from(env.data.TOKEN ?? "", "base64").toString(), TOKEN);
    assert.equal(Buffer.from(env.data.MODE ?? "", "base64").toString(), "prod");

    const log = await readFile(bed.controller?.logFile ?? "", "utf8");
    for (const plain of [PASSWORD, TOKEN, Buffer.from(PASSWORD).toString("base64")]) {
      assert.ok(!log.includes(plain), "the controller log holds no plaintext");
      assert.ok(!JSON.stringify(ks).includes(plain), "the Kustomization holds no plaintext");
      assert.ok(!(await events("sops-ok")).includes(plain), "no event holds plaintext");
    }
  });

  test("a wrong key: Ready=False DecryptionFailed naming the recipients, nothing applied", async () => {
    await tenant("sops-wrong", { "identity.agekey": otherKey });
    await bed.deliver("sops-wrong", "app", "sops/app", decryption);
    const failed = await bed.waitForKustomization("sops-wrong", "app", "DecryptionFailed", (o) => condition(o, "Ready")?.reason === "DecryptionFailed");
    assert.equal(condition(failed, "Ready")?.status, "False");
    assert.match(condition(failed, "Ready")?.message ?? "", /(app\.env|db-secret\.yaml): no age identity in the decryption Secret matches the file's recipients \(age1/);
    assert.equal(failed.status?.lastAppliedRevision, undefined);
    assert.equal(failed.status?.inventory?.entries.length ?? 0, 0);
    const secrets = JSON.parse(await bed.cluster.kubectl(["get", "secrets", "-n", "sops-wrong", "-o", "json"])) as { items: Array<{ metadata: { name: string } }> };
    assert.deepEqual(secrets.items.map((item) => item.metadata.name), ["sops-keys"], "nothing was applied");
    assert.ok(!JSON.stringify(failed).includes(PASSWORD));
  });

  test("a PGP key in the key Secret stalls naming that only age is supported", async () => {
    await tenant("sops-pgp", { "identity.agekey": key, "team.asc": "-----BEGIN PGP PRIVATE KEY BLOCK-----\n" });
    await bed.deliver("sops-pgp", "app", "sops/app", decryption);
    const stalled = await bed.waitForKustomization("sops-pgp", "app", "Stalled", (o) => condition(o, "Stalled")?.status === "True");
    assert.equal(condition(stalled, "Ready")?.reason, "DecryptionFailed");
    assert.match(condition(stalled, "Stalled")?.message ?? "", /'team\.asc', a PGP key: Ferry decrypts SOPS with age keys only/);
  });

  test("a tampered encrypted file stalls with a MAC failure and is not applied", async () => {
    const tampered = join(work, "tampered");
    await mkdir(tampered);
    for (const name of ["kustomization.yaml", "app.env"]) await writeFile(join(tampered, name), await readFile(join(artifact, name)));
    const original = await readFile(join(artifact, "db-secret.yaml"), "utf8");
    await writeFile(join(tampered, "db-secret.yaml"), original.replace("name: db", "name: db-evil"));
    await bed.push(tampered, "sops/tampered");
    await tenant("sops-tampered", { "identity.agekey": key });
    await bed.deliver("sops-tampered", "app", "sops/tampered", decryption);
    const stalled = await bed.waitForKustomization("sops-tampered", "app", "Stalled", (o) => condition(o, "Stalled")?.status === "True");
    assert.match(condition(stalled, "Ready")?.message ?? "", /db-secret\.yaml: the SOPS MAC does not match/);
    const secrets = JSON.parse(await bed.cluster.kubectl(["get", "secrets", "-n", "sops-tampered", "-o", "json"])) as { items: unknown[] };
    assert.equal(secrets.items.length, 1, "only the key Secret exists");
  });
});
