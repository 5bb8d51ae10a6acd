// Fails when the client or its tests cast: `x as T`, `<T>x`, `x!` or an
// explicit `any`. The generated schema.d.ts is not ours and not checked.
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import ts from "typescript";

const roots = ["src", "test"];
const files = roots.flatMap((root) =>
  readdirSync(root)
    .filter((name) => name.endsWith(".ts") && !name.endsWith(".d.ts"))
    .map((name) => join(root, name)),
);
const found = [];
for (const file of files) {
  const source = ts.createSourceFile(file, readFileSync(file, "utf8"), ts.ScriptTarget.Latest, true);
  const visit = (node) => {
    const kind = ts.isAsExpression(node)
      ? "as"
      : ts.isTypeAssertionExpression(node)
        ? "<T>"
        : ts.isNonNullExpression(node)
          ? "!"
          : node.kind === ts.SyntaxKind.AnyKeyword
            ? "any"
            : null;
    if (kind !== null) {
      const { line } = source.getLineAndCharacterOfPosition(node.getStart());
      found.push(`${file}:${line + 1}: ${kind}: ${node.getText().slice(0, 60)}`);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
}
if (found.length > 0) {
  console.error(`casts found (the typed client must not need them):\n${found.join("\n")}`);
  process.exit(1);
}
console.log(`no casts in ${files.length} files`);
