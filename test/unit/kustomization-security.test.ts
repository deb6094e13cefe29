// What a tenant controls must not reach the controller's files, processes or credentials, and Secret values must
// not reach conditions, events or logs through error messages.
import assert from "node:assert/strict";
import { test } from "node:test";
import yaml from "js-yaml";
import { KubeClient } from "../../src/kube/client.ts";
import { substituteManifests } from "../../src/kustomize/substitute.ts";

const kubeconfig = (user: Record<string, unknown>, cluster: Record<string, unknown> = { server: "https://127.0.0.1:6443" }) => yaml.dump({
  apiVersion: "v1",
  kind: "Config",
  clusters: [{ name: "c", cluster }],
  users: [{ name: "u", user }],
  contexts: [{ name: "x", context: { cluster: "c", user: "u" } }],
  "current-context": "x",
});

test("a tenant kubeconfig may carry inline credentials only: no exec plugins, auth providers or file references", () => {
  assert.ok(KubeClient.fromUntrustedString(kubeconfig({ token: "t" })));
  assert.throws(() => KubeClient.fromUntrustedString(kubeconfig({ exec: { command: "sh", apiVersion: "client.authentication.k8s.io/v1" } })), /exec plugin/);
  assert.throws(
    () => KubeClient.fromUntrustedString(kubeconfig({ "auth-provider": { name: "x", config: { tokenFile: "/var/run/secrets/kubernetes.io/serviceaccount/token" } } })),
    /auth provider/,
  );
  assert.throws(() => KubeClient.fromUntrustedString(kubeconfig({ "client-certificate": "/etc/key.pem", "client-key": "/etc/key.pem" })), /references files/);
  assert.throws(() => KubeClient.fromUntrustedString(kubeconfig({ token: "t" }, { server: "https://x", "certificate-authority": "/etc/ca" })), /CA file/);
});

test("a malformed kubeconfig is reported without quoting it", () => {
  assert.throws(() => KubeClient.fromUntrustedString("users:\n- name: u\n  user:\n    token: TOPSECRET\n  bad: [\n"), (error: Error) => {
    assert.doesNotMatch(error.message, /TOPSECRET/);
    assert.match(error.message, /not a valid kubeconfig/);
    return true;
  });
});

test("a substituted Secret value that breaks the YAML is not quoted in the error", () => {
  const manifest = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  token: ${token}\n  next: value\n";
  assert.throws(() => substituteManifests(manifest, { token: "[s3cr3t-value" }), (error: Error) => {
    assert.doesNotMatch(error.message, /s3cr3t/);
    assert.match(error.message, /ConfigMap\/settings/);
    return true;
  });
});
