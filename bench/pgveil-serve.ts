// `pgveil serve` from this build (build/src), for benches that run pgveil in
// its own process: bin/pgveil.js runs dist/, which may be missing or older
// than the source under test.
// Run: node build/bench/pgveil-serve.js serve --config <file>
import { main } from '../src/cli/main.js';

main(process.argv.slice(2)).then((code) => { if (typeof code === 'number') process.exitCode = code; });
