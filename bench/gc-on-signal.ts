// Preloaded into the pgveil child by bench/idle.ts (`node --expose-gc
// --import`): SIGUSR2 runs a full garbage collection, so the bench reads live
// memory rather than garbage V8 has not collected yet. pgveil itself does not
// use SIGUSR2.
process.on('SIGUSR2', () => {
  (globalThis as { gc?: () => void }).gc?.();
});
