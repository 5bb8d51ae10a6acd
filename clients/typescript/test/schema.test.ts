// The checked-in src/schema.d.ts is exactly what `npm run generate` makes
// from the document the service serves: a change to the API that was not
// regenerated fails here.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";

import { baseUrl } from "./env.js";

test("the checked-in schema.d.ts is what openapi-typescript generates from the served /openapi.json", () => {
  const folder = mkdtempSync(join(tmpdir(), "user-api-schema-"));
  try {
    const generated = join(folder, "schema.d.ts");
    execFileSync("node_modules/.bin/openapi-typescript", [`${baseUrl}/openapi.json`, "-o", generated], {
      stdio: "pipe",
    });
    const checkedIn = readFileSync("src/schema.d.ts", "utf8");
    assert.ok(
      readFileSync(generated, "utf8") === checkedIn,
      "src/schema.d.ts is stale: run `npm run generate` against the running service and commit it",
    );
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
});
