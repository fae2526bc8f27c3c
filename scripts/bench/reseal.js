// Reseal every SealedSecret under DIR to CERT with @socialgouv/aes-gcm-rsa-oaep, in place:
//
//     node reseal.js DIR CERT OLD_KEY
//
// The like-for-like JavaScript counterpart of `gitseal reseal` for scripts/bench.sh. WebCrypto
// runs the RSA work on libuv's thread pool, so every core is used. Files are parsed and
// written with js-yaml (comments are not kept).
const fs = require("fs");
const path = require("path");
const nodeCrypto = require("crypto");
const yaml = require("js-yaml");
const { HybridDecrypt, HybridEncrypt } = require("@socialgouv/aes-gcm-rsa-oaep");

const [dir, certFile, keyFile] = process.argv.slice(2);
const ANNOTATION = "sealedsecrets.bitnami.com/";

function scopeOf(meta) {
  const annotations = meta.annotations || {};
  if (annotations[ANNOTATION + "cluster-wide"] === "true") return "cluster";
  if (annotations[ANNOTATION + "namespace-wide"] === "true") return "namespace";
  return "strict";
}

function labelOf(meta, scope) {
  if (scope === "cluster") return "";
  if (scope === "namespace") return meta.namespace || "";
  return `${meta.namespace || ""}/${meta.name}`;
}

function files(root) {
  return fs.readdirSync(root, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(root, entry.name);
    if (entry.isDirectory()) return files(full);
    return /\.ya?ml$/.test(entry.name) ? [full] : [];
  });
}

async function main() {
  const spki = nodeCrypto.createPublicKey(fs.readFileSync(certFile)).export({ type: "spki", format: "der" });
  const newKey = await crypto.subtle.importKey("spki", spki, { name: "RSA-OAEP", hash: "SHA-256" }, false, ["encrypt"]);
  const pkcs8 = nodeCrypto.createPrivateKey(fs.readFileSync(keyFile)).export({ type: "pkcs8", format: "der" });
  const oldKey = await crypto.subtle.importKey("pkcs8", pkcs8, { name: "RSA-OAEP", hash: "SHA-256" }, false, ["decrypt"]);
  let total = 0;
  const all = files(dir);
  await Promise.all(all.map(async (file) => {
    const docs = yaml.loadAll(fs.readFileSync(file, "utf8"));
    for (const doc of docs) {
      if (!doc || doc.kind !== "SealedSecret") continue;
      const meta = doc.metadata;
      const scope = scopeOf(meta);
      const label = Buffer.from(labelOf(meta, scope));
      const items = doc.spec.encryptedData;
      for (const [key, value] of Object.entries(items)) {
        const sealed = Buffer.from(value, "base64");
        const plaintext = await HybridDecrypt(oldKey, sealed.buffer.slice(sealed.byteOffset, sealed.byteOffset + sealed.length), label);
        items[key] = Buffer.from(await HybridEncrypt(newKey, plaintext, label)).toString("base64");
        total += 1;
      }
    }
    fs.writeFileSync(file + ".tmp", docs.map((d) => "---\n" + yaml.dump(d)).join(""));
    fs.renameSync(file + ".tmp", file);
  }));
  console.log(`resealed ${total} value(s) in ${all.length} file(s)`);
}

main().catch((error) => { console.error(error); process.exit(1); });
