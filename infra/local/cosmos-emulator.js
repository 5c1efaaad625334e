#!/usr/bin/env node
// Starts @vercel/cosmosdb-server over HTTPS with our local certificate, after patching three
// bugs the Azure SDK for Rust trips on (the module itself is never edited):
//   1. partition key range ids are numbers; the SDK expects strings ("0");
//   2. reading a missing document throws (500); it must be 404 NotFound;
//   3. replacing or deleting a missing document throws likewise.
// Usage: node cosmos-emulator.js --port N [--advertise-port P] --cert server.pem --key server.key
// --advertise-port: the port the account document names (a fault-injecting proxy's), since
// the SDK sends its calls wherever the account says it is.
"use strict";
const fs = require("fs");
const path = require("path");
const lib = path.join(__dirname, "node_modules/@vercel/cosmosdb-server/lib");

const args = process.argv.slice(2);
const arg = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : fallback;
};

// 1. String partition key range ids.
const Ranges = require(path.join(lib, "account/partition-key-ranges")).default;
const createRange = Ranges.prototype.create;
Ranges.prototype.create = function (data, ...rest) {
  return createRange.call(this, { ...data, id: String(data.id), ridPrefix: Number(data.ridPrefix) || 0 }, ...rest);
};

// 2 and 3. Missing documents are 404, not a TypeError turned into 500.
const notFound = (res) => {
  res.statusCode = 404;
  return { code: "NotFound", message: "Entity with the specified id does not exist in the system." };
};
for (const name of ["read-document", "replace-document", "delete-document"]) {
  const mod = require(path.join(lib, "handler", name));
  const original = mod.default;
  mod.default = (account, req, res, params) => {
    try {
      const coll = account.database(params.dbId).collection(params.collId);
      if (coll.read() && name !== "read-document") {
        // The document must exist in this partition for replace/delete.
        const result = original(account, req, res, params);
        return result;
      }
      return original(account, req, res, params);
    } catch (err) {
      if (err instanceof TypeError) return notFound(res);
      throw err;
    }
  };
}

// The advertised address.
const advertise = arg("--advertise-port", null);
if (advertise) {
  const accountModule = require(path.join(lib, "account"));
  const Account = accountModule.default;
  accountModule.default = class extends Account {
    constructor(host, port) {
      super(host, parseInt(advertise, 10) || port);
    }
  };
}

// Only now load the server: its route table captures the handlers at load time.
const { createHttpsServer } = require(lib);
const port = parseInt(arg("--port", "8081"), 10);
const server = createHttpsServer({
  cert: fs.readFileSync(arg("--cert")),
  key: fs.readFileSync(arg("--key")),
  keepAlive: true,
});
server.listen(port, "127.0.0.1", () => {
  console.log(`Cosmos DB emulator ready at https://127.0.0.1:${port}/`);
});
const stop = () => server.close(() => process.exit(0));
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
