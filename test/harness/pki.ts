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

export interface CertificateAuthority {
  readonly certFile: string;
  readonly keyFile: string;
}

export async function createCertificateAuthority(dir: string, commonName: string): Promise<CertificateAuthority> {
  await openssl(
    [
      "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
      "-keyout", `${commonName}.key`, "-out", `${commonName}.crt`, "-days", "2", "-subj", `/O=ferry-test/CN=${commonName}`,
      "-addext", "basicConstraints=critical,CA:TRUE",
      "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    ],
    dir,
  );
  return { certFile: join(dir, `${commonName}.crt`), keyFile: join(dir, `${commonName}.key`) };
}

/**
 * A leaf certificate shaped like Fulcio's: the OIDC identity as SAN (URI, or email when it has an @ and no
 * scheme), the OIDC issuer in Fulcio's extension 1.3.6.1.4.1.57264.1.8, code signing usage. `days: 0` makes a
 * certificate that expires the moment it is issued.
 */
export async function issueFulcioStyleCertificate(
  dir: string,
  ca: CertificateAuthority,
  options: { name: string; identity: string; issuer: string; days?: number },
): Promise<{ certFile: string; keyFile: string }> {
  const { name, identity, issuer } = options;
  await openssl(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", "/O=sigstore.dev"], dir);
  const san = /^[a-z][a-z0-9+.-]*:/i.test(identity) ? `URI:${identity}` : `email:${identity}`;
  await writeFile(
    join(dir, `${name}.ext`),
    [`subjectAltName=critical,${san}`, "extendedKeyUsage=codeSigning", "keyUsage=critical,digitalSignature", `1.3.6.1.4.1.57264.1.8=ASN1:UTF8String:${issuer}`, ""].join("\n"),
  );
  await openssl(
    ["x509", "-req", "-in", `${name}.csr`, "-CA", ca.certFile, "-CAkey", ca.keyFile, "-CAcreateserial", "-out", `${name}.crt`, "-days", String(options.days ?? 1), "-extfile", `${name}.ext`],
    dir,
  );
  return { certFile: join(dir, `${name}.crt`), keyFile: join(dir, `${name}.key`) };
}

/** A client certificate for mutual TLS, signed by the CA that createServingCertificate wrote into `dir`. */
export async function issueClientCertificate(dir: string, commonName = "ferry-client"): Promise<{ certFile: string; keyFile: string }> {
  await openssl(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", "client.key", "-out", "client.csr", "-subj", `/CN=${commonName}`], dir);
  await writeFile(join(dir, "client.ext"), "extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature\n");
  await openssl(["x509", "-req", "-in", "client.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-out", "client.crt", "-days", "2", "-extfile", "client.ext"], dir);
  return { certFile: join(dir, "client.crt"), keyFile: join(dir, "client.key") };
}
