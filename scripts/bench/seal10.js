// Seal ten values for prod/app with @socialgouv/aes-gcm-rsa-oaep (scripts/bench.sh).
const fs = require("fs");
const { encryptValues } = require("@socialgouv/aes-gcm-rsa-oaep");

const values = {};
for (let i = 1; i <= 10; i++) {
  const n = String(i).padStart(2, "0");
  values[`key${n}`] = `value-number-${n}-0123456789abcdef`;
}
encryptValues({
  pemKey: fs.readFileSync(process.argv[2], "utf8"),
  scope: "strict",
  namespace: "prod",
  name: "app",
  values,
}).then((sealed) => process.exit(Object.keys(sealed).length === 10 ? 0 : 1));
