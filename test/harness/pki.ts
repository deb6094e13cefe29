// Test-time certificates: a throw-away CA and a serving certificate for 127.0.0.1 and localhost, made with openssl.
import { execFile } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";

const exec = promisify(execFile);

export interface ServingCertificate {
  readonly caFile: string;
  readonly certFile: string;
  readonly keyFile: string;
}

async function openssl(args: readonly string[], cwd: string): Promise<void> {
  try {
    await exec("openssl", args, { cwd });
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr ?? "";
    throw new Error(`openssl ${args[0]} failed: ${(error as Error).message}\n${stderr}`, { cause: error });
  }
}

export async function createServingCertificate(
  dir: string,
  commonName = "ferry-testbed",
): Promise<ServingCertificate> {
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  await openssl(
    [
      "req",
      "-x509",
      ...ec,
      "-keyout",
      "ca.key",
      "-out",
      "ca.crt",
      "-days",
      "2",
      "-subj",
      `/CN=${commonName} test CA`,
      "-addext",
      "basicConstraints=critical,CA:TRUE",
      "-addext",
      "keyUsage=critical,keyCertSign,cRLSign",
    ],
    dir,
  );
  await openssl(
    ["req", ...ec, "-keyout", "server.key", "-out", "server.csr", "-subj", `/CN=${commonName}`],
    dir,
  );
  await writeFile(
    join(dir, "server.ext"),
    "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\n",
  );
  await openssl(
    [
      "x509",
      "-req",
      "-in",
      "server.csr",
      "-CA",
      "ca.crt",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-out",
      "server.crt",
      "-days",
      "2",
      "-extfile",
      "server.ext",
    ],
    dir,
  );
  return { caFile: join(dir, "ca.crt"), certFile: join(dir, "server.crt"), keyFile: join(dir, "server.key") };
}
